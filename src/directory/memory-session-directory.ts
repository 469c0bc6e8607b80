/**
 * In-memory session directory: one map per service shared by every node of
 * the process.
 */
import { SessionIndex } from './session-index.js';
import type { BusinessSessions, DescribedSession, PresenceListener, SessionDirectory, SessionRecord } from './session-directory.js';
import { MemoryPresence } from './memory-presence.js';
import { MemoryRoomIndex } from './room-index.js';
import type { Logger } from '../logger.js';

export class MemorySessionHub {
  readonly #indexes = new Map<string, SessionIndex>();
  /** Records, and join/leave/online/offline events, of the sessions gateways hold (presence). */
  readonly presence = new MemoryPresence();
  /** Room -> the gateways holding its members, for every service of the process. */
  readonly rooms = new MemoryRoomIndex();

  index(service: string): SessionIndex {
    let index = this.#indexes.get(service);
    if (index === undefined) {
      index = new SessionIndex();
      this.#indexes.set(service, index);
    }
    return index;
  }
}

export class MemorySessionDirectory implements SessionDirectory {
  readonly #hub: MemorySessionHub;
  readonly #nodeId: string;
  readonly #services = new Set<string>();

  readonly #logger: Logger | undefined;

  constructor(hub: MemorySessionHub, nodeId: string, logger?: Logger) {
    this.#hub = hub;
    this.#nodeId = nodeId;
    this.#logger = logger;
  }

  async start(): Promise<void> {}

  add(service: string, businessId: string, sessionId: string, record?: SessionRecord): void {
    this.#services.add(service);
    this.#hub.index(service).add(sessionId, businessId, this.#nodeId);
    this.#hub.presence.add(service, businessId, sessionId, this.#nodeId, record);
  }

  remove(service: string, businessId: string, sessionId: string): void {
    this.#hub.index(service).remove(sessionId, businessId);
    this.#hub.presence.remove(service, businessId, sessionId);
  }

  // Nothing to restore: the map lives as long as the process.
  setHeldSessions(): void {}

  async watch(): Promise<void> {}

  bind(service: string, businessId: string, sessionId: string, gatewayNodeId: string): void {
    this.#hub.index(service).add(sessionId, businessId, gatewayNodeId);
  }

  unbind(service: string, businessId: string, sessionId: string): void {
    this.#hub.index(service).remove(sessionId, businessId);
  }

  sessionsOf(service: string, businessId: string): BusinessSessions {
    return this.#hub.index(service).sessionsOf(businessId);
  }

  size(service: string): Promise<number> {
    return Promise.resolve(this.#hub.index(service).size);
  }

  entries(service: string): Promise<Iterable<readonly [string, string, string]>> {
    return Promise.resolve([...this.#hub.index(service).entries()]);
  }

  gateways(service: string): Promise<Iterable<string>> {
    return Promise.resolve(this.#hub.index(service).gateways());
  }

  close(): Promise<void> {
    for (const service of this.#services) this.#hub.index(service).removeGateway(this.#nodeId);
    for (const service of this.#services) this.#hub.presence.removeGateway(service, this.#nodeId);
    this.#hub.rooms.removeGateway(this.#nodeId);
    return Promise.resolve();
  }

  describe(service: string, businessId: string): Promise<readonly DescribedSession[]> {
    return Promise.resolve(this.#hub.presence.describe(service, businessId));
  }

  onPresence(service: string, listener: PresenceListener): Promise<() => void> {
    const logger = this.#logger;
    // A listener that throws is this node's bug: logged here, the other listeners still run.
    const safe: PresenceListener = (event) => {
      try {
        listener(event);
      } catch (err) {
        logger?.warn({ err, service }, 'a presence listener threw');
      }
    };
    return Promise.resolve(this.#hub.presence.listen(service, safe));
  }

  addRoom(service: string, room: string): Promise<void> {
    this.#hub.rooms.add(service, room, this.#nodeId);
    return Promise.resolve();
  }

  removeRoom(service: string, room: string): void {
    this.#hub.rooms.remove(service, room, this.#nodeId);
  }

  roomGateways(service: string, room: string): string[] {
    return this.#hub.rooms.gatewaysOf(service, room);
  }

  // Nothing to restore, as for sessions.
  setHeldRooms(): void {}
}
