/**
 * Pings for client sessions, spread over the interval: each tick visits a
 * slice of the sessions, so a gateway with many sessions never stalls on one
 * loop over all of them. A pass over all sessions starts at most once per
 * interval, so every session has a whole interval to answer its ping,
 * however few sessions there are. A session whose socket read nothing (no
 * pong, no message) since its last ping is dead.
 */
import type { Duplex } from 'node:stream';
import { SessionState, type GatewaySession } from './gateway-sessions.js';

/** How often a slice of the sessions is visited. */
const TICK_MS = 100;

/** What a TCP or TLS socket has read; NaN for a stream that does not say, which is then never taken for dead. */
function bytesRead(socket: Duplex): number {
  const n = (socket as { bytesRead?: unknown }).bytesRead;
  return typeof n === 'number' ? n : NaN;
}

export interface KeepaliveOptions {
  pingIntervalMs: number;
  /** The sessions to visit (read afresh each tick). */
  sessions: () => { readonly size: number; values(): IterableIterator<GatewaySession> };
  /** A session that did not answer its last ping. */
  dead: (session: GatewaySession) => void;
}

export class Keepalive {
  readonly #o: KeepaliveOptions;
  #timer: NodeJS.Timeout | undefined;
  #cursor: IterableIterator<GatewaySession> | undefined;
  #nextPassAt = 0;

  constructor(options: KeepaliveOptions) {
    this.#o = options;
  }

  start(): void {
    this.#timer ??= setInterval(() => this.#tick(), TICK_MS);
    this.#timer.unref();
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  #tick(): void {
    const sessions = this.#o.sessions();
    const total = sessions.size;
    if (total === 0) return;
    if (this.#cursor === undefined) {
      const now = Date.now();
      if (now < this.#nextPassAt) return;
      this.#nextPassAt = now + this.#o.pingIntervalMs;
      this.#cursor = sessions.values();
    }
    const perTick = Math.ceil((total * TICK_MS) / this.#o.pingIntervalMs);
    for (let i = 0; i < perTick; i++) {
      const next = this.#cursor.next();
      if (next.done === true) {
        this.#cursor = undefined;
        break;
      }
      const session = next.value;
      if (session.state !== SessionState.Open) continue;
      // A socket paused for back-pressure is not read, so its pongs are not heard: not a dead client.
      if (session.readPaused) continue;
      // Any byte read since the last ping, its pong or a message, is the client answering. Read
      // off the socket rather than heard through a 'pong' listener: a fourth event name on every
      // WebSocket doubles its listener table (about 100 bytes a session).
      const read = bytesRead(session.socket);
      if (read === session.bytesReadAtPing) {
        this.#o.dead(session);
        continue;
      }
      session.bytesReadAtPing = read;
      session.ws!.ping();
    }
  }
}
