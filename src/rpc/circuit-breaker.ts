/**
 * A circuit breaker per endpoint. After `failureThreshold` transport
 * failures or timeouts in a row the endpoint is skipped for `resetAfterMs`;
 * then one call is let through, and its outcome closes or reopens it.
 * Business and validation errors are answers, not failures: they never count.
 */
export interface CircuitBreakerOptions {
  failureThreshold: number;
  resetAfterMs: number;
}

type State = 'closed' | 'open' | 'half-open';

interface Circuit {
  state: State;
  failures: number;
  openedAt: number;
}

export class CircuitBreakers {
  readonly #o: CircuitBreakerOptions;
  readonly #circuits = new Map<string, Circuit>();

  constructor(options: CircuitBreakerOptions) {
    this.#o = options;
  }

  /**
   * May a call go to `endpoint` now? Moves an open circuit to half-open once
   * its time is up and lets one trial through; a trial whose outcome never
   * comes (it could not even be sent) does not hold the circuit: after another
   * `resetAfterMs` the next call is a trial again.
   */
  allows(endpoint: string): boolean {
    const c = this.#circuits.get(endpoint);
    if (c === undefined || c.state === 'closed') return true;
    const now = Date.now();
    if (now - c.openedAt >= this.#o.resetAfterMs) {
      c.state = 'half-open';
      c.openedAt = now;
      return true;
    }
    return false;
  }

  state(endpoint: string): State {
    return this.#circuits.get(endpoint)?.state ?? 'closed';
  }

  /** The endpoint answered (a result or any error it sent back): the circuit closes. */
  success(endpoint: string): void {
    this.#circuits.delete(endpoint);
  }

  /** No answer: a transport failure or a timeout. */
  failure(endpoint: string): void {
    let c = this.#circuits.get(endpoint);
    if (c === undefined) this.#circuits.set(endpoint, (c = { state: 'closed', failures: 0, openedAt: 0 }));
    c.failures += 1;
    if (c.state === 'half-open' || c.failures >= this.#o.failureThreshold) {
      c.state = 'open';
      c.openedAt = Date.now();
    }
  }

  /** Forgets the circuits of endpoints that are gone. */
  forgetAllBut(live: (endpoint: string) => boolean): void {
    for (const endpoint of this.#circuits.keys()) if (!live(endpoint)) this.#circuits.delete(endpoint);
  }
}
