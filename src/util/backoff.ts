/**
 * Exponential backoff with jitter, shared by links, Redis and the client.
 * Pure (no Node imports: the client runs in browsers) and timer-free: it
 * computes delays, the caller waits. Time is passed in (default `Date.now()`),
 * so it can be tested without waiting.
 *
 * Each failure doubles the delay, from `initialDelayMs` up to `maxDelayMs`.
 * A connection that opens does not reset it: only one that stayed up for
 * `healthyAfterMs` does, so a server that accepts and closes at once is
 * retried ever more slowly instead of at the initial delay forever.
 *
 * @example
 * const backoff = new Backoff({ initialDelayMs: 250, maxDelayMs: 10_000, jitter: 0.5, healthyAfterMs: 5000 });
 * socket.onopen = () => backoff.connected();
 * socket.onclose = () => setTimeout(reconnect, backoff.disconnected());
 */

export interface BackoffOptions {
  /** Delay after the first failure. */
  initialDelayMs: number;
  /** Longest delay; doubling stops here. */
  maxDelayMs: number;
  /**
   * Fraction of each delay that is random, so many clients do not retry in
   * step: 0.5 gives a delay in [d/2, d], 0 exactly d. Default 0.5.
   */
  jitter?: number;
  /**
   * How long a connection must stay up (from `connected()` to
   * `disconnected()`) for the delays to start again from `initialDelayMs`.
   * 0: any connection that opened.
   */
  healthyAfterMs: number;
  /** Source of randomness in [0, 1); default Math.random (tests pass their own). */
  random?: () => number;
}

export class Backoff {
  readonly #initial: number;
  readonly #max: number;
  readonly #jitter: number;
  readonly #healthyAfter: number;
  readonly #random: () => number;
  #failures = 0;
  #retryAt = 0;
  #connectedAt: number | undefined;

  constructor(options: BackoffOptions) {
    this.#initial = nonNegative('initialDelayMs', options.initialDelayMs);
    this.#max = nonNegative('maxDelayMs', options.maxDelayMs);
    this.#healthyAfter = nonNegative('healthyAfterMs', options.healthyAfterMs);
    const jitter = options.jitter ?? 0.5;
    if (!(jitter >= 0 && jitter <= 1)) throw new RangeError(`backoff: jitter must be in [0, 1], got ${jitter}`);
    this.#jitter = jitter;
    this.#random = options.random ?? Math.random;
  }

  /** Failures since the last reset. */
  get failures(): number {
    return this.#failures;
  }

  /**
   * Records a failure (an attempt that did not connect) and returns how long
   * to wait before the next attempt: initialDelayMs * 2^(failures - 1), at
   * most maxDelayMs, less the random part.
   */
  nextDelayMs(nowMs: number = Date.now()): number {
    this.#failures += 1;
    const exponent = Math.min(this.#failures - 1, 1023); // 2 ** 1024 is Infinity; the cap applies long before
    const base = Math.min(this.#max, this.#initial * 2 ** exponent);
    const delay = base * (1 - this.#jitter * this.#random());
    this.#retryAt = nowMs + delay;
    return delay;
  }

  /** Milliseconds until the next attempt is due (after the last `nextDelayMs()`); 0 when it is due now. */
  remainingMs(nowMs: number = Date.now()): number {
    return Math.max(0, this.#retryAt - nowMs);
  }

  /** A connection opened. Does not reset anything yet: see `disconnected()`. */
  connected(nowMs: number = Date.now()): void {
    this.#connectedAt = nowMs;
  }

  /**
   * The connection ended (or an attempt failed, when `connected()` was not
   * called since): resets first if it had stayed up for healthyAfterMs, then
   * records a failure and returns the delay before the next attempt.
   */
  disconnected(nowMs: number = Date.now()): number {
    const since = this.#connectedAt;
    this.#connectedAt = undefined;
    if (since !== undefined && nowMs - since >= this.#healthyAfter) this.reset();
    return this.nextDelayMs(nowMs);
  }

  /** Starts again from initialDelayMs, with nothing to wait for. */
  reset(): void {
    this.#failures = 0;
    this.#retryAt = 0;
  }
}

function nonNegative(name: string, value: number): number {
  if (!(typeof value === 'number' && value >= 0 && Number.isFinite(value))) {
    throw new RangeError(`backoff: ${name} must be a finite number >= 0, got ${String(value)}`);
  }
  return value;
}
