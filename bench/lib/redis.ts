/** Redis for the harness: a unique prefix per run, its keys deleted at the end, and Redis's own CPU and memory. */
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { cpuSecondsOf } from './procs.js';

export function uniqueKey(what: string): string {
  return `${what}-${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`;
}

export class RedisWatch {
  readonly redis: Redis;
  #pid = 0;
  #cpuMark = 0;

  constructor(url: string) {
    this.redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1 });
  }

  async start(): Promise<void> {
    await this.redis.connect();
    const info = await this.redis.info('server');
    this.#pid = Number(/process_id:(\d+)/.exec(info)?.[1] ?? 0);
  }

  /** Bytes Redis uses (INFO memory used_memory). */
  async usedMemory(): Promise<number> {
    const info = await this.redis.info('memory');
    return Number(/used_memory:(\d+)/.exec(info)?.[1] ?? Number.NaN);
  }

  markCpu(): void {
    this.#cpuMark = this.#pid === 0 ? 0 : cpuSecondsOf(this.#pid);
  }

  /** Redis CPU seconds since the mark; NaN when its process is not visible from here. */
  cpuSinceMark(): number {
    return this.#pid === 0 ? Number.NaN : Math.round((cpuSecondsOf(this.#pid) - this.#cpuMark) * 100) / 100;
  }

  /** Deletes every key that starts with `prefix` or `{prefix` (weft's keys are hash-tagged); returns how many went. */
  async deletePrefix(prefix: string): Promise<number> {
    let deleted = 0;
    for (const pattern of [`${prefix}*`, `{${prefix}*`]) {
      let cursor = '0';
      do {
        const [next, keys] = await this.redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
        cursor = next;
        if (keys.length > 0) deleted += await this.redis.del(...keys);
      } while (cursor !== '0');
    }
    return deleted;
  }

  /**
   * Deletes keys left by runs that were killed outright (SIGKILL leaves no
   * time to clean up) over 30 minutes ago; a run going on now is left alone.
   */
  async sweepStale(maxAgeMs = 1_800_000): Promise<number> {
    let deleted = 0;
    for (const what of ['weft-bench', 'sio-bench', '{weft-bench']) {
      let cursor = '0';
      do {
        const [next, keys] = await this.redis.scan(cursor, 'MATCH', `${what}-*`, 'COUNT', 1000);
        cursor = next;
        const stale = keys.filter((k) => {
          const started = parseInt(k.slice(what.length + 1).split(/[-:}]/)[0] ?? '', 36);
          return Number.isFinite(started) && Date.now() - started > maxAgeMs;
        });
        if (stale.length > 0) deleted += await this.redis.del(...stale);
      } while (cursor !== '0');
    }
    return deleted;
  }

  close(): Promise<void> {
    this.redis.disconnect();
    return Promise.resolve();
  }
}
