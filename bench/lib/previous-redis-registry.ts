/**
 * THE PREVIOUS DESIGN, FROZEN FOR THE `registry` BENCHMARK ONLY; NOT SHIPPED.
 *
 * weft's Redis registry as it was before records were versioned (git
 * 1a52e26, src/registry/redis-registry.ts): every heartbeat each node
 * rewrites its whole record and reloads every record (SMEMBERS + MGET).
 * bench/scenarios/registry-scenario.ts runs it beside the current
 * RedisRegistry so the bytes Redis moves are compared in one run. Do not
 * import it from src/ or fix it: it is the baseline.
 */
import type { Logger } from '../../src/logger.js';
import type { RedisConnection } from '../../src/redis/redis-connection.js';
import type { NodeRecord, Registry, RegistryListener, RegistryView } from '../../src/registry/registry.js';

const NODE_SET_TTL_MS = 10 * 60 * 1000; // 10 min

export interface PreviousRedisRegistryOptions {
  prefix: string;
  ttlMs: number;
  heartbeatMs: number;
  logger: Logger;
}

export class PreviousRedisRegistry implements Registry {
  readonly #redis: RedisConnection;
  readonly #options: PreviousRedisRegistryOptions;
  readonly #listeners = new Set<RegistryListener>();
  readonly #expiredListeners = new Set<(ids: string[]) => void>();
  readonly #recoveredListeners = new Set<() => void>();
  readonly #channel: string;
  readonly #setKey: string;
  #view = new Map<string, NodeRecord>();
  #viewJson = new Map<string, string>();
  #record: NodeRecord | undefined;
  #timer: NodeJS.Timeout | undefined;
  #graceUntil = 0;
  #closed = false;

  constructor(redis: RedisConnection, options: PreviousRedisRegistryOptions) {
    this.#redis = redis;
    this.#options = options;
    // One hash tag for all of them: the MULTIs and the MGET below stay in one slot on a Redis Cluster.
    // Its key names then, written out: src/redis/keys.ts has moved on.
    const tag = `{${options.prefix}}`;
    this.#channel = `${tag}:registry`;
    this.#setKey = `${tag}:nodes`;
    this.#nodeKey = (id: string) => `${tag}:node:${id}`;
  }

  readonly #nodeKey: (id: string) => string;

