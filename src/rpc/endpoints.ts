/**
 * Which nodes serve each service, rebuilt when the registry view changes and
 * read on every call without allocation.
 */
import type { RegistryView } from '../registry/registry.js';
import { HashRing } from './hash-ring.js';

interface ServiceEndpoints {
  /** Node ids in a stable order. */
  nodeIds: string[];
  ring: HashRing | undefined;
}

const EMPTY: readonly string[] = Object.freeze([]);

export class Endpoints {
  #byService = new Map<string, ServiceEndpoints>();

  update(view: RegistryView): void {
    const next = new Map<string, ServiceEndpoints>();
    for (const record of view.values()) {
      if (record.role !== 'host') continue;
      for (const service of record.services) {
        const name = service.contract.name;
        let entry = next.get(name);
        if (entry === undefined) {
          entry = { nodeIds: [], ring: undefined };
          next.set(name, entry);
        }
        entry.nodeIds.push(record.nodeId);
      }
    }
    for (const entry of next.values()) entry.nodeIds.sort();
    this.#byService = next;
  }

  nodeIds(service: string): readonly string[] {
    return this.#byService.get(service)?.nodeIds ?? EMPTY;
  }

  /** The consistent-hash ring of a service's nodes, built on first use. */
  ring(service: string): HashRing | undefined {
    const entry = this.#byService.get(service);
    if (entry === undefined) return undefined;
    entry.ring ??= new HashRing(entry.nodeIds);
    return entry.ring;
  }
}
