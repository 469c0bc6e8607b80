/**
 * Which nodes serve each service, rebuilt when the registry view changes and
 * read on every call without allocation.
 *
 * The hash ring of a service leaves out the nodes that cannot be dialed now
 * (`setReachable`, fed by the links): a host that died stops receiving new
 * sessions and hashed calls at once, not when the registry drops it seconds
 * later. It comes back when a link to it opens again. When every node of a
 * service is unreachable the ring keeps them all, so a caller still tries one
 * and gets the dial's own error.
 */
import type { RegistryView } from '../registry/registry.js';
import { HashRing } from '../util/hash-ring.js';

interface ServiceEndpoints {
  /** Node ids in a stable order. */
  nodeIds: string[];
  ring: HashRing | undefined;
}

const EMPTY: readonly string[] = Object.freeze([]);

export class Endpoints {
  #byService = new Map<string, ServiceEndpoints>();
  readonly #unreachable = new Set<string>();

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
    // Node ids never come back: what is known of one that left goes with it.
    for (const id of this.#unreachable) if (!view.has(id)) this.#unreachable.delete(id);
    this.#byService = next;
  }

  /** A node could not be dialed (false), or a link to it opened again (true). */
  setReachable(nodeId: string, reachable: boolean): void {
    if (reachable === !this.#unreachable.has(nodeId)) return;
    if (reachable) this.#unreachable.delete(nodeId);
    else this.#unreachable.add(nodeId);
    for (const entry of this.#byService.values()) if (entry.nodeIds.includes(nodeId)) entry.ring = undefined;
  }

  /** Does `nodeId` serve some service (so it is on a hash ring when reachable)? */
  inRing(nodeId: string): boolean {
    for (const entry of this.#byService.values()) if (entry.nodeIds.includes(nodeId)) return true;
    return false;
  }

  nodeIds(service: string): readonly string[] {
    return this.#byService.get(service)?.nodeIds ?? EMPTY;
  }

  /** The consistent-hash ring of a service's reachable nodes, built on first use. */
  ring(service: string): HashRing | undefined {
    const entry = this.#byService.get(service);
    if (entry === undefined) return undefined;
    entry.ring ??= this.#buildRing(entry.nodeIds);
    return entry.ring;
  }

  #buildRing(nodeIds: readonly string[]): HashRing {
    if (this.#unreachable.size === 0) return new HashRing(nodeIds);
    const reachable = nodeIds.filter((id) => !this.#unreachable.has(id));
    return new HashRing(reachable.length > 0 ? reachable : nodeIds);
  }
}
