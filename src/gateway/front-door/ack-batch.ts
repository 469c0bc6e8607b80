/**
 * Push acknowledgements leave once per link per turn: the acks of every
 * push a chunk from a host carried (dozens in a flood) go back as one
 * PushAcks frame, not one frame each. The batch is sent at the end of the
 * current task (a microtask), so it leaves in the same write as anything
 * else the link sends this turn: no added wait.
 */
import { FrameType } from '../../protocol/frames.js';
import type { PeerLink } from '../../transport/peer-link.js';

export class AckBatch {
  #pending = new Map<PeerLink, number[]>();
  #scheduled = false;
  readonly #flush = (): void => this.#flushAll();

  /** Queues the acknowledgement of push `ackId` (0: none asked) to the node behind `link`. */
  add(link: PeerLink, ackId: number, delivered: number): void {
    if (ackId === 0 || !link.isOpen) return;
    const acks = this.#pending.get(link);
    if (acks === undefined) this.#pending.set(link, [ackId, delivered]);
    else acks.push(ackId, delivered);
    if (!this.#scheduled) {
      this.#scheduled = true;
      queueMicrotask(this.#flush);
    }
  }

  #flushAll(): void {
    this.#scheduled = false;
    // A new map each turn, never clear() (why: history/redis-history.ts #flushAll).
    const pending = this.#pending;
    this.#pending = new Map();
    for (const [link, acks] of pending) {
      try {
        link.send(acks.length === 2 ? [FrameType.PushAck, acks[0]!, acks[1]!] : [FrameType.PushAcks, acks]);
      } catch {
        // The pusher's own timeout settles them.
      }
    }
  }
}
