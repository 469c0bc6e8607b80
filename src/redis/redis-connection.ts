/**
 * One node's two Redis connections (commands, and a subscriber), shared by
 * its registry and its session directory. The target is one Redis server, a
 * Redis Cluster (ioredis `Cluster`; pub/sub is sharded: SPUBLISH/SSUBSCRIBE,
 * each channel served by the master of its slot) or a master found through
 * Sentinel (ioredis with `sentinels`, which follows a failover).
 *
 * ioredis is loaded by the first `open()`, not when weft is imported: a
 * process that never uses a Redis cluster never loads it.
 */
import { randomBytes } from 'node:crypto';
import { counts } from '../metrics/metrics.js';
import type { ChainableCommander, Cluster, ClusterOptions, Redis, RedisOptions } from 'ioredis';
import type { Logger } from '../logger.js';
import { Backoff } from '../util/backoff.js';
import { describeTarget, parseRedisUrl, type RedisTarget } from './redis-target.js';

/**
 * A command that has had no answer this long fails (ioredis "Command timed
 * out"): a Redis that stops answering (a Cluster master restarting while its
 * slots move) must not hold a push, a lookup or a node's stop forever. The
 * subscriber connection has none: it waits for messages.
 */
export const REDIS_COMMAND_TIMEOUT_MS = 10_000;

export interface RedisConnectionOptions {
  /** A URL (see redis-target.ts) or a target already parsed. */
  target: string | RedisTarget;
  logger: Logger;
}

type MessageHandler = (message: Buffer) => void;

/** The commands weft sends: one server's client, or a Redis Cluster's. */
export type RedisCommands = Redis | Cluster;

/** A cluster probe that failed is tried again after this long. */
const PROBE_RETRY_MS = 500;

/** How long `subscriberCaughtUp` waits for its marker on a Redis Cluster. */
const CAUGHT_UP_TIMEOUT_MS = 5000;

export class RedisConnection {
  readonly #target: RedisTarget;
  readonly #logger: Logger;
  #command: RedisCommands | undefined;
  #subscriber: RedisCommands | undefined;
  #opening: Promise<void> | undefined;
  readonly #handlers = new Map<string, Set<MessageHandler>>();
  readonly #reconnectHandlers = new Set<() => void>();
  readonly #everReady = new Set<RedisCommands>();
  #opened = false;
  #reconnectPending = false;
  #probing = false;
  #probeTimer: NodeJS.Timeout | undefined;
  #closed = false;
  #lastErrorLogAt = 0;
  #lastError: string | undefined;
  #users = 0;
  /** Names this connection's caught-up marker channels (Redis Cluster). */
  readonly #id = randomBytes(6).toString('hex');
  /** Per marker channel, the markers sent and not yet back: sequence -> resolve. */
  readonly #markers = new Map<string, { ready: Promise<void>; pending: Map<number, () => void> }>();
  #markerSeq = 0;

  constructor(options: RedisConnectionOptions) {
    this.#target = typeof options.target === 'string' ? parseRedisUrl(options.target) : options.target;
    this.#logger = options.logger;
  }

  /** The last error either connection reported (`connect ECONNREFUSED 127.0.0.1:6379`), for messages and readiness. */
  get lastError(): string | undefined {
    return this.#lastError;
  }

  /** Are both connections ready (connected, subscriptions restored)? */
  get ready(): boolean {
    return this.#command?.status === 'ready' && this.#subscriber?.status === 'ready';
  }

  /** Redis Cluster: keys of one command or MULTI must share a slot, and pub/sub is sharded. */
  get isCluster(): boolean {
    return this.#target.kind === 'cluster';
  }