  async start(): Promise<void> {
    await this.#redis.open();
    await this.#redis.subscribe(this.#channel, (message) => this.#onAnnouncement(message.toString()));
    this.#redis.onReconnect(() => {
      // Redis may have come back empty: give every node one TTL to write its record again
      // before anyone is treated as gone.
      this.#graceUntil = Date.now() + this.#options.ttlMs;
      void this.#heartbeat();
    });
    await this.#reload();
    this.#timer = setInterval(() => void this.#heartbeat(), this.#options.heartbeatMs);
    this.#timer.unref();
  }

  async register(record: NodeRecord): Promise<void> {
    this.#record = record;
    await this.#write();
    await this.#redis.publish(this.#channel, `up ${record.nodeId}`);
  }

  async deregister(): Promise<void> {
    const record = this.#record;
    if (record === undefined) return;
    this.#record = undefined;
    const c = this.#redis.command;
    await c.multi().del(this.#nodeKey(record.nodeId)).srem(this.#setKey, record.nodeId).exec();
    await this.#redis.publish(this.#channel, `down ${record.nodeId}`);
  }

  view(): RegistryView {
    return this.#view;
  }

  onChange(listener: RegistryListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  onExpired(listener: (nodeIds: string[]) => void): () => void {
    this.#expiredListeners.add(listener);
    return () => this.#expiredListeners.delete(listener);
  }

  onRecovered(listener: () => void): () => void {
    this.#recoveredListeners.add(listener);
    return () => this.#recoveredListeners.delete(listener);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#timer);
    try {
      await this.deregister();
    } catch (err) {
      this.#options.logger.warn({ err: (err as Error).message }, 'could not deregister from redis');
    }
    this.#listeners.clear();
    await this.#redis.close();
  }

  /** Writes this node's record; resolves true if it was not there (first write, lapsed, or Redis lost it). */
  async #write(): Promise<boolean> {
    const record = this.#record;
    if (record === undefined) return false;
    const results = await this.#redis.command
      .multi()
      .set(this.#nodeKey(record.nodeId), JSON.stringify(record), 'PX', this.#options.ttlMs, 'GET')
      .sadd(this.#setKey, record.nodeId)
      // The set of ids outlives its nodes only by this much when a whole cluster dies at once.
      .pexpire(this.#setKey, NODE_SET_TTL_MS)
      .exec();
    return results?.[0]?.[1] === null;
  }

  async #heartbeat(): Promise<void> {
    if (this.#closed || this.#record === undefined) return;
    try {
      const lapsed = await this.#write();
      if (lapsed) {
        // The record was gone (a stall longer than the TTL, or Redis lost it): others may have
        // reaped this node. Say it is back at once, and let its parts write their state again.
        this.#options.logger.warn('this node had dropped out of the registry; registering again');
        // Redis may have lost every record (a restart that this heartbeat reached before the reconnect
        // handler did): the same grace, so the others are not dropped from the view before they write again.
        this.#graceUntil = Math.max(this.#graceUntil, Date.now() + this.#options.ttlMs);
        await this.#redis.publish(this.#channel, `up ${this.#record.nodeId}`);
        for (const listener of this.#recoveredListeners) listener();
      }
      await this.#reload();
    } catch (err) {
      this.#options.logger.debug({ err: (err as Error).message }, 'registry heartbeat failed');
    }
  }

  /** Reads every record; ids whose key expired are removed and reported once. */
  async #reload(): Promise<void> {
    const c = this.#redis.command;
    const ids = await c.smembers(this.#setKey);
    const json = ids.length === 0 ? [] : await c.mget(ids.map((id) => this.#nodeKey(id)));
    const next = new Map<string, string>();
    const expired: string[] = [];
    ids.forEach((id, i) => {
      const value = json[i];
      if (value === null || value === undefined) expired.push(id);
      else next.set(id, value);
    });
    if (this.#record !== undefined && !next.has(this.#record.nodeId) && !this.#closed) {
      next.set(this.#record.nodeId, JSON.stringify(this.#record));
    }
    if (Date.now() < this.#graceUntil) {
      for (const [id, value] of this.#viewJson) if (!next.has(id)) next.set(id, value);
      this.#replaceView(next);
      return;
    }
    this.#replaceView(next);
    if (expired.length > 0) await this.#reap(expired);
  }

  async #reap(ids: string[]): Promise<void> {
    const c = this.#redis.command;
    // Only the node whose SREM removes an id reports it, so cleanup runs once per dead node.
    const removed = await Promise.all(ids.map((id) => c.srem(this.#setKey, id)));
    const mine = ids.filter((_, i) => removed[i] === 1);
    if (mine.length === 0) return;
    for (const id of mine) await this.#redis.publish(this.#channel, `down ${id}`);
    this.#options.logger.info({ nodes: mine }, 'nodes expired from the registry');
    for (const listener of this.#expiredListeners) listener(mine);
  }

  #onAnnouncement(message: string): void {
    const [verb, id] = message.split(' ');
    if (id === undefined || this.#closed) return;
    if (verb === 'down') {
      if (!this.#viewJson.has(id) || id === this.#record?.nodeId) return;
      const next = new Map(this.#viewJson);
      next.delete(id);
      this.#replaceView(next);
      return;
    }
    if (verb === 'up') {
      this.#redis.command.get(this.#nodeKey(id)).then(
        (value) => {
          if (value === null || this.#closed) return;
          const next = new Map(this.#viewJson);
          next.set(id, value);
          this.#replaceView(next);
        },
        (err: Error) => this.#options.logger.debug({ err: err.message }, 'registry lookup failed'),
      );
    }
  }

  #replaceView(next: Map<string, string>): void {
    let changed = next.size !== this.#viewJson.size;
    if (!changed) {
      for (const [id, json] of next) {
        if (this.#viewJson.get(id) !== json) {
          changed = true;
          break;
        }
      }
    }
    if (!changed) return;
    const view = new Map<string, NodeRecord>();
    for (const [id, json] of next) {
      const known = this.#viewJson.get(id) === json ? this.#view.get(id) : undefined;
      if (known !== undefined) {
        view.set(id, known);
        continue;
      }
      try {
        view.set(id, JSON.parse(json) as NodeRecord);
      } catch {
        this.#options.logger.warn({ nodeId: id }, 'ignoring a malformed registry record');
        next.delete(id);
      }
    }
    this.#viewJson = next;
    this.#view = view;
    for (const listener of this.#listeners) listener(view);
  }
}
