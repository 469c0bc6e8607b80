/**
 * The lookups of one event-loop turn, sent as one pipeline: one socket
 * write and one reply read for many reads, where each command alone cost a
 * write syscall (ioredis' auto-pipelining would do this, but it is off:
 * redis-connection.ts says why). A node that pushes without a replica of
 * the directory reads once per push; under load those reads were a third
 * of its CPU, most of it in the writes.
 *
 * The same read twice in one turn is sent once. On a Redis Cluster a
 * pipeline's keys must share a slot, so each read there goes alone.
 */
import type { RedisConnection } from './redis-connection.js';

/** Most reads in one pipeline: the replies are parsed in one go, and a turn should not wait on a huge one. */
const MAX_READS = 500;

interface QueuedRead {
  readonly key: string;
  readonly min: string;
  readonly max: string;
  readonly done: Promise<string[]>;
  resolve(members: string[]): void;
  reject(error: unknown): void;
}

export class TurnReads {
  readonly #redis: RedisConnection;
  #queued = new Map<string, QueuedRead>();
  #scheduled = false;
  readonly #flush = (): void => {
    this.#scheduled = false;
    this.#send();
  };

  constructor(redis: RedisConnection) {
    this.#redis = redis;
  }

  /** ZRANGEBYLEX key min max, sent with the other reads of this turn. */
  zrangebylex(key: string, min: string, max: string): Promise<string[]> {
    if (this.#redis.isCluster) return this.#redis.command.zrangebylex(key, min, max);
    const id = `${key}\u0000${min}\u0000${max}`;
    const queued = this.#queued.get(id);
    if (queued !== undefined) return queued.done;
    let resolve!: (members: string[]) => void;
    let reject!: (error: unknown) => void;
    const done = new Promise<string[]>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    this.#queued.set(id, { key, min, max, done, resolve, reject });
    if (this.#queued.size >= MAX_READS) this.#send();
    else if (!this.#scheduled) {
      this.#scheduled = true;
      setImmediate(this.#flush);
    }
    return done;
  }

  #send(): void {
    const reads = [...this.#queued.values()];
    this.#queued = new Map();
    if (reads.length === 0) return;
    const pipeline = this.#redis.command.pipeline();
    for (const r of reads) pipeline.zrangebylex(r.key, r.min, r.max);
    pipeline.exec().then(
      (results) => {
        reads.forEach((r, i) => {
          const [error, members] = results?.[i] ?? [new Error('redis pipeline gave no reply'), undefined];
          if (error) r.reject(error);
          else r.resolve(members as string[]);
        });
      },
      (error: unknown) => {
        for (const r of reads) r.reject(error);
      },
    );
  }
}
