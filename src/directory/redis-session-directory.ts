/**
 * Redis session directory.
 *
 * Per service, a hash `sessions:<service>` maps sessionId to
 * "gatewayNodeId\nbusinessId"; per gateway, a set lists what it holds so the
 * entries of a dead gateway can be removed. Every change is published on the
 * service's channel, so each host that watches a service keeps a replica and
 * answers lookups from memory. Gateways batch their writes per tick.
 *
 * How a replica stays right (docs/architecture.md, "Directory healing"):
 *
 * - Versions. Each batch of changes to a service bumps `sessions-version:<service>`
 *   in the script that publishes it, and the message carries the version. A
 *   replica that sees a gap, or whose periodic check finds Redis ahead of it,
 *   lost an update and loads the service again.
 * - Epoch. `directory-epoch` is a random value written by whoever finds it
 *   missing. A different one means Redis lost the directory (it restarted
 *   empty, or was flushed): gateways write every session they hold again, and
 *   replicas keep answering from their last good view, adding what they learn,
 *   until every live gateway has had time to write again; only then do they
 *   replace their view with what Redis holds. A push to a session that stayed
 *   open must not be answered 0 because Redis forgot it; a replica may list a
 *   session that closed meanwhile a little longer, and a push to it is counted
 *   by the gateway, which knows it is gone.
 * - Loads retry with backoff and never leave a replica stuck loading; the
 *   updates held while one runs are bounded, and past the bound they are
 *   dropped and the service is loaded again.
 */
import { counts } from '../metrics/metrics.js';
import { Packr } from 'msgpackr';
import { randomBytes } from 'node:crypto';
import { LIMITS } from '../limits.js';
import type { Logger } from '../logger.js';
import type { RedisConnection } from '../redis/redis-connection.js';
import type { Registry, RegistryView } from '../registry/registry.js';
import { Backoff } from '../util/backoff.js';
import { SessionIndex } from './session-index.js';
import type { HeldSessions, SessionDirectory } from './session-directory.js';

