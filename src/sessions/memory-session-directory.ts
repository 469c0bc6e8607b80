/**
 * In-memory session directory: one map per service shared by every node of
 * the process.
 */
import { SessionIndex } from './session-index.js';
import type { SessionDirectory } from './session-directory.js';

export class MemorySessionHub {
  readonly #indexes = new Map<string, SessionIndex>();

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
  /** What this node added, so close() can take it back. */
  readonly #mine = new Map<string, string>();

  constructor(hub: MemorySessionHub, nodeId: string) {
    this.#hub = hub;
    this.#nodeId = nodeId;
  }

  async start(): Promise<void> {}

  add(service: string, businessId: string, sessionId: string): void {
    this.#hub.index(service).add(sessionId, businessId, this.#nodeId);
    this.#mine.set(sessionId, service);
  }

  remove(service: string, sessionId: string): void {
    this.#hub.index(service).remove(sessionId);
    this.#mine.delete(sessionId);
  }

  async watch(): Promise<void> {}

  index(service: string): SessionIndex {
    return this.#hub.index(service);
  }

  async close(): Promise<void> {
    for (const [sessionId, service] of this.#mine) this.#hub.index(service).remove(sessionId);
    this.#mine.clear();
  }
}
