/**
 * One node's two Redis connections (commands, and a subscriber), shared by
 * its registry and its session directory.
 *
 * ioredis is loaded by the first `open()`, not when weft is imported: a
 * process that never uses a Redis cluster never loads it.
 */
import { counts } from '../metrics/metrics.js';
import type { Redis, RedisOptions } from 'ioredis';
import type { Logger } from '../logger.js';
import { Backoff } from '../util/backoff.js';

export interface RedisConnectionOptions {
  url: string;
  logger: Logger;
}

type MessageHandler = (message: Buffer) => void;

export class RedisConnection {
  readonly #url: string;
  readonly #logger: Logger;
  #command: Redis | undefined;
  #subscriber: Redis | undefined;
  #opening: Promise<void> | undefined;
  readonly #handlers = new Map<string, Set<MessageHandler>>();
  readonly #reconnectHandlers = new Set<() => void>();
  readonly #everReady = new Set<Redis>();
  #reconnectPending = false;
  #lastErrorLogAt = 0;
  #lastError: string | undefined;
  #users = 0;

  constructor(options: RedisConnectionOptions) {
    this.#url = options.url;
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

  /** The command connection; there is none before `open()` resolves. */
  get command(): Redis {
    if (this.#command === undefined) throw new Error('redis connection used before open()');
    return this.#command;
  }

  get #sub(): Redis {
    if (this.#subscriber === undefined) throw new Error('redis connection used before open()');
    return this.#subscriber;
  }

  async #connect(): Promise<void> {
    const ioredis = await import('ioredis');
    const client = (connectionName: string, extra: RedisOptions = {}): Redis => {
      // Keep retrying: a Redis restart must not take the node down. ioredis counts `times` from
      // the last TCP connect, so a Redis that accepts and drops at once would be retried every
      // 50 ms; the backoff starts again only after a connection stayed ready for a while.
      const backoff = new Backoff({ initialDelayMs: 50, maxDelayMs: 1000, jitter: 0.5, healthyAfterMs: 5000 });
      const c = new ioredis.Redis(this.#url, {
        ...extra,
        lazyConnect: true,
        retryStrategy: () => backoff.disconnected(),
        maxRetriesPerRequest: 2,
        connectionName,
      });
      c.on('ready', () => backoff.connected());
      c.on('error', (err: Error) => this.#logError(err));
      return c;
    };
    const command = client('weft-cmd', { enableAutoPipelining: true });
    const subscriber = client('weft-sub');
    this.#command = command;
    this.#subscriber = subscriber;
    subscriber.on('messageBuffer', (channel: Buffer, message: Buffer) => {
      const handlers = this.#handlers.get(channel.toString());
      if (handlers === undefined) return;
      for (const h of handlers) h(message);
    });
    for (const client of [command, subscriber]) {
      client.on('ready', () => {
        if (!this.#everReady.has(client)) {
          this.#everReady.add(client);
          return;
        }
        this.#reconnectPending = true;
        this.#restoreWhenBothReady();
      });
    }
    await Promise.all([command.connect(), subscriber.connect()]);
  }

  /**
   * Reconnect handlers run once both connections are back and the subscriber's
   * channels are subscribed again: a reload they start cannot then miss what
   * other nodes publish while it runs (a session rewritten by its gateway).
   */
  #restoreWhenBothReady(): void {
    if (!this.#reconnectPending || this.#command?.status !== 'ready' || this.#subscriber?.status !== 'ready') return;
    this.#reconnectPending = false;
    const run = (): void => {
      this.#logger.info('redis connection is back; restoring registration and sessions');
      counts.redisReconnects += 1;
      for (const h of this.#reconnectHandlers) h();
    };
    // ioredis resubscribes on 'ready'; a PING answered on the same connection comes after those SUBSCRIBEs.
    this.#subscriber.ping().then(run, run);
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
      await this.#sub.subscribe(channel);
    }
    set.add(handler);
  }

  /**
   * Resolves once every message Redis published before this call has reached
   * the handlers: a PING on the subscriber is answered after what it queued.
   * Read something on the command connection, then await this, and no message
   * older than what was read is still on its way.
   */
  async subscriberCaughtUp(): Promise<void> {
    await this.#sub.ping();
  }

  /** Called each time the command connection is ready again after losing Redis. */
  onReconnect(handler: () => void): void {
    this.#reconnectHandlers.add(handler);
  }

  async close(): Promise<void> {
    this.#users -= 1;
    if (this.#users > 0) return;
    this.#handlers.clear();
    this.#reconnectHandlers.clear();
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
    this.#logger.warn({ err: err.message }, 'redis error');
  }
}
