/**
 * Sessions of one WebSocket service: businessId -> its sessions, each with
 * the gateway that holds it. Used as the shared map in memory mode and as
 * each host's replica in Redis mode, so it is built to be small: most
 * businessIds have one or a few sessions, kept in a flat array of
 * (sessionId, gatewayNodeId) pairs; a businessId with many sessions switches
 * to a Map. Gateway ids are interned (one string per gateway, not per
 * session). Empty businessIds are deleted, so memory follows live sessions.
 */

/** Pairs up to this many sessions; a Map beyond. */
const SMALL_GROUP = 16;

type Group = string[] | Map<string, string>;

export class SessionIndex {
  readonly #byBusiness = new Map<string, Group>();
  readonly #gatewayIds = new Map<string, string>();
  #size = 0;

  get size(): number {
    return this.#size;
  }

  add(sessionId: string, businessId: string, gatewayNodeId: string): void {
    let gateway = this.#gatewayIds.get(gatewayNodeId);
    if (gateway === undefined) {
      gateway = gatewayNodeId;
      this.#gatewayIds.set(gateway, gateway);
    }
    const group = this.#byBusiness.get(businessId);
    if (group === undefined) {
      this.#byBusiness.set(businessId, [sessionId, gateway]);
      this.#size += 1;
      return;
    }
    if (group instanceof Map) {
      if (!group.has(sessionId)) this.#size += 1;
      group.set(sessionId, gateway);
      return;
    }
    for (let i = 0; i < group.length; i += 2) {
      if (group[i] === sessionId) {
        group[i + 1] = gateway;
        return;
      }
    }
    this.#size += 1;
    if (group.length < SMALL_GROUP * 2) {
      group.push(sessionId, gateway);
      return;
    }
    const map = new Map<string, string>();
    for (let i = 0; i < group.length; i += 2) map.set(group[i]!, group[i + 1]!);
    map.set(sessionId, gateway);
    this.#byBusiness.set(businessId, map);
  }

  remove(sessionId: string, businessId: string): boolean {
    const group = this.#byBusiness.get(businessId);
    if (group === undefined) return false;
    if (group instanceof Map) {
      if (!group.delete(sessionId)) return false;
      if (group.size === 0) this.#byBusiness.delete(businessId);
      this.#size -= 1;
      return true;
    }
    for (let i = 0; i < group.length; i += 2) {
      if (group[i] !== sessionId) continue;
      // Order does not matter: move the last pair into the hole.
      const last = group.length - 2;
      group[i] = group[last]!;
      group[i + 1] = group[last + 1]!;
      group.length = last;
      if (last === 0) this.#byBusiness.delete(businessId);
      this.#size -= 1;
      return true;
    }
    return false;
  }

  /** Drops every session held by a gateway; returns how many. */
  removeGateway(gatewayNodeId: string): number {
    let removed = 0;
    for (const [businessId, group] of this.#byBusiness) {
      for (const [sessionId, gateway] of pairs(group)) {
        if (gateway === gatewayNodeId && this.remove(sessionId, businessId)) removed += 1;
      }
    }
    return removed;
  }

  /** Distinct gateways holding sessions of a businessId (usually one or two). */
  gatewaysOf(businessId: string): string[] {
    const group = this.#byBusiness.get(businessId);
    const out: string[] = [];
    if (group === undefined) return out;
    if (group instanceof Map) {
      for (const gateway of group.values()) if (!out.includes(gateway)) out.push(gateway);
      return out;
    }
    for (let i = 1; i < group.length; i += 2) if (!out.includes(group[i]!)) out.push(group[i]!);
    return out;
  }

  /** Session ids of a businessId whose gateway passes `live`. */
  sessionIdsOf(businessId: string, live: (gatewayNodeId: string) => boolean): string[] {
    const group = this.#byBusiness.get(businessId);
    const out: string[] = [];
    if (group === undefined) return out;
    for (const [sessionId, gateway] of pairs(group)) if (live(gateway)) out.push(sessionId);
    return out;
  }

  /** Every session as [sessionId, businessId, gatewayNodeId]. */
  *entries(): IterableIterator<[string, string, string]> {
    for (const [businessId, group] of this.#byBusiness) {
      for (const [sessionId, gateway] of pairs(group)) yield [sessionId, businessId, gateway];
    }
  }

  /** Every gateway holding at least one session. */
  gateways(): Set<string> {
    const out = new Set<string>();
    for (const group of this.#byBusiness.values()) for (const [, gateway] of pairs(group)) out.add(gateway);
    return out;
  }
}

function* pairs(group: Group): IterableIterator<[string, string]> {
  if (group instanceof Map) {
    yield* group;
    return;
  }
  // A copy, so callers may remove while they iterate.
  const snapshot = group.slice();
  for (let i = 0; i < snapshot.length; i += 2) yield [snapshot[i]!, snapshot[i + 1]!];
}