export interface RedisSessionDirectoryOptions {
  prefix: string;
  nodeId: string;
  /**
   * How long an entry of a gateway missing from the registry may stay before
   * it is swept; also how long a replica keeps its last good view after Redis
   * lost the directory (every live gateway writes again well within it).
   */
  staleAfterMs: number;
  /** How often the epoch and the versions of watched services are compared with Redis. */
  checkIntervalMs: number;
  /** Updates a replica holds while it loads, in bytes; past it they are dropped and it loads again. Default LIMITS.directoryLoadBufferMaxBytes. */
  maxLoadBufferBytes?: number;
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

/**
 * The epoch, or a new one (ARGV[1]) when Redis has none.
 * KEYS[1] epoch; ARGV[1] candidate epoch, ARGV[2] TTL ms.
 */
const EPOCH_SCRIPT = `local e = redis.call('GET', KEYS[1])
if not e then e = ARGV[1] redis.call('SET', KEYS[1], e, 'PX', ARGV[2]) end
return e`;

/**
 * Publishes a batch with the epoch and the service's next version, so that a
 * replica can tell it missed one. Runs in the same MULTI as the writes.
 * KEYS[1] epoch, KEYS[2] version; ARGV[1] channel, ARGV[2] packed ops, ARGV[3] TTL ms, ARGV[4] candidate epoch.
 */
const PUBLISH_SCRIPT = `local e = redis.call('GET', KEYS[1])
if not e then e = ARGV[4] redis.call('SET', KEYS[1], e, 'PX', ARGV[3]) end
local v = redis.call('INCR', KEYS[2])
redis.call('PEXPIRE', KEYS[2], ARGV[3])
redis.call('PUBLISH', ARGV[1], e .. ' ' .. v .. '\\n' .. ARGV[2])
return e`;

interface Update {
  /** Undefined for a message of a writer that sends no version (an older weft). */
  epoch: string | undefined;
  version: number;
  ops: Op[];
}

interface Watched {
  service: string;
  index: SessionIndex;
  /** What the view is at: the epoch and version of the last update applied, or of the last load. */
  epoch: string;
  version: number;
  /** A load is reading Redis: updates are held in `buffered` until it is done. */
  loading: boolean;
  buffered: Buffer[];
  bufferedBytes: number;
  /** Updates held before this position may predate what the load read; the rest came after. */
  barrier: number;
  /** The buffer went over its bound and was dropped: the load in progress cannot be trusted. */
  overflowed: boolean;
  /** Another load is due (asked for while one ran, or the last one failed). */
  loadWanted: boolean;
  running: Promise<void> | undefined;
  retry: Backoff;
  retryTimer: NodeJS.Timeout | undefined;
  /** Set once a load succeeded. */
  loaded: boolean;
  lastError: Error | undefined;
  /** Until then, loads add to the view instead of replacing it: Redis lost the directory, gateways are writing it again. */
  healingUntil: number;
  healTimer: NodeJS.Timeout | undefined;
}

/** What a replica is doing, for tests and monitoring. */
export interface ReplicaState {
  loading: boolean;
  /** Bytes of updates held while loading. */
  bufferedBytes: number;
  epoch: string;
  version: number;
  /** Answering from its last good view while gateways write the directory again. */
  healing: boolean;
  loads: number;
}

const packr = new Packr({ useRecords: false });
const NEWLINE = 0x0a;

/** Splits "epoch version\nops"; a message without that head is an older writer's bare ops. */
function decode(message: Buffer): Update | undefined {
  let epoch: string | undefined;
  let version = 0;
  let body = message;
  const cut = message.subarray(0, 64).indexOf(NEWLINE);
  if (cut > 0) {
    const head = message.toString('latin1', 0, cut);
    const space = head.indexOf(' ');
    const v = Number(head.slice(space + 1));
    if (space > 0 && Number.isSafeInteger(v)) {
      epoch = head.slice(0, space);
      version = v;
      body = message.subarray(cut + 1);
    }
  }
  try {
    const ops = packr.unpack(body) as unknown;
    return Array.isArray(ops) ? { epoch, version, ops: ops as Op[] } : undefined;
  } catch {
    return undefined;
  }
}

function applyOps(index: SessionIndex, ops: Op[]): void {
  for (const op of ops) {
    if (!Array.isArray(op)) continue;
    if (op[0] === OP_ADD) index.add(op[1], op[3], op[2]);
    else if (op[0] === OP_DEL) index.remove(op[1], op[2]);
    else if (op[0] === OP_DROP_GATEWAY) index.removeGateway(op[1]);
  }
}

export class RedisSessionDirectory implements SessionDirectory {
  readonly #redis: RedisConnection;
  readonly #registry: Registry;
  readonly #o: RedisSessionDirectoryOptions;
  readonly #maxBufferBytes: number;
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
  #checkTimer: NodeJS.Timeout | undefined;
  #checking = false;
  /** The directory epoch this node last saw; undefined before the first. */
  #epoch: string | undefined;
  /** A new epoch this node proposes when it finds none: unique per proposal. */
  readonly #epochBase = randomBytes(6).toString('hex');
  #epochCount = 0;
  #loads = 0;
  #closed = false;

  constructor(redis: RedisConnection, registry: Registry, options: RedisSessionDirectoryOptions) {
    this.#redis = redis;
    this.#registry = registry;
    this.#o = options;
    this.#maxBufferBytes = options.maxLoadBufferBytes ?? LIMITS.directoryLoadBufferMaxBytes;
  }

  #hashKey(service: string): string {
    return `${this.#o.prefix}:sessions:${service}`;
  }

