/**
 * Sessions of one WebSocket service: businessId -> its sessions, each with
 * the gateway that holds it. Used as the shared map in memory mode and as
 * each host's replica in Redis mode, so it is built to be small: groups are
 * a GroupedIndex (flat pairs while small), and gateway ids are interned (one
 * string per gateway, not per session).
 */
import { GroupedIndex } from '../util/grouped-index.js';

/**
 * @example
 * // A third-party SessionDirectory keeps one per service.
 * const index = new SessionIndex();
 * index.add('s1', '100', 'gateway-a');
 * console.log(index.sessionIdsOf('100', () => true)); // ['s1']
 */
export class SessionIndex {
  readonly #sessions = new GroupedIndex<string>();
  readonly #gatewayIds = new Map<string, string>();

  get size(): number {
    return this.#sessions.size;
  }

  /**
   * Adds a session (or moves it to another gateway).
   *
   * @example
   * const index = new SessionIndex();
   * index.add(sessionId, businessId, 'gateway-a');
   */
  add(sessionId: string, businessId: string, gatewayNodeId: string): void {
    let gateway = this.#gatewayIds.get(gatewayNodeId);
    if (gateway === undefined) {
      gateway = gatewayNodeId;
      this.#gatewayIds.set(gateway, gateway);
    }
    this.#sessions.set(businessId, sessionId, gateway);
  }

  /**
   * Removes a session; false when it was not there.
   *
   * @example
   * const index = new SessionIndex();
   * index.add(sessionId, businessId, 'gateway-a');
   * index.remove(sessionId, businessId); // true
   */
  remove(sessionId: string, businessId: string): boolean {
    return this.#sessions.delete(businessId, sessionId);
  }

  /**
   * Drops every session held by a gateway; returns how many.
   *
   * @example
   * const index = new SessionIndex();
   * index.add('s1', '100', 'gateway-a');
   * console.log(index.removeGateway('gateway-a')); // 1: the gateway left the registry
   */
  removeGateway(gatewayNodeId: string): number {
    let removed = 0;
    for (const [businessId, sessionId, gateway] of this.#sessions.entries()) {
      if (gateway === gatewayNodeId && this.#sessions.delete(businessId, sessionId)) removed += 1;
    }
    this.#gatewayIds.delete(gatewayNodeId);
    return removed;
  }

  /**
   * Distinct gateways holding sessions of a businessId (usually one or two).
   *
   * @example
   * const index = new SessionIndex();
   * index.add('s1', '100', 'gateway-a');
   * index.add('s2', '100', 'gateway-a');
   * console.log(index.gatewaysOf('100')); // ['gateway-a']
   */
  gatewaysOf(businessId: string): string[] {
    const out: string[] = [];
    this.#sessions.forEachValue(businessId, (gateway) => {
      if (!out.includes(gateway)) out.push(gateway);
    });
    return out;
  }

  /**
   * Session ids of a businessId whose gateway passes `live`.
   *
   * @example
   * const index = new SessionIndex();
   * index.add('s1', '100', 'gateway-a');
   * index.add('s2', '100', 'gateway-b');
   * console.log(index.sessionIdsOf('100', (gateway) => gateway !== 'gateway-b')); // ['s1']
   */
  sessionIdsOf(businessId: string, live: (gatewayNodeId: string) => boolean): string[] {
    const out: string[] = [];
    for (const [sessionId, gateway] of this.#sessions.entriesOf(businessId)) if (live(gateway)) out.push(sessionId);
    return out;
  }

  /**
   * The sessions of a businessId as [sessionId, gatewayNodeId].
   *
   * @example
   * const index = new SessionIndex();
   * index.add('s1', '100', 'gateway-a');
   * console.log(index.sessionsOf('100')); // [['s1', 'gateway-a']]
   */
  sessionsOf(businessId: string): [string, string][] {
    return this.#sessions.entriesOf(businessId);
  }

  /**
   * Every session as [sessionId, businessId, gatewayNodeId].
   *
   * @example
   * const index = new SessionIndex();
   * for (const [sessionId, businessId, gatewayNodeId] of index.entries()) console.log(sessionId, businessId, gatewayNodeId);
   */
  *entries(): IterableIterator<[string, string, string]> {
    for (const [businessId, sessionId, gateway] of this.#sessions.entries()) yield [sessionId, businessId, gateway];
  }

  /**
   * Every gateway holding at least one session.
   *
   * @example
   * const index = new SessionIndex();
   * index.add('s1', '100', 'gateway-a');
   * console.log(index.gateways()); // Set { 'gateway-a' }
   */
  gateways(): Set<string> {
    const out = new Set<string>();
    this.#sessions.forEach((gateway) => out.add(gateway));
    return out;
  }
}