  /** The command connection; there is none before `open()` resolves. */
  get command(): RedisCommands {
    if (this.#command === undefined) throw new Error('redis connection used before open()');
    return this.#command;
  }

  get #sub(): RedisCommands {
    if (this.#subscriber === undefined) throw new Error('redis connection used before open()');
    return this.#subscriber;
  }

  /** The command that publishes: PUBLISH, or SPUBLISH (a shard channel, served by its slot's master) on a Redis Cluster; for scripts that publish. */
  get publishCommand(): 'PUBLISH' | 'SPUBLISH' {
    return this.isCluster ? 'SPUBLISH' : 'PUBLISH';
  }

  /**
   * Runs `write` with the command socket corked, so the commands and MULTIs
   * it sends go out in one socket write, not one each (a directory flush
   * sends a MULTI per unit it touched). On a Redis Cluster (a connection per
   * master), or while the connection is not ready (ioredis queues), `write`
   * simply runs.
   */
  together<T>(write: () => T): T {
    const c = this.#command;
    const stream = c !== undefined && !this.isCluster && c.status === 'ready' ? (c as Redis).stream : undefined;
    if (stream === undefined) return write();
    stream.cork();
    try {
      return write();
    } finally {
      stream.uncork();
    }
  }

  /** Publishes on `channel`: PUBLISH, or SPUBLISH on a Redis Cluster. */
  publish(channel: string, message: string | Buffer): Promise<unknown> {
    return this.isCluster ? this.command.spublish(channel, message) : this.command.publish(channel, message);
  }

  /** Queues a publish in a MULTI or pipeline; on a Cluster the channel must share the slot of its other keys. */
  publishIn(batch: ChainableCommander, channel: string, message: string | Buffer): ChainableCommander {
    return this.isCluster ? batch.spublish(channel, message) : batch.publish(channel, message);
  }

  async #connect(): Promise<void> {
    const ioredis = await import('ioredis');
    const target = this.#target;
    // Keep retrying: a Redis restart must not take the node down. ioredis counts `times` from
    // the last TCP connect, so a Redis that accepts and drops at once would be retried every
    // 50 ms; the backoff starts again only after a connection stayed ready for a while.
    const newBackoff = (): Backoff => new Backoff({ initialDelayMs: 50, maxDelayMs: 1000, jitter: 0.5, healthyAfterMs: 5000 });
    const client = (connectionName: string, extra: { autoPipelining: boolean; subscriber: boolean }): RedisCommands => {
      const backoff = newBackoff();
      let c: RedisCommands;
      if (target.kind === 'cluster') {
        const options: ClusterOptions = {
          lazyConnect: true,
          clusterRetryStrategy: () => backoff.disconnected(),
          enableAutoPipelining: extra.autoPipelining,
          // Commands fail while the cluster reconnects, as maxRetriesPerRequest makes them on one server,
          // rather than waiting without a bound; the subscriber keeps its queue (ioredis resubscribes).
          enableOfflineQueue: extra.subscriber,
          shardedSubscribers: extra.subscriber,
          redisOptions: {
            connectionName,
            maxRetriesPerRequest: 2,
            username: target.username,
            password: target.password,
            ...(extra.subscriber ? {} : { commandTimeout: REDIS_COMMAND_TIMEOUT_MS }),
          },
        };
        c = new ioredis.Cluster(
          target.nodes.map((n) => ({ host: n.host, port: n.port })),
          options,
        );
      } else {
        const common: RedisOptions = {
          lazyConnect: true,
          retryStrategy: () => backoff.disconnected(),
          maxRetriesPerRequest: 2,
          connectionName,
          enableAutoPipelining: extra.autoPipelining,
          ...(extra.subscriber ? {} : { commandTimeout: REDIS_COMMAND_TIMEOUT_MS }),
        };
        c =
          target.kind === 'standalone'
            ? new ioredis.Redis(target.url, common)
            : new ioredis.Redis({
                ...common,
                sentinels: target.sentinels.map((s) => ({ host: s.host, port: s.port })),
                name: target.name,
                username: target.username,
                password: target.password,
                sentinelUsername: target.sentinelUsername,
                sentinelPassword: target.sentinelPassword,
              });
      }
      c.on('ready', () => backoff.connected());
      c.on('error', (err: Error) => this.#logError(err));
      return c;
    };
    // No auto-pipelining: ioredis 5's can throw out of a Redis restart ("results[i] is not
    // iterable" in autoPipelining.js, ioredis#1931), which ends the process; the chaos test saw it.
    // Commands still go out without waiting for replies, one write each.
    const command = client('weft-cmd', { autoPipelining: false, subscriber: false });
    const subscriber = client('weft-sub', { autoPipelining: false, subscriber: true });
    this.#command = command;
    this.#subscriber = subscriber;
    const onMessage = (channel: Buffer, message: Buffer): void => {
      const handlers = this.#handlers.get(channel.toString());
      if (handlers === undefined) return;
      for (const h of handlers) h(message);
    };
    subscriber.on(this.isCluster ? 'smessageBuffer' : 'messageBuffer', onMessage);
    for (const c of [command, subscriber]) {
      c.on('ready', () => {
        if (!this.#everReady.has(c)) {
          this.#everReady.add(c);
          return;
        }
        this.#reconnectPending = true;
        this.#restoreWhenReady();
      });
    }
    if (this.isCluster) {
      // One master lost and back (or a failover) leaves the Cluster 'ready' throughout: what says
      // it is over is the sharded subscribers set up again (ioredis resubscribes them first).
      subscriber.on('subscribersReady', () => {
        if (!this.#opened) return;
        this.#reconnectPending = true;
        this.#restoreWhenReady();
      });
    }
    await Promise.all([command.connect(), subscriber.connect()]);
    this.#opened = true;
  }

  /**
   * Reconnect handlers run once both connections are back and the subscriber's
   * channels are subscribed again: a reload they start cannot then miss what
   * other nodes publish while it runs (a session rewritten by its gateway).
   */
  #restoreWhenReady(): void {
    if (!this.#reconnectPending || this.#probing || this.#closed) return;
    if (this.#command?.status !== 'ready' || this.#subscriber?.status !== 'ready') return;
    this.#probing = true;
    this.#reconnectPending = false;
    this.#probe().then(
      () => {
        this.#probing = false;
        if (this.#closed) return;
        this.#logger.info('redis connection is back; restoring registration and sessions');
        counts.redisReconnects += 1;
        for (const h of this.#reconnectHandlers) h();
        // Something more was lost while the handlers' trigger was probed: go again.
        this.#restoreWhenReady();
      },
      () => {
        this.#probing = false;
        this.#reconnectPending = true;
        clearTimeout(this.#probeTimer);
        this.#probeTimer = setTimeout(() => this.#restoreWhenReady(), PROBE_RETRY_MS);
        this.#probeTimer.unref();
      },
    );
  }

  /** Resolves when Redis answers: on one server, a PING on the subscriber (after its resubscriptions); on a Cluster, every master. */
  async #probe(): Promise<void> {
    const sub = this.#sub;
    if (!this.isCluster) {
      // ioredis resubscribes on 'ready'; a PING answered on the same connection comes after those SUBSCRIBEs.
      await sub.ping().catch(() => undefined);
      return;
    }
    const cluster = this.command as Cluster;
    const masters = new Set(cluster.slots.map((owners) => owners?.[0]).filter((k) => k !== undefined));
    const byKey = new Map(cluster.nodes('master').map((r) => [`${r.options.host}:${r.options.port}`, r]));
    await Promise.all(
      [...masters].map(async (key) => {
        const node = byKey.get(key);
        if (node === undefined) throw new Error(`no connection to master ${key}`);
        await node.ping();
      }),
    );
  }

  /** Connects once for all users; later calls share the connection (and wait for it). */
  async open(): Promise<void> {
    this.#users += 1;
    this.#opening ??= this.#connect();
    await this.#opening;
  }

  async subscribe(channel: string, handler: MessageHandler): Promise<void> {
    let set = this.#handlers.get(channel);
    if (set === undefined) {
      set = new Set();
      this.#handlers.set(channel, set);
      if (this.isCluster) await this.#sub.ssubscribe(channel);
      else await this.#sub.subscribe(channel);
    }
    set.add(handler);
  }

  /** Stops calling `handler` for `channel`; the channel is left when it was the last one. */
  async unsubscribe(channel: string, handler: MessageHandler): Promise<void> {
    const set = this.#handlers.get(channel);
    if (set === undefined || !set.delete(handler) || set.size > 0) return;
    this.#handlers.delete(channel);
    if (this.#closed) return;
    if (this.isCluster) await this.#sub.sunsubscribe(channel);
    else await this.#sub.unsubscribe(channel);
  }

  /** `subscriberCaughtUp` for several channels: one PING covers them all on one server, a marker each on a Cluster. */
  async subscriberCaughtUpAll(channels: readonly string[]): Promise<void> {
    if (channels.length === 0) return;
    if (!this.isCluster) return this.subscriberCaughtUp(channels[0]!);
    await Promise.all(channels.map((channel) => this.subscriberCaughtUp(channel)));
  }

  /**
   * Resolves once every message Redis published on `channel` before this call
   * has reached its handlers. Read something on the command connection, then
   * await this, and no message on `channel` older than what was read is still
   * on its way.
   *
   * On one server (or Sentinel's master) a PING on the subscriber is answered
   * after what it queued. On a Redis Cluster the shard channel's messages come
   * on a connection of their own to the master of its slot, which a PING here
   * would not reach: a marker is published instead on a channel of this
   * connection's own in the same slot (`<channel>:caught-up:<id>`, the same
   * hash tag), and its arrival, in order on that connection, says the same.
   */
  async subscriberCaughtUp(channel: string): Promise<void> {
    if (!this.isCluster) {
      await this.#sub.ping();
      return;
    }
    const marker = `${channel}:caught-up:${this.#id}`;
    let entry = this.#markers.get(marker);
    if (entry === undefined) {
      const pending = new Map<number, () => void>();
      const ready = this.subscribe(marker, (message) => {
        // Markers arrive in order: one arrived, so did every one sent before it.
        const seq = Number(message.toString());
        for (const [s, resolve] of pending) {
          if (s > seq) break;
          pending.delete(s);
          resolve();
        }
      });
      entry = { ready, pending };
      this.#markers.set(marker, entry);
      ready.catch(() => this.#markers.delete(marker));
    }
    await entry.ready;
    this.#markerSeq += 1;
    const seq = this.#markerSeq;
    const { pending } = entry;
    let timer: NodeJS.Timeout | undefined;
    const arrived = new Promise<void>((resolve, reject) => {
      pending.set(seq, resolve);
      timer = setTimeout(() => reject(new Error(`no caught-up marker on ${channel} within ${CAUGHT_UP_TIMEOUT_MS} ms`)), CAUGHT_UP_TIMEOUT_MS);
      timer.unref();
    });
    try {
      await this.command.spublish(marker, String(seq));
      await arrived;
    } finally {
      clearTimeout(timer);
      pending.delete(seq);
    }
  }

  /** Called each time the connections are back after losing Redis (or, on a Cluster, one of its masters). */
  onReconnect(handler: () => void): void {
    this.#reconnectHandlers.add(handler);
  }

  async close(): Promise<void> {
    this.#users -= 1;
    if (this.#users > 0) return;
    this.#closed = true;
    clearTimeout(this.#probeTimer);
    this.#handlers.clear();
    this.#reconnectHandlers.clear();
    this.#markers.clear();
    await this.#opening?.catch(() => undefined); // closing while it connects: let the clients exist first
    const clients = [this.#command, this.#subscriber].filter((c) => c !== undefined);
    await Promise.allSettled(clients.map((c) => c.quit()));
    for (const c of clients) c.disconnect();
  }

  #logError(err: Error): void {
    this.#lastError = err.message;
    const now = Date.now();
    if (now - this.#lastErrorLogAt < 5000) return;
    this.#lastErrorLogAt = now;
    this.#logger.warn({ err: err.message, redis: describeTarget(this.#target) }, 'redis error');
  }
}
