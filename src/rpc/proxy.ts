/**
 * Typed RPC proxies: `proxy(IGreeterAppService).greet('ann')` type-checks
 * its arguments against the contract and returns a promise of its result.
 */
import type { AnyContract, MethodDescriptor, Proxy } from '../contract/contract.js';
import type { CallOptions, CallTarget, RpcClient } from './rpc-client.js';

/** The call target of a method, from its descriptor (the gateway has only descriptors). */
export function callTarget(service: string, m: MethodDescriptor): CallTarget {
  const target: CallTarget = {
    service,
    method: m.name,
    idempotent: m.idempotent,
    spanName: `${service}/${m.name}`,
    spanAttributes: { 'rpc.system': 'weft', 'rpc.service': service, 'rpc.method': m.name },
  };
  if (m.timeoutMs !== undefined) target.timeoutMs = m.timeoutMs;
  if (m.select !== undefined) {
    target.select = m.select;
    if (typeof m.select === 'object') {
      const hashBy = m.select.hashBy;
      target.hashParamIndex = m.params.findIndex((p) => p.name === hashBy);
    }
  }
  return target;
}

export function createProxy<C extends AnyContract>(contract: C, client: RpcClient, options: CallOptions = {}): Proxy<C> {
  const proxy: Record<string, (...args: unknown[]) => Promise<unknown>> = {};
  for (const m of contract.descriptor.methods) {
    const target = callTarget(contract.name, m);
    proxy[m.name] = (...args: unknown[]) => client.call(target, args, options);
  }
  return Object.freeze(proxy) as unknown as Proxy<C>;
}
