/**
 * Which nodes serve each service, rebuilt when the registry view changes and
 * read on every call without allocation.
 */
import type { MethodDescriptor } from '../contract/contract.js';
import type { NodeRecord, RegistryView } from '../registry/registry.js';
import { HashRing } from './hash-ring.js';

interface ServiceEndpoints {
  /** Node ids in a stable order. */
  nodeIds: string[];
  ring: HashRing | undefined;
  methods: Map<string, MethodDescriptor>;
}

const EMPTY: readonly string[] = Object.freeze([]);

export class Endpoints {
  #byService = new Map<string, ServiceEndpoints>();
  #view: RegistryView = new Map();

  update(view: RegistryView): void {
    this.#view = view;
    const next = new Map<string, ServiceEndpoints>();
    for (const record of view.values()) {
      if (record.role !== 'host') continue;
      for (const service of record.services) {
        const name = service.contract.name;
        let entry = next.get(name);
        if (entry === undefined) {
          entry = { nodeIds: [], ring: undefined, methods: new Map() };
          next.set(name, entry);
        }
        entry.nodeIds.push(record.nodeId);
        for (const m of service.contract.methods) if (!entry.methods.has(m.name)) entry.methods.set(m.name, m);
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

  method(service: string, method: string): MethodDescriptor | undefined {
    return this.#byService.get(service)?.methods.get(method);
  }

  record(nodeId: string): NodeRecord | undefined {
    return this.#view.get(nodeId);
  }
}
