/**
 * Presence in memory mode, shared by every node of the process: the record
 * of each session a gateway holds, by (service, businessId), and its events,
 * delivered to the listeners once per turn of the event loop (as a Redis
 * subscriber would get them: never inside the gateway's own call).
 *
 * Online and offline come from this table, not from the directory's index:
 * a host lists a session there (`bind`) before its gateway does, which must
 * not count as the businessId coming online.
 */
import { described, businessEvent, joinEvent, leaveEvent, PresenceListeners, type WirePresence } from './presence-events.js';
import type { DescribedSession, PresenceListener, SessionRecord } from './session-directory.js';

interface Held {
  readonly gatewayNodeId: string;
  readonly record: SessionRecord | undefined;
}

export class MemoryPresence {
  /** service -> businessId -> sessionId -> its gateway and record */
  readonly #sessions = new Map<string, Map<string, Map<string, Held>>>();
  // Listeners are wrapped by their directory, which logs what they throw.
  readonly #listeners = new PresenceListeners(() => undefined);
  #queued = new Map<string, WirePresence[]>();
  #scheduled = false;

  #ofBusiness(service: string, businessId: string, create: boolean): Map<string, Held> | undefined {
    let byBusiness = this.#sessions.get(service);
    if (byBusiness === undefined) {
      if (!create) return undefined;
      this.#sessions.set(service, (byBusiness = new Map<string, Map<string, Held>>()));
    }
    let held = byBusiness.get(businessId);
    if (held === undefined && create) byBusiness.set(businessId, (held = new Map<string, Held>()));
    return held;
  }

  add(service: string, businessId: string, sessionId: string, gatewayNodeId: string, record: SessionRecord | undefined): void {
    const held = this.#ofBusiness(service, businessId, true)!;
    const first = held.size === 0;
    const again = held.has(sessionId);
    held.set(sessionId, { gatewayNodeId, record });
    if (again || !this.#listeners.has(service)) return;
    this.#queue(service, joinEvent(businessId, sessionId, gatewayNodeId, record, record?.openedAt ?? Date.now()));
    if (first) this.#queue(service, businessEvent(true, businessId, Date.now()));
  }

  remove(service: string, businessId: string, sessionId: string): void {
    const held = this.#ofBusiness(service, businessId, false);
    const session = held?.get(sessionId);
    if (held === undefined || session === undefined) return;
    held.delete(sessionId);
    if (held.size === 0) this.#sessions.get(service)?.delete(businessId);
    if (!this.#listeners.has(service)) return;
    const at = Date.now();
    this.#queue(service, leaveEvent(businessId, sessionId, session.gatewayNodeId, session.record, at));
    if (held.size === 0) this.#queue(service, businessEvent(false, businessId, at));
  }

  /** A gateway closed: each session it still listed leaves. */
  removeGateway(service: string, gatewayNodeId: string): void {
    for (const [businessId, held] of [...(this.#sessions.get(service) ?? [])]) {
      for (const [sessionId, session] of [...held]) if (session.gatewayNodeId === gatewayNodeId) this.remove(service, businessId, sessionId);
    }
  }

  describe(service: string, businessId: string): DescribedSession[] {
    const out: DescribedSession[] = [];
    for (const [sessionId, { gatewayNodeId, record }] of this.#ofBusiness(service, businessId, false) ?? []) {
      out.push(described(sessionId, gatewayNodeId, record));
    }
    return out;
  }

  listen(service: string, listener: PresenceListener): () => void {
    this.#listeners.add(service, listener);
    return () => void this.#listeners.remove(service, listener);
  }

  #queue(service: string, event: WirePresence): void {
    let events = this.#queued.get(service);
    if (events === undefined) this.#queued.set(service, (events = []));
    events.push(event);
    if (this.#scheduled) return;
    this.#scheduled = true;
    setImmediate(() => {
      this.#scheduled = false;
      const queued = this.#queued;
      this.#queued = new Map();
      for (const [s, batch] of queued) this.#listeners.emit(s, batch);
    });
  }
}