  #versionKey(service: string): string {
    return `${this.#o.prefix}:sessions-version:${service}`;
  }

  get #epochKey(): string {
    return `${this.#o.prefix}:directory-epoch`;
  }

  #gatewayKey(gatewayNodeId: string): string {
    return `${this.#o.prefix}:gateway-sessions:${gatewayNodeId}`;
  }

  #channel(service: string): string {
    return `${this.#o.prefix}:sessions:${service}`;
  }

  #newEpoch(): string {
    this.#epochCount += 1;
    return `${this.#epochBase}.${this.#epochCount.toString(36)}`;
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
    this.#checkTimer = setInterval(() => void this.#check(), this.#o.checkIntervalMs);
    this.#checkTimer.unref();
  }

  async #refreshTtls(): Promise<void> {
    if (this.#services.size === 0) return;
    const multi = this.#redis.command.multi();
    for (const service of this.#services) {
      multi.pexpire(this.#hashKey(service), DIRECTORY_KEY_TTL_MS).pexpire(this.#versionKey(service), DIRECTORY_KEY_TTL_MS);
    }
    multi.pexpire(this.#epochKey, DIRECTORY_KEY_TTL_MS);
    if (this.#heldCount > 0) multi.pexpire(this.#gatewayKey(this.#o.nodeId), DIRECTORY_KEY_TTL_MS);
    try {
      await multi.exec();
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
    const watched: Watched = {
      service,
      index: new SessionIndex(),
      epoch: '',
      version: 0,
      loading: false,
      buffered: [],
      bufferedBytes: 0,
      barrier: 0,
      overflowed: false,
      loadWanted: false,
      running: undefined,
      retry: new Backoff({ initialDelayMs: 100, maxDelayMs: 5_000, jitter: 0.5, healthyAfterMs: 0 }),
      retryTimer: undefined,
      loaded: false,
      lastError: undefined,
      healingUntil: 0,
      healTimer: undefined,
    };
    this.#watched.set(service, watched);
    await this.#redis.subscribe(this.#channel(service), (message) => this.#onMessage(watched, message));
    this.#requestLoad(watched);
    await watched.running;
    // A first load that failed is retried in the background, but the caller learns of it now.
    if (!watched.loaded && watched.lastError !== undefined) throw watched.lastError;
  }

  index(service: string): SessionIndex {
    const watched = this.#watched.get(service);
    if (watched === undefined) throw new Error(`session directory: service ${service} is not watched`);
    return watched.index;
  }

  /** What the replica of `service` is doing (undefined when it is not watched). */
  replicaState(service: string): ReplicaState | undefined {
    const w = this.#watched.get(service);
    if (w === undefined) return undefined;
    return {
      loading: w.loading,
      bufferedBytes: w.bufferedBytes,
      epoch: w.epoch,
      version: w.version,
      healing: Date.now() < w.healingUntil,
      loads: this.#loads,
    };
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const u of this.#unsubscribe) u();
    for (const t of this.#timers) clearTimeout(t);
    clearInterval(this.#keepAlive);
    clearInterval(this.#checkTimer);
    // Take back what this node still holds, in one go.
    for (const [service, businessId, sessionId] of this.#held()) this.remove(service, businessId, sessionId);
    await this.#flush();
    await this.#redis.close();
  }

  #later(delayMs: number, run: () => void): NodeJS.Timeout {
    const timer = setTimeout(() => {
      this.#timers.delete(timer);
      run();
    }, delayMs);
    timer.unref();
    this.#timers.add(timer);
    return timer;
  }

  #cancel(timer: NodeJS.Timeout | undefined): void {
    if (timer === undefined) return;
    clearTimeout(timer);
    this.#timers.delete(timer);
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
    const multi = this.#redis.command.multi();
    let commands = 0;
    const epochAt: number[] = [];
    for (const [service, { adds, dels }] of pending) {
      const ops: Op[] = [];
      if (adds.size > 0) {
        const fields: string[] = [];
        const members: string[] = [];
        for (const [sessionId, businessId] of adds) {
          fields.push(sessionId, `${me}\n${businessId}`);
          members.push(`${service}\n${sessionId}`);
          ops.push([OP_ADD, sessionId, me, businessId]);
        }
        multi
          .hset(this.#hashKey(service), ...fields)
          .pexpire(this.#hashKey(service), DIRECTORY_KEY_TTL_MS)
          .sadd(this.#gatewayKey(me), ...members)
          .pexpire(this.#gatewayKey(me), DIRECTORY_KEY_TTL_MS);
        commands += 4;
      }
      if (dels.size > 0) {
        const ids = [...dels.keys()];
        multi.hdel(this.#hashKey(service), ...ids).srem(this.#gatewayKey(me), ...ids.map((id) => `${service}\n${id}`));
        commands += 2;
        for (const [id, businessId] of dels) ops.push([OP_DEL, id, businessId]);
      }
      if (ops.length > 0) {
        this.#publishIn(multi, service, ops);
        epochAt.push(commands);
        commands += 1;
      }
    }
    let results: [Error | null, unknown][] | null;
    try {
      results = await multi.exec();
    } catch (err) {
      // Redis is away: keep the batch for the next flush (at the latest #restore(), when it is back),
      // so removals are not lost. A session removed since is not added back.
      this.#o.logger.debug({ err: (err as Error).message }, 'session directory write failed; kept for later');
      for (const [service, failed] of pending) {
        const now = this.#pendingFor(service);
        for (const [id, businessId] of failed.adds) if (!now.dels.has(id) && !now.adds.has(id)) now.adds.set(id, businessId);
        for (const [id, businessId] of failed.dels) now.dels.set(id, businessId);
      }
      return;
    }
    const failed = results?.find(([err]) => err !== null)?.[0];
    if (failed) this.#o.logger.warn({ err: failed.message }, 'a session directory write was refused by redis');
    // The epoch the writes went under: a new one means Redis had lost what this gateway wrote before.
    const epoch = results?.[epochAt[0] ?? -1]?.[1];
    if (typeof epoch === 'string') this.#epochSeen(epoch);
  }

  #publishIn(multi: ReturnType<RedisConnection['command']['multi']>, service: string, ops: Op[]): void {
    multi.eval(
      PUBLISH_SCRIPT,
      2,
      this.#epochKey,
      this.#versionKey(service),
      this.#channel(service),
      packr.pack(ops),
      DIRECTORY_KEY_TTL_MS,
      this.#newEpoch(),
    );
  }

  #onMessage(watched: Watched, message: Buffer): void {
    if (!watched.loading) {
      this.#applyLive(watched, message);
      return;
    }
    if (watched.overflowed) return;
    if (watched.bufferedBytes + message.length > this.#maxBufferBytes) {
      // Holding more would grow without bound while a slow load runs: drop it all and load again instead.
      watched.overflowed = true;
      watched.buffered = [];
      watched.bufferedBytes = 0;
      this.#o.logger.warn(
        { service: watched.service, limitBytes: this.#maxBufferBytes },
        'too many session directory updates during a load; dropping them and loading again',
      );
      return;
    }
    watched.buffered.push(message);
    watched.bufferedBytes += message.length;
  }

  /** An update that arrived while no load ran (or after the barrier of one): in order, or it shows what was missed. */
  #applyLive(watched: Watched, message: Buffer): void {
    const update = decode(message);
    if (update === undefined) {
      this.#o.logger.warn('ignoring a malformed session directory message');
      return;
    }
    applyOps(watched.index, update.ops);
    if (update.epoch === undefined) return;
    if (update.epoch !== watched.epoch) {
      // Redis lost the directory since this view was loaded (a load's barrier rules out an older epoch here).
      watched.epoch = update.epoch;
      watched.version = update.version;
      this.#epochSeen(update.epoch);
      // Its first updates may have come before this node listened again: pick them up without dropping the view.
      if (update.version !== 1) this.#requestLoad(watched);
      return;
    }
    if (update.version <= watched.version) {
      // Only a counter Redis lost while keeping the epoch gets here (a load's barrier rules out stale updates).
      this.#requestLoad(watched);
      return;
    }
    const expected = watched.version + 1;
    watched.version = update.version;
    if (update.version !== expected) {
      // A gap: an update was lost (or the counter was reset). Load again to find out what.
      this.#o.logger.info({ service: watched.service, expected, got: update.version }, 'session directory replica missed updates; loading it again');
      this.#requestLoad(watched);
    }
  }

  /** Runs a load of `watched` now, or after the one running; a failed one is retried with backoff. */
  #requestLoad(watched: Watched): void {
    watched.loadWanted = true;
    if (this.#closed || watched.running !== undefined || watched.retryTimer !== undefined) return;
    watched.running = this.#loadLoop(watched).finally(() => (watched.running = undefined));
  }

  async #loadLoop(watched: Watched): Promise<void> {
    while (watched.loadWanted && !this.#closed) {
      watched.loadWanted = false;
      let retryInMs: number | undefined;
      try {
        const complete = await this.#load(watched);
        if (complete) watched.retry.reset();
        // Updates were dropped during it: load again, backing off so a write storm cannot keep this node scanning.
        else retryInMs = watched.retry.nextDelayMs();
      } catch (err) {
        watched.lastError = err as Error;
        if (this.#closed) return;
        retryInMs = watched.retry.nextDelayMs();
        this.#o.logger.warn(
          { err: (err as Error).message, service: watched.service, retryInMs: Math.round(retryInMs) },
          'could not load the session directory; trying again',
        );
      }
      if (retryInMs !== undefined) {
        watched.loadWanted = false;
        watched.retryTimer = this.#later(retryInMs, () => {
          watched.retryTimer = undefined;
          this.#requestLoad(watched);
        });
        return;
      }
    }
  }

  /**
   * Snapshot, then the updates that came while it loaded. Resolves false when
   * updates were dropped meanwhile (the buffer overflowed); throws when Redis
   * failed, leaving the view as it was plus the updates that came.
   */
  async #load(watched: Watched): Promise<boolean> {
    const { service } = watched;
    this.#loads += 1;
    // Every load after a replica's first is a resync (a gap, a check, a failed load, Redis lost it).
    if (watched.loaded || watched.lastError !== undefined) counts.directoryResyncs += 1;
    watched.loading = true;
    watched.buffered = [];
    watched.bufferedBytes = 0;
    watched.barrier = Number.MAX_SAFE_INTEGER;
    watched.overflowed = false;
    // Build aside and swap (or merge) at the end, so lookups keep the old view while this loads.
    const index = new SessionIndex();
    const unknownGateways = new Set<string>();
    let epoch: string;
    let version: number;
    try {
      const results = await this.#redis.command
        .multi()
        .eval(EPOCH_SCRIPT, 1, this.#epochKey, this.#newEpoch(), DIRECTORY_KEY_TTL_MS)
        .get(this.#versionKey(service))
        .exec();
      const read = results?.[0]?.[1];
      if (typeof read !== 'string' || results?.some(([err]) => err !== null) === true) throw new Error('could not read the directory version');
      epoch = read;
      version = Number(results?.[1]?.[1] ?? 0);
      // From here on, every update that arrives was published after the version was read.
      await this.#redis.subscriberCaughtUp();
      watched.barrier = watched.buffered.length;
      this.#epochSeen(epoch);
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
    } catch (err) {
      // Whatever came meanwhile still counts: apply it to the view in use, which stays live.
      const buffered = watched.buffered;
      this.#endLoading(watched);
      for (const message of buffered) this.#applyLive(watched, message);
      throw err;
    }
    const buffered = watched.buffered;
    const barrier = watched.barrier;
    const overflowed = watched.overflowed;
    this.#endLoading(watched);
    // Redis lost the directory: keep the last good view and add to it (see the file comment).
    const merge = Date.now() < watched.healingUntil;
    const target = merge ? watched.index : index;
    if (merge) for (const [sessionId, businessId, gateway] of index.entries()) target.add(sessionId, businessId, gateway);
    else watched.index = index;
    watched.epoch = epoch;
    watched.version = version;
    watched.loaded = true;
    watched.lastError = undefined;
    buffered.forEach((message, i) => {
      if (i >= barrier) return this.#applyLive(watched, message);
      // Before the barrier: an update the snapshot may already hold. Apply the ones after the version read.
      const update = decode(message);
      if (update === undefined) return;
      if (update.epoch === undefined || (update.epoch === epoch && update.version > watched.version)) {
        applyOps(target, update.ops);
        if (update.epoch !== undefined) watched.version = update.version;
      } else if (merge && update.epoch !== epoch) {
        applyOps(target, update.ops); // the last words of the epoch Redis lost: the old view is what they change
      }
    });
    if (unknownGateways.size > 0) this.#sweepLater(unknownGateways);
    return !overflowed;
  }

  #endLoading(watched: Watched): void {
    watched.loading = false;
    watched.buffered = [];
    watched.bufferedBytes = 0;
    watched.barrier = Number.MAX_SAFE_INTEGER;
  }

  /** An epoch read from Redis or from an update; a change means Redis lost the directory. */
  #epochSeen(epoch: string): void {
    const before = this.#epoch;
    if (before === epoch) return;
    this.#epoch = epoch;
    if (before === undefined || this.#closed) return;
    this.#o.logger.warn(
      { healMs: this.#o.staleAfterMs },
      'redis lost the session directory; writing the sessions this node holds again and answering from the last good view meanwhile',
    );
    this.#rewriteHeld();
    for (const watched of this.#watched.values()) this.#heal(watched);
  }

  /** Keeps the last good view of `watched` for a while, adding what is written meanwhile; then loads what Redis holds. */
  #heal(watched: Watched): void {
    watched.healingUntil = Date.now() + this.#o.staleAfterMs;
    this.#cancel(watched.healTimer);
    watched.healTimer = this.#later(this.#o.staleAfterMs, () => {
      watched.healTimer = undefined;
      this.#o.logger.info({ service: watched.service }, 'session directory rewritten; replacing the last good view with what Redis holds');
      this.#requestLoad(watched);
    });
    this.#requestLoad(watched);
  }

  /** Queues every session this node holds to be written again. */
  #rewriteHeld(): void {
    let any = false;
    for (const [service, businessId, sessionId] of this.#held()) {
      this.#pendingFor(service).adds.set(sessionId, businessId);
      any = true;
    }
    if (any) this.#schedule();
  }

  /**
   * Compares the epoch and the versions of watched services with Redis:
   * catches an update lost with none after it, and a Redis that forgot the
   * directory without this node's connection dropping.
   */
  async #check(): Promise<boolean> {
    if (this.#closed || this.#checking || this.#services.size === 0) return true;
    this.#checking = true;
    try {
      const watched = [...this.#watched.values()];
      const multi = this.#redis.command.multi().eval(EPOCH_SCRIPT, 1, this.#epochKey, this.#newEpoch(), DIRECTORY_KEY_TTL_MS);
      for (const w of watched) multi.get(this.#versionKey(w.service));
      const results = await multi.exec();
      if (results === null || results.some(([err]) => err !== null)) return false;
      const epoch = results[0]![1];
      if (typeof epoch !== 'string') return false;
      if (watched.length > 0) await this.#redis.subscriberCaughtUp();
      this.#epochSeen(epoch);
      watched.forEach((w, i) => {
        if (w.loading || w.running !== undefined || w.epoch !== epoch) return;
        const remote = Number(results[i + 1]![1] ?? 0);
        // Updates up to `remote` were published before the read and have all arrived by now: behind means lost.
        if (w.version < remote) {
          this.#o.logger.info(
            { service: w.service, version: w.version, redis: remote },
            'session directory replica is behind Redis; loading it again',
          );
          this.#requestLoad(w);
        }
      });
      return true;
    } catch (err) {
      this.#o.logger.debug({ err: (err as Error).message }, 'session directory check failed');
      return false;
    } finally {
      this.#checking = false;
    }
  }

  /** Entries of gateways the registry does not know: remove them if they are still unknown later. */
  #sweepLater(gateways: Set<string>): void {
    this.#later(this.#o.staleAfterMs, () => {
      const view = this.#registry.view();
      const dead = [...gateways].filter((g) => !view.has(g));
      if (dead.length > 0) void this.#reap(dead);
    });
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
        const members = await c.smembers(this.#gatewayKey(gateway));
        const byService = new Map<string, string[]>();
        for (const m of members) {
          const cut = m.indexOf('\n');
          const service = m.slice(0, cut);
          let ids = byService.get(service);
          if (ids === undefined) byService.set(service, (ids = []));
          ids.push(m.slice(cut + 1));
        }
        const multi = c.multi();
        for (const [service, ids] of byService) {
          multi.hdel(this.#hashKey(service), ...ids);
          this.#publishIn(multi, service, [[OP_DROP_GATEWAY, gateway]]);
        }
        multi.del(this.#gatewayKey(gateway));
        await multi.exec();
        if (members.length > 0) {
          this.#o.logger.info({ gateway, sessions: members.length }, 'removed the sessions of a gateway that left');
        }
      } catch (err) {
        this.#o.logger.warn({ err: (err as Error).message, gateway }, 'could not remove the sessions of a dead gateway');
      }
    }
  }

  /**
   * After Redis came back (possibly empty) or this node's record lapsed:
   * write what this node holds, then compare with Redis; a replica that
   * missed updates loads again, and a lost directory is healed (#epochSeen).
   */
  async #restore(): Promise<void> {
    if (this.#closed) return;
    this.#rewriteHeld();
    await this.#flush();
    // Could not tell what was missed: load everything (retried with backoff until Redis answers).
    if (!(await this.#check())) for (const watched of this.#watched.values()) this.#requestLoad(watched);
  }
}
