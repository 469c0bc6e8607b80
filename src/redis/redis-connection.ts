/**
 * One node's two Redis connections (commands, and a subscriber), shared by
 * its registry and its session directory.
 */
import { Redis } from 'ioredis';
import type { Logger } from '../logger.js';

export interface RedisConnectionOptions {
  url: string;
  logger: Logger;
}

type MessageHandler = (message: Buffer) => void;

export class RedisConnection {
  readonly command: Redis;
  readonly #subscriber: Redis;
  readonly #logger: Logger;
  readonly #handlers = new Map<string, Set<MessageHandler>>();
  readonly #reconnectHandlers = new Set<() => void>();
  readonly #everReady = new Set<Redis>();
  #reconnectPending = false;
  #lastErrorLogAt = 0;
  #users = 0;

  constructor(options: RedisConnectionOptions) {
    this.#logger = options.logger;
    const common = {
      lazyConnect: true,
      // Keep retrying: a Redis restart must not take the node down.
      retryStrategy: (times: number) => Math.min(50 * times, 1000),
      maxRetriesPerRequest: 2,
    };
    this.command = new Redis(options.url, { ...common, enableAutoPipelining: true, connectionName: 'weft-cmd' });
    this.#subscriber = new Redis(options.url, { ...common, connectionName: 'weft-sub' });
    for (const client of [this.command, this.#subscriber]) {
      client.on('error', (err: Error) => this.#logError(err));
    }
    this.#subscriber.on('messageBuffer', (channel: Buffer, message: Buffer) => {
      const handlers = this.#handlers.get(channel.toString());
      if (handlers === undefined) return;
      for (const h of handlers) h(message);
    });
    for (const client of [this.command, this.#subscriber]) {
      client.on('ready', () => {
        if (!this.#everReady.has(client)) {
          this.#everReady.add(client);
          return;
        }
        this.#reconnectPending = true;
        this.#restoreWhenBothReady();
      });
    }
  }

  /**
   * Reconnect handlers run once both connections are back and the subscriber's
   * channels are subscribed again: a reload they start cannot then miss what
   * other nodes publish while it runs (a session rewritten by its gateway).
   */
  #restoreWhenBothReady(): void {
    if (!this.#reconnectPending || this.command.status !== 'ready' || this.#subscriber.status !== 'ready') return;
    this.#reconnectPending = false;
    const run = (): void => {
      this.#logger.info('redis connection is back; restoring registration and sessions');
      for (const h of this.#reconnectHandlers) h();
    };
    // ioredis resubscribes on 'ready'; a PING answered on the same connection comes after those SUBSCRIBEs.
    this.#subscriber.ping().then(run, run);
  }

  /** Connects once for all users; later calls share the connection. */
  async open(): Promise<void> {
    this.#users += 1;
    if (this.#users > 1) return;
    await Promise.all([this.command.connect(), this.#subscriber.connect()]);
  }

  async subscribe(channel: string, handler: MessageHandler): Promise<void> {
    let set = this.#handlers.get(channel);
    if (set === undefined) {
      set = new Set();
      this.#handlers.set(channel, set);
      await this.#subscriber.subscribe(channel);
    }
    set.add(handler);
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
    await Promise.allSettled([this.command.quit(), this.#subscriber.quit()]);
    this.command.disconnect();
    this.#subscriber.disconnect();
  }

  #logError(err: Error): void {
    const now = Date.now();
    if (now - this.#lastErrorLogAt < 5000) return;
    this.#lastErrorLogAt = now;
    this.#logger.warn({ err: err.message }, 'redis error');
  }
}
