/**
 * Catching up the weft.v1 sessions of this gateway after the directory had
 * lost them for a while (this gateway stalled past its node TTL and was
 * taken for dead, or Redis forgot the directory): pushes made meanwhile
 * skipped this gateway, and a session would only read the gap at its
 * stream's next push. Each open session reads its stream once, after its
 * position; a few reads at a time, so a gateway of many sessions that just
 * came back from a stall is not stalled again by its own catch-up.
 */
import type { Logger } from '../../logger.js';
import type { GatewaySession } from './gateway-sessions.js';

export interface CatchUpDeps {
  /** The sessions held here now. */
  sessions: () => Iterable<GatewaySession>;
  /** Reads and writes what one session missed; resolves when done (never rejects). */
  recheck: (session: GatewaySession) => Promise<void>;
  /** Reads in flight at once. */
  concurrency: number;
  logger: Logger;
}

export class CatchUp {
  readonly #d: CatchUpDeps;
  #running = false;
  /** Asked again while a pass ran: one more pass after it, for sessions it had already passed. */
  #again = false;

  constructor(deps: CatchUpDeps) {
    this.#d = deps;
  }

  /** Starts a pass over every session held now (or one more, after the running one). */
  run(): void {
    if (this.#running) {
      this.#again = true;
      return;
    }
    this.#running = true;
    void this.#pass().finally(() => {
      this.#running = false;
      if (!this.#again) return;
      this.#again = false;
      this.run();
    });
  }

  async #pass(): Promise<void> {
    const started = Date.now();
    const todo = [...this.#d.sessions()].filter((s) => s.v1 !== undefined && s.v1.epoch !== '');
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < todo.length) await this.#d.recheck(todo[next++]!);
    };
    await Promise.all(Array.from({ length: Math.min(this.#d.concurrency, todo.length) }, worker));
    if (todo.length > 0)
      this.#d.logger.info({ sessions: todo.length, ms: Date.now() - started }, 'sessions caught up after the directory had lost them');
  }
}
