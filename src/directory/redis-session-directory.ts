/**
 * Redis session directory.
 *
 * Per service, a hash maps sessionId to "gatewayNodeId\nbusinessId"; per
 * service and gateway, a set lists what the gateway holds, and per gateway a
 * set lists its services, so the entries of a dead gateway can be removed.
 * Every change is published on the service's channel, so each host that
 * watches a service keeps a replica and answers lookups from memory.
 * Gateways batch their writes per tick. Key names are in redis/keys.ts: a
 * service's keys and channel share one hash tag, so each MULTI below stays
 * in one slot on a Redis Cluster.
 */
import { Packr } from 'msgpackr';
import type { Logger } from '../logger.js';
import type { RedisConnection } from '../redis/redis-connection.js';
import { registryKeys, serviceKeys, type ServiceKeys } from '../redis/keys.js';
import type { Registry, RegistryView } from '../registry/registry.js';
import { SessionIndex } from './session-index.js';
import type { HeldSessions, SessionDirectory } from './session-directory.js';

export interface RedisSessionDirectoryOptions {
  prefix: string;
  nodeId: string;
  /** How long an entry of a gateway missing from the registry may stay before it is swept. */
  staleAfterMs: number;
  logger: Logger;
}

/**
 * Keys this node writes or reads live this long after the last live node
 * touched them: when a whole cluster dies at once, Redis forgets it.
 */
export const DIRECTORY_KEY_TTL_MS = 10 * 60 * 1000; // 10 min

const OP_ADD = 0;
const OP_DEL = 1;
const OP_DROP_GATEWAY = 2;
type Op = [typeof OP_ADD, string, string, string] | [typeof OP_DEL, string, string] | [typeof OP_DROP_GATEWAY, string];

interface Watched {
  index: SessionIndex;
  loading: boolean;
  buffered: Buffer[];
}

const packr = new Packr({ useRecords: false });

