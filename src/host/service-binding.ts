/**
 * A service's binding: its contract and how to make its implementation.
 */
import type { AnyContract, Implementation, Proxy } from '../contract/contract.js';
import type { Logger } from '../logger.js';
import type { CallOptions } from '../rpc/rpc-client.js';

/** What a service factory receives. */
export interface ServiceContext {
  readonly nodeId: string;
  readonly logger: Logger;
  /** A typed proxy to another service (or this one). A function of its own: `({ proxy }) => ...` may take it out. */
  readonly proxy: <C extends AnyContract>(contract: C, options?: CallOptions) => Proxy<C>;
}

export interface ServiceBinding {
  readonly contract: AnyContract;
  readonly create: (ctx: ServiceContext) => object;
}

/**
 * Pairs a contract with its implementation: an object (or class instance),
 * or a factory that receives proxies to other services.
 *
 * @example
 * implement(IGreeterAppService, { greet: (name) => `hello ${name}` });
 *
 * // A factory: it gets proxies to the services it calls.
 * const ICallerAppService = defineContract({
 *   name: 'ICallerAppService',
 *   methods: { greetTwice: { params: [param('name', Type.String())], returns: Type.String() } },
 * });
 * implement(ICallerAppService, ({ proxy }) => ({
 *   greetTwice: async (name) => `${await proxy(IGreeterAppService).greet(name)}, twice`,
 * }));
 */
export function implement<C extends AnyContract>(
  contract: C,
  implementation: Implementation<C> | ((ctx: ServiceContext) => Implementation<C>),
): ServiceBinding {
  const create = typeof implementation === 'function' ? (implementation as (ctx: ServiceContext) => object) : () => implementation as object;
  return { contract, create };
}
