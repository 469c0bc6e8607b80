/**
 * Warnings a peer can cause at will (a bad frame, a refused handshake, a
 * connection over the handshake cap), logged at most once per interval for
 * each message. What comes in between is counted, not logged: the next line
 * of that message carries `suppressed`, the number of such warnings since the
 * previous line (with the fields of the latest of them). A flood of bad
 * connections makes a few lines a second, not one per connection, and none
 * goes uncounted.
 *
 * @example
 * const warnings = new WarnLimiter(logger, 1000);
 * warnings.warn({ peer: '10.0.0.7:51234' }, 'link refused');
 */
import type { Logger } from '../logger.js';

interface MessageState {
  /** When the last line of this message was written. */
  lastAt: number;
  /** Warnings since that line, not logged one by one. */
  suppressed: number;
  /** Fields of the latest of them. */
  latest: Record<string, unknown>;
  /** Writes the summary line once the interval is over. */
  timer: NodeJS.Timeout | undefined;
}

export class WarnLimiter {
  readonly #logger: Logger;
  readonly #intervalMs: number;
  readonly #messages = new Map<string, MessageState>();

  constructor(logger: Logger, intervalMs: number) {
    this.#logger = logger;
    this.#intervalMs = intervalMs;
  }

  /** Logs at warn now, or counts it for a line at the end of the interval. */
  warn(fields: Record<string, unknown>, message: string): void {
    const now = Date.now();
    let state = this.#messages.get(message);
    if (state === undefined) {
      state = { lastAt: Number.NEGATIVE_INFINITY, suppressed: 0, latest: fields, timer: undefined };
      this.#messages.set(message, state);
    }
    if (state.timer === undefined && now - state.lastAt >= this.#intervalMs) {
      state.lastAt = now;
      this.#logger.warn(fields, message);
      return;
    }
    state.suppressed += 1;
    state.latest = fields;
    if (state.timer === undefined) {
      const s = state;
      s.timer = setTimeout(() => this.#flush(message, s), Math.max(0, s.lastAt + this.#intervalMs - now));
      s.timer.unref();
    }
  }

  /** Writes what is still counted (the node is closing). */
  flush(): void {
    for (const [message, state] of this.#messages) this.#flush(message, state);
  }

  #flush(message: string, state: MessageState): void {
    clearTimeout(state.timer);
    state.timer = undefined;
    if (state.suppressed === 0) return;
    const suppressed = state.suppressed;
    state.suppressed = 0;
    state.lastAt = Date.now();
    this.#logger.warn({ ...state.latest, suppressed }, message);
  }
}
