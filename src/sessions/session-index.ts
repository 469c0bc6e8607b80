/**
 * Sessions of one WebSocket service: businessId -> sessionId -> gateway node
 * id, with the reverse map for removal. Empty businessIds are deleted, so
 * memory follows live sessions. Used as the shared map in memory mode and as
 * each host's replica in Redis mode.
 */
export class SessionIndex {
  readonly #byBusiness = new Map<string, Map<string, string>>();
  readonly #businessOf = new Map<string, string>();

  get size(): number {
    return this.#businessOf.size;
  }

  add(sessionId: string, businessId: string, gatewayNodeId: string): void {
    const previous = this.#businessOf.get(sessionId);
    if (previous !== undefined && previous !== businessId) this.remove(sessionId);
    let sessions = this.#byBusiness.get(businessId);
    if (sessions === undefined) {
      sessions = new Map();
      this.#byBusiness.set(businessId, sessions);
    }
    sessions.set(sessionId, gatewayNodeId);
    this.#businessOf.set(sessionId, businessId);
  }

  remove(sessionId: string): boolean {
    const businessId = this.#businessOf.get(sessionId);
    if (businessId === undefined) return false;
    this.#businessOf.delete(sessionId);
    const sessions = this.#byBusiness.get(businessId);
    if (sessions !== undefined) {
      sessions.delete(sessionId);
      if (sessions.size === 0) this.#byBusiness.delete(businessId);
    }
    return true;
  }

  /** Drops every session held by a gateway; returns how many. */
  removeGateway(gatewayNodeId: string): number {
    let removed = 0;
    for (const [businessId, sessions] of this.#byBusiness) {
      for (const [sessionId, gateway] of sessions) {
        if (gateway !== gatewayNodeId) continue;
        sessions.delete(sessionId);
        this.#businessOf.delete(sessionId);
        removed += 1;
      }
      if (sessions.size === 0) this.#byBusiness.delete(businessId);
    }
    return removed;
  }

  /** Keeps only sessions whose gateway passes `isLive`; returns how many went. */
  retainGateways(isLive: (gatewayNodeId: string) => boolean): number {
    const dead = new Set<string>();
    for (const sessions of this.#byBusiness.values()) {
      for (const gateway of sessions.values()) if (!isLive(gateway)) dead.add(gateway);
    }
    let removed = 0;
    for (const gateway of dead) removed += this.removeGateway(gateway);
    return removed;
  }

  /** sessionId -> gateway node id for one businessId; do not mutate. */
  sessionsOf(businessId: string): ReadonlyMap<string, string> | undefined {
    return this.#byBusiness.get(businessId);
  }

  businessOf(sessionId: string): string | undefined {
    return this.#businessOf.get(sessionId);
  }

  businessIds(): IterableIterator<string> {
    return this.#byBusiness.keys();
  }

  /** Every gateway holding at least one session. */
  gateways(): Set<string> {
    const out = new Set<string>();
    for (const sessions of this.#byBusiness.values()) for (const g of sessions.values()) out.add(g);
    return out;
  }

  clear(): void {
    this.#byBusiness.clear();
    this.#businessOf.clear();
  }
}
