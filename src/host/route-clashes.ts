/**
 * A host refuses to register a contract whose HTTP route another contract
 * already declares in the cluster: the gateway could serve only one of them,
 * and which one would be an accident.
 */
import type { ContractDescriptor } from '../contract/contract.js';
import { routeKey } from '../contract/routes.js';
import { WeftError } from '../errors.js';
import type { RegistryView } from '../registry/registry.js';

/** Throws InvalidContract naming both contracts if one of `contracts` declares a route a different live contract has. */
export function refuseRouteClashes(contracts: readonly ContractDescriptor[], view: RegistryView): void {
  const taken = new Map<string, string>();
  for (const record of view.values()) {
    if (record.role !== 'host') continue;
    for (const s of record.services) for (const m of s.contract.methods) taken.set(routeKey(m.verb, m.path), s.contract.name);
  }
  for (const contract of contracts) {
    for (const m of contract.methods) {
      const key = routeKey(m.verb, m.path);
      const owner = taken.get(key);
      if (owner !== undefined && owner !== contract.name) {
        throw new WeftError('InvalidContract', `${contract.name}.${m.name}: route ${key} is already declared by ${owner} in this cluster`);
      }
    }
  }
}
