/**
 * One session's client messages on the host it is bound to: onMessage runs
 * for one message at a time, in the order they came, each after the one
 * before it settled. The gateway keeps to a window of messages waiting here
 * (it stops reading the client there), and hears how many ran so it may send
 * more; a message past the window is refused, and the caller closes the
 * session (1013).
 */

/** A weft.v1 client's request: a named message whose handler's result is the reply. */
export interface ClientRequest {
  readonly id: number;
  readonly name: string;
  /** The client's request message as it sent it (JSON); its `params` are the handler's. */
  readonly body: Uint8Array;
}

/** What waits in a session's queue: a raw message (onMessage) or a request (its handler). */
export type ClientInput = string | Buffer | ClientRequest;

export interface MessageQueueDeps<T> {
  /** Runs onMessage (or a request's handler) for one message; settles when it did (its errors are handled by the caller). */
  run: (message: T) => Promise<void> | undefined;
  /** `count` more messages ran: the gateway may send that many more. */
  handled: (count: number) => void;
}

export class MessageQueue<T> {
  readonly #bound: number;
  readonly #d: MessageQueueDeps<T>;
  /** After how many messages that ran the gateway is told, even while more wait (half the window). */
  readonly #reportEvery: number;
  #items: T[] = [];
  #running = false;
  #unreported = 0;
  /** Runs once the queue is empty after `end` (onClose). */
  #last: (() => void) | undefined;
  #ended = false;

  constructor(bound: number, deps: MessageQueueDeps<T>) {
    this.#bound = bound;
    this.#d = deps;
    this.#reportEvery = Math.max(1, Math.floor(bound / 2));
  }

  /** Messages waiting or running. */
  get pending(): number {
    return this.#items.length + (this.#running ? 1 : 0);
  }

  /** Queues a message; false, and nothing queued, when the window is full (or the session ended). */
  push(message: T): boolean {
    if (this.#ended || this.pending >= this.#bound) return false;
    this.#items.push(message);
    if (!this.#running) void this.#drain();
    return true;
  }

  /** No more messages: `last` runs once those already queued have run (at once if none). */
  end(last: () => void): void {
    if (this.#ended) return;
    this.#ended = true;
    if (this.#running) this.#last = last;
    else last();
  }

  async #drain(): Promise<void> {
    this.#running = true;
    for (let message = this.#items.shift(); message !== undefined; message = this.#items.shift()) {
      try {
        await this.#d.run(message);
      } catch {
        // run reports its own errors; the next message still runs
      }
      this.#unreported += 1;
      if (this.#items.length === 0 || this.#unreported >= this.#reportEvery) {
        const n = this.#unreported;
        this.#unreported = 0;
        if (!this.#ended) this.#d.handled(n);
      }
    }
    this.#running = false;
    const last = this.#last;
    this.#last = undefined;
    last?.();
  }
}