export class RedisSessionDirectory implements SessionDirectory {
  readonly #redis: RedisConnection;
  readonly #registry: Registry;
  readonly #o: RedisSessionDirectoryOptions;
  #held: HeldSessions = () => [];
  #heldCount = 0;
  readonly #watched = new Map<string, Watched>();
  /** Per service, writes waiting for this tick's flush: sessionId -> businessId. */
  #pending = new Map<string, { adds: Map<string, string>; dels: Map<string, string> }>();
  #flushScheduled = false;
  #lastView: RegistryView = new Map();
  #unsubscribe: (() => void)[] = [];
  #timers = new Set<NodeJS.Timeout>();
  /** Service hashes this node writes to or watches, kept from expiring while it lives. */
  readonly #services = new Set<string>();
  #keepAlive: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(redis: RedisConnection, registry: Registry, options: RedisSessionDirectoryOptions) {
    this.#redis = redis;
    this.#registry = registry;
    this.#o = options;
  }

  #keys(service: string): ServiceKeys {
    return serviceKeys(this.#o.prefix, service);
  }

  #hashKey(service: string): string {
    return this.#keys(service).sessions;
  }

  /** The services a gateway wrote sessions of. */
  #gatewayServicesKey(gatewayNodeId: string): string {
    return registryKeys(this.#o.prefix).gatewayServices(gatewayNodeId);
  }

  #channel(service: string): string {
    return this.#keys(service).channel;
  }

  async start(): Promise<void> {
    await this.#redis.open();
    this.#lastView = this.#registry.view();
    this.#unsubscribe.push(
      this.#registry.onChange((view) => this.#onView(view)),
      this.#registry.onExpired((ids) => void this.#reap(ids)),
      this.#registry.onRecovered(() => void this.#restore()),
    );
    this.#redis.onReconnect(() => void this.#restore());
    this.#keepAlive = setInterval(() => void this.#refreshTtls(), this.#o.staleAfterMs);
    this.#keepAlive.unref();
  }

  async #refreshTtls(): Promise<void> {
    // Keys of many slots: one PEXPIRE each (pipelined), not one MULTI.
    const c = this.#redis.command;
    const me = this.#o.nodeId;
    const keys: string[] = [];
    for (const service of this.#services) {
      keys.push(this.#hashKey(service));
      if (this.#heldCount > 0) keys.push(this.#keys(service).gateway(me));
    }
    if (this.#heldCount > 0) keys.push(this.#gatewayServicesKey(me));
    try {
      await Promise.all(keys.map((k) => c.pexpire(k, DIRECTORY_KEY_TTL_MS)));
    } catch (err) {
      this.#o.logger.debug({ err: (err as Error).message }, 'could not refresh session directory TTLs');
    }
  }

  add(service: string, businessId: string, sessionId: string): void {
    this.#services.add(service);
    this.#heldCount += 1;
    const p = this.#pendingFor(service);
    p.dels.delete(sessionId);
    p.adds.set(sessionId, businessId);
    this.#schedule();
  }

  remove(service: string, businessId: string, sessionId: string): void {
    this.#heldCount = Math.max(0, this.#heldCount - 1);
    const p = this.#pendingFor(service);
    if (p.adds.delete(sessionId)) return; // never written: nothing to take back
    p.dels.set(sessionId, businessId);
    this.#schedule();
  }

  setHeldSessions(held: HeldSessions): void {
    this.#held = held;
  }

  async watch(service: string): Promise<void> {
    if (this.#watched.has(service)) return;
    this.#services.add(service);
    const watched: Watched = { index: new SessionIndex(), loading: true, buffered: [] };
    this.#watched.set(service, watched);
    await this.#redis.subscribe(this.#channel(service), (message) => {
      if (watched.loading) watched.buffered.push(message);
      else this.#apply(watched.index, message);
    });
    await this.#load(service, watched);
  }

  index(service: string): SessionIndex {
    const watched = this.#watched.get(service);
    if (watched === undefined) throw new Error(`session directory: service ${service} is not watched`);
    return watched.index;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const u of this.#unsubscribe) u();
    for (const t of this.#timers) clearTimeout(t);
    clearInterval(this.#keepAlive);
    // Take back what this node still holds, in one go.
    for (const [service, businessId, sessionId] of this.#held()) this.remove(service, businessId, sessionId);
    await this.#flush();
    await this.#redis.close();
  }

  #pendingFor(service: string): { adds: Map<string, string>; dels: Map<string, string> } {
    let p = this.#pending.get(service);
    if (p === undefined) {
      p = { adds: new Map(), dels: new Map() };
      this.#pending.set(service, p);
    }
    return p;
  }

  #schedule(): void {
    if (this.#flushScheduled) return;
    this.#flushScheduled = true;
    setImmediate(() => void this.#flush());
  }

  async #flush(): Promise<void> {
    this.#flushScheduled = false;
    const pending = this.#pending;
    if (pending.size === 0) return;
    this.#pending = new Map();
    const me = this.#o.nodeId;
    const c = this.#redis.command;
    // One MULTI per service: its keys and channel share a hash tag (one slot on a Redis Cluster).
    const writes: { service: string; done: Promise<unknown> }[] = [];
    const added: string[] = [];
    for (const [service, { adds, dels }] of pending) {
      const keys = this.#keys(service);
      const multi = c.multi();
      const ops: Op[] = [];
      if (adds.size > 0) {
        const fields: string[] = [];
        for (const [sessionId, businessId] of adds) {
          fields.push(sessionId, `${me}\n${businessId}`);
          ops.push([OP_ADD, sessionId, me, businessId]);
        }
        multi
          .hset(keys.sessions, ...fields)
          .pexpire(keys.sessions, DIRECTORY_KEY_TTL_MS)
          .sadd(keys.gateway(me), ...adds.keys())
          .pexpire(keys.gateway(me), DIRECTORY_KEY_TTL_MS);
        added.push(service);
      }
      if (dels.size > 0) {
        const ids = [...dels.keys()];
        multi.hdel(keys.sessions, ...ids).srem(keys.gateway(me), ...ids);
        for (const [id, businessId] of dels) ops.push([OP_DEL, id, businessId]);
      }
      if (ops.length > 0) this.#redis.publishIn(multi, keys.channel, packr.pack(ops));
      writes.push({ service, done: multi.exec() });
    }
    // The services this gateway has sessions of, for whoever removes them when it dies (another slot).
    let servicesWritten: Promise<unknown> = Promise.resolve();
    if (added.length > 0) {
      const key = this.#gatewayServicesKey(me);
      servicesWritten = c
        .multi()
        .sadd(key, ...added)
        .pexpire(key, DIRECTORY_KEY_TTL_MS)
        .exec();
    }
    const [servicesResult, ...results] = await Promise.allSettled([servicesWritten, ...writes.map((w) => w.done)]);
    const failedServices = new Set<string>();
    writes.forEach((w, i) => {
      const r = results[i];
      // Without the list of its services, a gateway's sessions of those could not be removed when it dies.
      if (r?.status === 'rejected' || (servicesResult?.status === 'rejected' && added.includes(w.service))) failedServices.add(w.service);
    });
    if (failedServices.size > 0) {
      const reason = [servicesResult, ...results].find((r): r is PromiseRejectedResult => r?.status === 'rejected');
      // Redis is away: keep the batch for the next flush (at the latest #restore(), when it is back),
      // so removals are not lost. A session removed since is not added back.
      this.#o.logger.debug({ err: (reason?.reason as Error | undefined)?.message }, 'session directory write failed; kept for later');
      for (const [service, failed] of pending) {
        if (!failedServices.has(service)) continue;
        const now = this.#pendingFor(service);
        for (const [id, businessId] of failed.adds) if (!now.dels.has(id) && !now.adds.has(id)) now.adds.set(id, businessId);
        for (const [id, businessId] of failed.dels) now.dels.set(id, businessId);
      }
    }
  }

  #apply(index: SessionIndex, message: Buffer): void {
    let ops: Op[];
    try {
      ops = packr.unpack(message) as Op[];
    } catch {
      this.#o.logger.warn('ignoring a malformed session directory message');
      return;
    }
    if (!Array.isArray(ops)) return;
    for (const op of ops) {
      if (!Array.isArray(op)) continue;
      if (op[0] === OP_ADD) index.add(op[1], op[3], op[2]);
      else if (op[0] === OP_DEL) index.remove(op[1], op[2]);
      else if (op[0] === OP_DROP_GATEWAY) index.removeGateway(op[1]);
    }
  }

  /** Snapshot, then the changes that came while it loaded (they are in order and idempotent). */
  async #load(service: string, watched: Watched): Promise<void> {
    watched.loading = true;
    // Build aside and swap at the end, so lookups keep the old view while this loads.
    const index = new SessionIndex();
    const unknownGateways = new Set<string>();
    const view = this.#registry.view();
    let cursor = '0';
    do {
      const [next, flat] = await this.#redis.command.hscan(this.#hashKey(service), cursor, 'COUNT', 1000);
      cursor = next;
      for (let i = 0; i + 1 < flat.length; i += 2) {
        const value = flat[i + 1]!;
        const cut = value.indexOf('\n');
        const gateway = value.slice(0, cut);
        index.add(flat[i]!, value.slice(cut + 1), gateway);
        if (!view.has(gateway)) unknownGateways.add(gateway);
      }
    } while (cursor !== '0');
    for (const message of watched.buffered) this.#apply(index, message);
    watched.buffered = [];
    watched.index = index;
    watched.loading = false;
    if (unknownGateways.size > 0) this.#sweepLater(unknownGateways);
  }

  /** Entries of gateways the registry does not know: remove them if they are still unknown later. */
  #sweepLater(gateways: Set<string>): void {
    const timer = setTimeout(() => {
      this.#timers.delete(timer);
      const view = this.#registry.view();
      const dead = [...gateways].filter((g) => !view.has(g));
      if (dead.length > 0) void this.#reap(dead);
    }, this.#o.staleAfterMs);
    timer.unref();
    this.#timers.add(timer);
  }

  #onView(view: RegistryView): void {
    const departed: string[] = [];
    for (const id of this.#lastView.keys()) if (!view.has(id)) departed.push(id);
    this.#lastView = view;
    if (departed.length === 0) return;
    for (const { index } of this.#watched.values()) for (const id of departed) index.removeGateway(id);
  }

  /** Removes from Redis every entry of gateways that died without cleaning up. */
  async #reap(gatewayIds: string[]): Promise<void> {
    const c = this.#redis.command;
    for (const gateway of gatewayIds) {
      for (const { index } of this.#watched.values()) index.removeGateway(gateway);
      try {
        // Per service, one MULTI in that service's slot; then the list of services goes.
        const services = await c.smembers(this.#gatewayServicesKey(gateway));
        let removed = 0;
        for (const service of services) {
          const keys = this.#keys(service);
          const ids = await c.smembers(keys.gateway(gateway));
          removed += ids.length;
          const multi = c.multi();
          if (ids.length > 0) multi.hdel(keys.sessions, ...ids);
          multi.del(keys.gateway(gateway));
          this.#redis.publishIn(multi, keys.channel, packr.pack([[OP_DROP_GATEWAY, gateway]]));
          await multi.exec();
        }
        await c.del(this.#gatewayServicesKey(gateway));
        if (removed > 0) {
          this.#o.logger.info({ gateway, sessions: removed }, 'removed the sessions of a gateway that left');
        }
      } catch (err) {
        this.#o.logger.warn({ err: (err as Error).message, gateway }, 'could not remove the sessions of a dead gateway');
      }
    }
  }

  /** After Redis came back (possibly empty): write what this node holds, reload what it watches. */
  async #restore(): Promise<void> {
    if (this.#closed) return;
    for (const [service, businessId, sessionId] of this.#held()) {
      this.#pendingFor(service).adds.set(sessionId, businessId);
    }
    await this.#flush();
    for (const [service, watched] of this.#watched) {
      try {
        await this.#load(service, watched);
      } catch (err) {
        this.#o.logger.warn({ err: (err as Error).message, service }, 'could not reload the session directory');
      }
    }
  }
}
