/**
 * In-memory session directory: one map per service shared by every node of
 * the process.
 */
import { SessionIndex } from './session-index.js';
import { MemoryRoomIndex } from './room-index.js';
import type { BusinessSessions, SessionDirectory } from './session-directory.js';

export class MemorySessionHub {
  readonly #indexes = new Map<string, SessionIndex>();
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

  constructor(hub: MemorySessionHub, nodeId: string) {
    this.#hub = hub;
    this.#nodeId = nodeId;
  }

  async start(): Promise<void> {}

  add(service: string, businessId: string, sessionId: string): void {
    this.#services.add(service);
    this.#hub.index(service).add(sessionId, businessId, this.#nodeId);
  }

  remove(service: string, businessId: string, sessionId: string): void {
    this.#hub.index(service).remove(sessionId, businessId);
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
    this.#hub.rooms.removeGateway(this.#nodeId);
    return Promise.resolve();
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
