/**
 * What the front door admits before it asks a host: handshakes per client
 * address per second (a token bucket per address), and sessions per client
 * address and per businessId (counters, released when the session's socket
 * closes, whatever ended it). All of it is per gateway.
 */

/** One bucket per key: `ratePerSecond` tokens a second, at most `ratePerSecond` held (the burst). */
export class RateLimiter {
  readonly #rate: number;
  readonly #now: () => number;
  readonly #buckets = new Map<string, { tokens: number; at: number }>();
  #sweptAt: number;

  constructor(ratePerSecond: number, now: () => number = Date.now) {
    this.#rate = ratePerSecond;
    this.#now = now;
    this.#sweptAt = now();
  }

  /** Takes a token for `key`: 0 if it had one, else the seconds until it has (at least 1, for `Retry-After`). */
  take(key: string): number {
    const now = this.#now();
    this.#sweep(now);
    const capacity = Math.max(1, this.#rate);
    let bucket = this.#buckets.get(key);
    if (bucket === undefined) {
      bucket = { tokens: capacity, at: now };
      this.#buckets.set(key, bucket);
    } else {
      bucket.tokens = Math.min(capacity, bucket.tokens + ((now - bucket.at) / 1000) * this.#rate);
      bucket.at = now;
    }
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1;
      return 0;
    }
    return Math.max(1, Math.ceil((1 - bucket.tokens) / this.#rate));
  }

  /** Keys tracked (full buckets are forgotten within a second or so). */
  get size(): number {
    return this.#buckets.size;
  }

  /** At most once a second: forgets buckets that have refilled, so idle addresses cost nothing. */
  #sweep(now: number): void {
    if (now - this.#sweptAt < 1000) return;
    this.#sweptAt = now;
    const capacity = Math.max(1, this.#rate);
    for (const [key, bucket] of this.#buckets) {
      if (bucket.tokens + ((now - bucket.at) / 1000) * this.#rate >= capacity) this.#buckets.delete(key);
    }
  }
}

/** How many of something each key holds, at most `max` each. */
export class CountLimiter {
  readonly #max: number;
  readonly #counts = new Map<string, number>();

  constructor(max: number) {
    this.#max = max;
  }

  /** Counts one more for `key`; false (and nothing counted) when it already holds `max`. */
  acquire(key: string): boolean {
    const count = this.#counts.get(key) ?? 0;
    if (count >= this.#max) return false;
    this.#counts.set(key, count + 1);
    return true;
  }

  release(key: string): void {
    const count = this.#counts.get(key);
    if (count === undefined) return;
    if (count <= 1) this.#counts.delete(key);
    else this.#counts.set(key, count - 1);
  }

  count(key: string): number {
    return this.#counts.get(key) ?? 0;
  }
}
