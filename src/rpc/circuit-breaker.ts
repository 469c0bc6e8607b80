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

  /** May a call go to `endpoint` now? Moves an open circuit to half-open once its time is up. */
  allows(endpoint: string): boolean {
    const c = this.#circuits.get(endpoint);
    if (c === undefined || c.state === 'closed') return true;
    if (c.state === 'open' && Date.now() - c.openedAt >= this.#o.resetAfterMs) {
      c.state = 'half-open';
      return true;
    }
    return false;
  }

  state(endpoint: string): State {
    return this.#circuits.get(endpoint)?.state ?? 'closed';
  }

  success(endpoint: string): void {
    const c = this.#circuits.get(endpoint);
    if (c !== undefined) this.#circuits.delete(endpoint);
  }

  failure(endpoint: string): void {
    let c = this.#circuits.get(endpoint);
    if (c === undefined) this.#circuits.set(endpoint, (c = { state: 'closed', failures: 0, openedAt: 0 }));
    c.failures += 1;
    if (c.state === 'half-open' || c.failures >= this.#o.failureThreshold) {
      c.state = 'open';
      c.openedAt = Date.now();
    }
  }

  forget(endpoint: string): void {
    this.#circuits.delete(endpoint);
  }
}
