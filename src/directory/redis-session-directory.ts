/**
 * Redis session directory, sharded.
 *
 * A service's directory is cut into units: the shard of each businessId
 * (`shardOf`, the hash ring's shards, so a host owns a businessId and its
 * shard alike), or one unit for the whole service when every host keeps a
 * full replica (`fullReplica`). Per unit, a hash maps sessionId to
 * "gatewayNodeId\nbusinessId", a sorted set lists "businessId\nsessionId\n
 * gatewayNodeId" (one range read gives a businessId's sessions), per unit
 * and gateway a set lists what the gateway holds, and per gateway a set
 * lists its units, so the entries of a dead gateway can be removed. Every
 * change is published on the unit's channel. A host keeps a replica of the
 * units it owns on the service's hash ring (built from the registry, like
 * the gateways' ring) and of no other: it answers their lookups from
 * memory and receives no update of the rest. A lookup of another unit is
 * one read of its sorted set, plus the sessions bound to this host (known
 * at once, before the gateway's write lands). When the ring changes, a
 * host drops the units it no longer owns and loads the new ones; until a
 * load is done it answers them from Redis, never from a view not yet good.
 * Gateways batch their writes per tick. Key names are in redis/keys.ts: a
 * unit's keys and channel share one hash tag, so each MULTI and script
 * below stays in one slot on a Redis Cluster (where the channel is a shard
 * channel: SPUBLISH).
 *
 * Everything below that says "service" of versions, epochs, loads and
 * healing holds per unit.
 *
 * How a replica stays right (docs/architecture.md, "Directory healing"):
 *
 * - Versions. Each batch of changes to a service bumps the service's
 *   `version` key in the script that publishes it, and the message carries
 *   the version. A replica that sees a gap, or whose periodic check finds
 *   Redis ahead of it, lost an update and loads the service again.
 * - Epoch. Each service has an `epoch` key, in its own slot: a random value
 *   written by whoever finds it missing. A different one means Redis lost
 *   that service's directory (it restarted empty, was flushed, or on a Redis
 *   Cluster the master of that slot came back empty): gateways write every
 *   session of it they hold again, and replicas keep answering from their
 *   last good view, adding what they learn, until every live gateway has had
 *   time to write again; only then do they replace their view with what
 *   Redis holds. A push to a session that stayed open must not be answered 0
 *   because Redis forgot it; a replica may list a session that closed
 *   meanwhile a little longer, and a push to it is counted by the gateway,
 *   which knows it is gone.
 *
 *   Why per service and not one key for the directory: the script that
 *   publishes a batch reads the epoch, bumps the version and publishes in
 *   one step, so the three must be in one slot, and a service's slot is the
 *   only one they share. It is also what a Redis Cluster needs: a master
 *   that restarts empty loses the services of its slots and no other, so a
 *   global epoch on another master would not change, and the replicas of
 *   the lost services would replace their view with an empty one.
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
import { runScript, script } from '../redis/redis-script.js';
import { TurnReads } from '../redis/turn-reads.js';
import { directoryUnit, registryKeys, serviceKeys, serviceOfUnit, type ServiceKeys } from '../redis/keys.js';
import { RedisPresence } from './redis-presence.js';
import type { Registry, RegistryView } from '../registry/registry.js';
import { Backoff } from '../util/backoff.js';
import { HashRing, RING_SHARDS, shardOf } from '../util/hash-ring.js';
import { SessionIndex } from './session-index.js';
import { RedisRoomIndex } from './room-index.js';
import type {
  BusinessSessions,
  DescribedSession,
  HeldRooms,
  HeldSessions,
  PresenceListener,
  SessionDirectory,
  SessionRecord,
} from './session-directory.js';

export interface RedisSessionDirectoryOptions {
  prefix: string;
  nodeId: string;
  /**
   * How long an entry of a gateway missing from the registry may stay before
   * it is swept; also how long a replica keeps its last good view after Redis
   * lost the directory (every live gateway writes again well within it).
   */
  staleAfterMs: number;
  /** How often the epochs and versions of the services this node writes or watches are compared with Redis. */
  checkIntervalMs: number;
  /** Updates a replica holds while it loads, in bytes; past it they are dropped and it loads again. Default LIMITS.directoryLoadBufferMaxBytes. */
  maxLoadBufferBytes?: number;
  /**
   * Every host keeps the whole directory of the services it watches (one
   * unit per service, every update to every host), as before the directory
   * was sharded. Default false: a host keeps the shards it owns.
   */
  fullReplica?: boolean;
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
 * A service's epoch (a new one, ARGV[1], when Redis has none) and its
 * version: one command, where a MULTI of a script and a GET took four.
 * KEYS[1] epoch, KEYS[2] version (one slot); ARGV[1] candidate epoch, ARGV[2] TTL ms.
 */
const EPOCH_VERSION_SCRIPT = script(`local e = redis.call('GET', KEYS[1])
if not e then e = ARGV[1] redis.call('SET', KEYS[1], e, 'PX', ARGV[2]) end
return {e, redis.call('GET', KEYS[2]) or '0'}`);

/** Units whose check goes in one round trip; the next chunk waits, so one check never holds the event loop long. */
const CHECK_CHUNK_UNITS = 32;
/** PEXPIREs sent in one event-loop turn by the TTL refresh. */
const TTL_CHUNK_KEYS = 256;
/** How often the keys' TTLs are refreshed: far inside DIRECTORY_KEY_TTL_MS, and rarely, as it touches every key. */
const TTL_REFRESH_MS = DIRECTORY_KEY_TTL_MS / 10;

/**
 * Publishes a batch with the service's epoch and next version, so that a
 * replica can tell it missed one. Runs in the same MULTI as the writes.
 * Every key, and the channel, is the service's (one hash tag, one slot); the
 * channel is passed as a key so a Redis Cluster checks it is in that slot.
 * KEYS[1] epoch, KEYS[2] version, KEYS[3] channel;
 * ARGV[1] packed ops, ARGV[2] TTL ms, ARGV[3] candidate epoch, ARGV[4] PUBLISH or SPUBLISH (a Redis Cluster).
 */
const PUBLISH_SCRIPT = `local e = redis.call('GET', KEYS[1])
if not e then e = ARGV[3] redis.call('SET', KEYS[1], e, 'PX', ARGV[2]) end
local v = redis.call('INCR', KEYS[2])
redis.call('PEXPIRE', KEYS[2], ARGV[2])
local message = e .. ' ' .. v .. '\\n' .. ARGV[1]
if ARGV[4] == 'SPUBLISH' then redis.call('SPUBLISH', KEYS[3], message) else redis.call('PUBLISH', KEYS[3], message) end
return e`;

interface Update {
  /** Undefined for a message of a writer that sends no version (an older weft). */
  epoch: string | undefined;
  version: number;
  ops: Op[];
}

interface Watched {
  /** The unit's name (`directoryUnit`): its keys, its channel. */
  service: string;
  /** Unsubscribes from the unit's channel. */
  unsubscribe: () => Promise<void>;
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
  /** Sessions the replica lists. */
  sessions: number;
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

/** A member of a unit's by-business sorted set: a range on `businessId\n` finds the businessId's sessions. */
function byBusinessMember(businessId: string, sessionId: string, gatewayNodeId: string): string {
  return `${businessId}\n${sessionId}\n${gatewayNodeId}`;
}

/** What a replica or Redis lists, plus the sessions bound here that it does not list yet. */
function withBound(found: [string, string][], bound: [string, string][] | undefined): BusinessSessions {
  if (bound === undefined || bound.length === 0) return found;
  for (const entry of bound) if (!found.some(([id]) => id === entry[0])) found.push(entry);
  return found;
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
  /** Lookups of units this node keeps no replica of: one pipeline per turn. */
  readonly #reads: TurnReads;
  readonly #registry: Registry;
  readonly #o: RedisSessionDirectoryOptions;
  readonly #maxBufferBytes: number;
  #held: HeldSessions = () => [];
  #heldCount = 0;
  /** Per unit, its replica on this node. */
  readonly #watched = new Map<string, Watched>();
  /** The services watched, and per service (sharded) the shards this node owns. */
  readonly #wanted = new Map<string, Set<number>>();
  /** Per service, the sessions bound to this host: a lookup adds them to what Redis or a replica lists. */
  readonly #bound = new Map<string, SessionIndex>();
  /** Units this node wrote sessions of (their TTLs and epochs stay its concern when it watches them no longer). */
  readonly #writtenUnits = new Set<string>();
  /** Per unit, writes waiting for this tick's flush: sessionId -> businessId. */
  #pending = new Map<string, { adds: Map<string, string>; dels: Map<string, string> }>();
  #flushScheduled = false;
  #lastView: RegistryView = new Map();
  #unsubscribe: (() => void)[] = [];
  #timers = new Set<NodeJS.Timeout>();
  /** Units this node writes to or watches, kept from expiring while it lives. */
  readonly #services = new Set<string>();
  #keepAlive: NodeJS.Timeout | undefined;
  #checkTimer: NodeJS.Timeout | undefined;
  #checking = false;
  /** Per unit, the epoch this node last saw of it (none before the first). */
  readonly #epochs = new Map<string, string>();
  /** A new epoch this node proposes when it finds none: unique per proposal. */
  readonly #epochBase = randomBytes(6).toString('hex');
  #epochCount = 0;
  #loads = 0;
  #closed = false;
  readonly #fullReplica: boolean;
  readonly #restoredListeners = new Set<() => void>();
  /** Session records and presence events (redis-presence.ts). */
  readonly #presence: RedisPresence;
  /** Which gateways hold members of each room (room-index.ts). */
  readonly #rooms: RedisRoomIndex;

  constructor(redis: RedisConnection, registry: Registry, options: RedisSessionDirectoryOptions) {
    this.#redis = redis;
    this.#reads = new TurnReads(redis);
    this.#registry = registry;
    this.#o = options;
    this.#maxBufferBytes = options.maxLoadBufferBytes ?? LIMITS.directoryLoadBufferMaxBytes;
    this.#fullReplica = options.fullReplica ?? false;
    this.#presence = new RedisPresence(redis, options.prefix, options.nodeId, options.logger);
    this.#rooms = new RedisRoomIndex(redis, {
      prefix: options.prefix,
      nodeId: options.nodeId,
      fullReplica: this.#fullReplica,
      keyTtlMs: DIRECTORY_KEY_TTL_MS,
      logger: options.logger,
      reads: this.#reads,
    });
  }

  // Rooms: the entries are room-index.ts's; this directory gives them its connection, TTLs, epochs and reaping.

  addRoom(service: string, room: string): Promise<void> {
    // The unit's epoch is checked like those of the units this node writes sessions in: a Redis that lost it is noticed.
    this.#services.add(this.#rooms.unitOf(service, room));
    return this.#rooms.add(service, room);
  }

  removeRoom(service: string, room: string): void {
    this.#rooms.remove(service, room);
  }

  roomGateways(service: string, room: string): Promise<string[]> {
    return this.#rooms.gatewaysOf(service, room);
  }

  setHeldRooms(held: HeldRooms): void {
    this.#rooms.setHeld(held);
  }

  /** The unit a businessId's sessions of `service` are kept in. */
  #unitOf(service: string, businessId: string): string {
    return directoryUnit(service, this.#fullReplica ? undefined : shardOf(businessId));
  }

  /**
   * A session bound here is kept aside only until the gateway's write lands:
   * once a replica's update lists it, Redis has it too, so the second copy
   * goes (one entry per session on a host that owns its shard, not two).
   */
  #forgetBoundListed(unit: string, ops: Op[]): void {
    const bound = this.#bound.get(serviceOfUnit(unit));
    if (bound === undefined || bound.size === 0) return;
    for (const op of ops) if (Array.isArray(op) && op[0] === OP_ADD) bound.remove(op[1], op[3]);
  }

  #keys(service: string): ServiceKeys {
    return serviceKeys(this.#o.prefix, service);
  }

  /** The services a gateway wrote sessions of. */
  #gatewayServicesKey(gatewayNodeId: string): string {
    return registryKeys(this.#o.prefix).gatewayServices(gatewayNodeId);
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
      this.#registry.onRecovered(() => {
        void this.#restore();
        // A node that reaped this one may still be removing its sessions (several round trips,
        // started before this node wrote them again): write them once more after that.
        this.#later(this.#o.staleAfterMs, () => void this.#restore());
      }),
    );
    this.#redis.onReconnect(() => void this.#restore());
    this.#keepAlive = setInterval(() => void this.#refreshTtls(), TTL_REFRESH_MS);
    this.#keepAlive.unref();
    this.#checkTimer = setInterval(() => void this.#check(), this.#o.checkIntervalMs);
    this.#checkTimer.unref();
  }

  async #refreshTtls(): Promise<void> {
    // Keys of many slots: one PEXPIRE each (pipelined), not one MULTI.
    const c = this.#redis.command;
    const me = this.#o.nodeId;
    const keys: string[] = [];
    for (const service of this.#services) {
      const k = this.#keys(service);
      keys.push(k.sessions, k.byBusiness, k.version, k.epoch, this.#presence.recordsKey(service));
      if (this.#heldCount > 0 && this.#writtenUnits.has(service)) keys.push(k.gateway(me));
    }
    if (this.#heldCount > 0) keys.push(this.#gatewayServicesKey(me));
    keys.push(...this.#rooms.ttlKeys());
    try {
      for (let i = 0; i < keys.length && !this.#closed; i += TTL_CHUNK_KEYS) {
        await Promise.all(keys.slice(i, i + TTL_CHUNK_KEYS).map((k) => c.pexpire(k, DIRECTORY_KEY_TTL_MS)));
      }
    } catch (err) {
      this.#o.logger.debug({ err: (err as Error).message }, 'could not refresh session directory TTLs');
    }
  }

  /** The unit's epoch (set when Redis has none) and version, in one command. */
  async #epochAndVersion(keys: ServiceKeys): Promise<{ epoch: string; version: number }> {
    const c = this.#redis.command;
    const args = [keys.epoch, keys.version, this.#newEpoch(), DIRECTORY_KEY_TTL_MS] as const;
    const reply = (await runScript(
      () => c.evalsha(EPOCH_VERSION_SCRIPT.sha, 2, ...args),
      () => c.eval(EPOCH_VERSION_SCRIPT.lua, 2, ...args),
    )) as [unknown, unknown];
    if (typeof reply[0] !== 'string') throw new Error('could not read the directory version');
    return { epoch: reply[0], version: Number(reply[1] ?? 0) };
  }

  add(service: string, businessId: string, sessionId: string, record?: SessionRecord): void {
    const unit = this.#unitOf(service, businessId);
    this.#presence.added(service, unit, businessId, sessionId, record);
    this.#services.add(unit);
    this.#writtenUnits.add(unit);
    this.#heldCount += 1;
    const p = this.#pendingFor(unit);
    p.dels.delete(sessionId);
    p.adds.set(sessionId, businessId);
    this.#schedule();
  }

  remove(service: string, businessId: string, sessionId: string, record?: SessionRecord): void {
    this.#heldCount = Math.max(0, this.#heldCount - 1);
    const unit = this.#unitOf(service, businessId);
    const p = this.#pendingFor(unit);
    if (p.adds.delete(sessionId)) return this.#presence.unsent(unit, sessionId); // never written: nothing to take back
    this.#presence.removed(service, unit, businessId, sessionId, record);
    p.dels.set(sessionId, businessId);
    this.#schedule();
  }

  onRestored(listener: () => void): () => void {
    this.#restoredListeners.add(listener);
    return () => this.#restoredListeners.delete(listener);
  }

  setHeldSessions(held: HeldSessions): void {
    this.#held = held;
  }

  async watch(service: string): Promise<void> {
    if (this.#wanted.has(service)) return;
    this.#wanted.set(service, new Set());
    if (this.#fullReplica) {
      await this.#watchUnit(directoryUnit(service, undefined));
      return;
    }
    await Promise.all(this.#own(service, this.#registry.view()).map((unit) => this.#watchUnit(unit)));
  }

  /**
   * Takes the shards of `service` this node owns on the ring of the
   * service's hosts in `view`; returns the units newly owned, and drops
   * the replicas of those it owns no longer.
   */
  #own(service: string, view: RegistryView): string[] {
    const owned = this.#wanted.get(service)!;
    const hosts: string[] = [];
    for (const record of view.values()) {
      if (record.role === 'host' && record.services.some((s) => s.contract.name === service)) hosts.push(record.nodeId);
    }
    const ring = new HashRing(hosts);
    const me = this.#o.nodeId;
    const gained: string[] = [];
    for (let shard = 0; shard < RING_SHARDS; shard++) {
      const mine = ring.pickShardWhere(shard) === me;
      if (mine === owned.has(shard)) continue;
      const unit = directoryUnit(service, shard);
      if (mine) {
        owned.add(shard);
        gained.push(unit);
      } else {
        owned.delete(shard);
        this.#unwatchUnit(unit);
      }
    }
    return gained;
  }

  async #watchUnit(unit: string): Promise<void> {
    if (this.#watched.has(unit) || this.#closed) return;
    this.#services.add(unit);
    const channel = this.#keys(unit).channel;
    const watched: Watched = {
      service: unit,
      // Called only after the subscription below.
      unsubscribe: () => this.#redis.unsubscribe(channel, handler),
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
    this.#watched.set(unit, watched);
    const handler = (message: Buffer): void => this.#onMessage(watched, message);
    await this.#redis.subscribe(channel, handler);
    // Dropped while subscribing (the ring moved on): take it back.
    if (this.#watched.get(unit) !== watched) {
      await this.#redis.unsubscribe(channel, handler);
      return;
    }
    this.#requestLoad(watched);
    await watched.running;
    // A first load that failed is retried in the background, but the caller learns of it now.
    if (!watched.loaded && watched.lastError !== undefined) throw watched.lastError;
  }

  /** This node owns `unit` no longer: its replica and its updates go. */
  #unwatchUnit(unit: string): void {
    const watched = this.#watched.get(unit);
    if (watched === undefined) return;
    this.#watched.delete(unit);
    if (!this.#writtenUnits.has(unit)) this.#services.delete(unit);
    this.#cancel(watched.retryTimer);
    this.#cancel(watched.healTimer);
    watched.loadWanted = false;
    watched.buffered = [];
    void watched
      .unsubscribe()
      .catch((err: unknown) => this.#o.logger.debug({ err: (err as Error).message, unit }, 'could not unsubscribe from a session directory shard'));
  }

  /** The replica of the unit, when this node keeps it and it has loaded (answers may come from it). */
  #replicaOf(unit: string): Watched | undefined {
    const w = this.#watched.get(unit);
    if (w === undefined) return undefined;
    // A full replica answers from what it has, as it always did; a shard only once it is known good.
    return w.loaded || this.#fullReplica ? w : undefined;
  }

  #boundOf(service: string): SessionIndex {
    let index = this.#bound.get(service);
    if (index === undefined) {
      index = new SessionIndex();
      this.#bound.set(service, index);
    }
    return index;
  }

  bind(service: string, businessId: string, sessionId: string, gatewayNodeId: string): void {
    this.#boundOf(service).add(sessionId, businessId, gatewayNodeId);
  }

  unbind(service: string, businessId: string, sessionId: string): void {
    this.#bound.get(service)?.remove(sessionId, businessId);
    // A replica that has it would drop it with the gateway's update; doing it now keeps lookups here exact.
    this.#watched.get(this.#unitOf(service, businessId))?.index.remove(sessionId, businessId);
  }

  sessionsOf(service: string, businessId: string): BusinessSessions | Promise<BusinessSessions> {
    if (!this.#wanted.has(service)) throw new Error(`session directory: service ${service} is not watched`);
    const unit = this.#unitOf(service, businessId);
    const bound = this.#bound.get(service)?.sessionsOf(businessId);
    const replica = this.#replicaOf(unit);
    if (replica !== undefined) return withBound(replica.index.sessionsOf(businessId), bound);
    return this.#read(unit, businessId).then((found) => withBound(found, bound));
  }

  /** A businessId's sessions as Redis lists them: one range read of its unit's sorted set. */
  async #read(unit: string, businessId: string): Promise<[string, string][]> {
    const flat = await this.#reads.zrangebylex(this.#keys(unit).byBusiness, `[${businessId}\n`, `(${businessId}\u000b`);
    const out: [string, string][] = [];
    for (const member of flat) {
      const last = member.lastIndexOf('\n');
      const middle = member.lastIndexOf('\n', last - 1);
      // A businessId with a newline in it could share a range with another: keep exact matches only.
      if (middle < 0 || member.slice(0, middle) !== businessId) continue;
      out.push([member.slice(middle + 1, last), member.slice(last + 1)]);
    }
    return out;
  }

  /** The units of `service` (one per shard, or the service itself). */
  #unitsOf(service: string): string[] {
    if (this.#fullReplica) return [directoryUnit(service, undefined)];
    return Array.from({ length: RING_SHARDS }, (_, shard) => directoryUnit(service, shard));
  }

  async size(service: string): Promise<number> {
    if (this.#fullReplica) return this.#requireReplica(service).index.size;
    // One HLEN per shard, pipelined (each shard is a slot of its own on a Cluster).
    const c = this.#redis.command;
    const sizes = await Promise.all(this.#unitsOf(service).map((unit) => c.hlen(this.#keys(unit).sessions)));
    return sizes.reduce((a, b) => a + b, 0);
  }

  async entries(service: string): Promise<Iterable<readonly [string, string, string]>> {
    if (this.#fullReplica) return [...this.#requireReplica(service).index.entries()];
    const out = new Map<string, readonly [string, string, string]>();
    for (const unit of this.#unitsOf(service)) {
      let cursor = '0';
      do {
        const [next, flat] = await this.#redis.command.hscan(this.#keys(unit).sessions, cursor, 'COUNT', 1000);
        cursor = next;
        for (let i = 0; i + 1 < flat.length; i += 2) {
          const value = flat[i + 1]!;
          const cut = value.indexOf('\n');
          out.set(flat[i]!, [flat[i]!, value.slice(cut + 1), value.slice(0, cut)]);
        }
      } while (cursor !== '0');
    }
    for (const [sessionId, businessId, gateway] of this.#bound.get(service)?.entries() ?? []) out.set(sessionId, [sessionId, businessId, gateway]);
    return out.values();
  }

  describe(service: string, businessId: string): Promise<readonly DescribedSession[]> {
    if (!this.#wanted.has(service)) return Promise.reject(new Error(`session directory: service ${service} is not watched`));
    return this.#presence.describe(this.#unitOf(service, businessId), this.#keys(this.#unitOf(service, businessId)).byBusiness, businessId);
  }

  onPresence(service: string, listener: PresenceListener): Promise<() => void> {
    return this.#presence.listen(service, listener);
  }

  gateways(service: string): Promise<Iterable<string>> {
    if (this.#fullReplica) return Promise.resolve(this.#requireReplica(service).index.gateways());
    // Any live gateway may hold sessions of it: one frame each (those with none answer 0).
    const out: string[] = [];
    for (const record of this.#registry.view().values()) if (record.role === 'gateway') out.push(record.nodeId);
    return Promise.resolve(out);
  }

  #requireReplica(service: string): Watched {
    const w = this.#watched.get(directoryUnit(service, undefined));
    if (w === undefined) throw new Error(`session directory: service ${service} is not watched`);
    return w;
  }

  /** The shards of `service` this node keeps a replica of (all of them, as one unit, with a full replica). */
  ownedShards(service: string): number[] {
    return [...(this.#wanted.get(service) ?? [])].sort((a, b) => a - b);
  }

  /** What the replica of a unit (`directoryUnit`) is doing (undefined when this node does not keep it). */
  replicaState(unit: string): ReplicaState | undefined {
    const w = this.#watched.get(unit);
    if (w === undefined) return undefined;
    return {
      loading: w.loading,
      bufferedBytes: w.bufferedBytes,
      epoch: w.epoch,
      version: w.version,
      healing: Date.now() < w.healingUntil,
      loads: this.#loads,
      sessions: w.index.size,
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
    for (const [service, businessId, sessionId, record] of this.#held()) this.remove(service, businessId, sessionId, record);
    await Promise.all([this.#flush(), this.#rooms.close()]);
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
    const c = this.#redis.command;
    // One MULTI per service: its keys, its version and epoch and its channel share a hash tag (one slot on a Redis Cluster).
    const writes: {
      service: string;
      done: Promise<[Error | null, unknown][] | null>;
      epochAt: number;
      presence: ReturnType<RedisPresence['countIn']>;
    }[] = [];
    const added: string[] = [];
    let servicesWritten: Promise<unknown> = Promise.resolve();
    // Every MULTI of this flush goes out in one socket write.
    this.#redis.together(() => {
      for (const [service, { adds, dels }] of pending) {
        const keys = this.#keys(service);
        const multi = c.multi();
        const ops: Op[] = [];
        let commands = 0;
        if (adds.size > 0) {
          const fields: string[] = [];
          const members: (string | number)[] = [];
          for (const [sessionId, businessId] of adds) {
            fields.push(sessionId, `${me}\n${businessId}`);
            members.push(0, byBusinessMember(businessId, sessionId, me));
            ops.push([OP_ADD, sessionId, me, businessId]);
          }
          multi
            .hset(keys.sessions, ...fields)
            .pexpire(keys.sessions, DIRECTORY_KEY_TTL_MS)
            .zadd(keys.byBusiness, ...members)
            .pexpire(keys.byBusiness, DIRECTORY_KEY_TTL_MS)
            .sadd(keys.gateway(me), ...adds.keys())
            .pexpire(keys.gateway(me), DIRECTORY_KEY_TTL_MS);
          commands += 6;
          commands += this.#presence.writeRecords(multi, service, adds.keys(), DIRECTORY_KEY_TTL_MS);
          added.push(service);
        }
        if (dels.size > 0) {
          const ids = [...dels.keys()];
          const members = [...dels].map(([id, businessId]) => byBusinessMember(businessId, id, me));
          multi
            .hdel(keys.sessions, ...ids)
            .zrem(keys.byBusiness, ...members)
            .srem(keys.gateway(me), ...ids);
          commands += 3;
          commands += this.#presence.dropRecords(multi, service, ids);
          for (const [id, businessId] of dels) ops.push([OP_DEL, id, businessId]);
        }
        let epochAt = -1;
        if (ops.length > 0) {
          this.#publishIn(multi, keys, ops);
          epochAt = commands;
        }
        // After the writes, in the same MULTI: the counts that tell online and offline.
        const presence = this.#presence.countIn(multi, service, keys.byBusiness, epochAt < 0 ? commands : commands + 1);
        writes.push({ service, done: multi.exec(), epochAt, presence });
      }
      // The services this gateway has sessions of, for whoever removes them when it dies (another slot).
      if (added.length > 0) {
        const key = this.#gatewayServicesKey(me);
        servicesWritten = c
          .multi()
          .sadd(key, ...added)
          .pexpire(key, DIRECTORY_KEY_TTL_MS)
          .exec();
      }
    });
    const [servicesResult, ...results] = await Promise.allSettled([servicesWritten, ...writes.map((w) => w.done)]);
    const failedServices = new Set<string>();
    writes.forEach((w, i) => {
      const r = results[i];
      // Without the list of its services, a gateway's sessions of those could not be removed when it dies.
      if (r?.status === 'rejected' || (servicesResult?.status === 'rejected' && added.includes(w.service))) failedServices.add(w.service);
      if (r?.status !== 'fulfilled') return;
      const refused = r.value?.find(([err]) => err !== null)?.[0];
      if (refused) this.#o.logger.warn({ err: refused.message, service: w.service }, 'a session directory write was refused by redis');
      // The epoch the writes went under: a new one means Redis had lost what this gateway wrote of the service before.
      const epoch = r.value?.[w.epochAt]?.[1];
      if (typeof epoch === 'string') this.#epochSeen(w.service, epoch);
      this.#presence.written(w.presence, r.value);
    });
    const published = this.#presence.publish();
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
    await published;
  }

  /** Queues in `multi` the script that bumps the service's version and publishes `ops` with its epoch and version. */
  #publishIn(multi: ReturnType<RedisConnection['command']['multi']>, keys: ServiceKeys, ops: Op[]): void {
    multi.eval(
      PUBLISH_SCRIPT,
      3,
      keys.epoch,
      keys.version,
      keys.channel,
      packr.pack(ops),
      DIRECTORY_KEY_TTL_MS,
      this.#newEpoch(),
      this.#redis.publishCommand,
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
    this.#forgetBoundListed(watched.service, update.ops);
    if (update.epoch === undefined) return;
    if (update.epoch !== watched.epoch) {
      // Redis lost the service's directory since this view was loaded (a load's barrier rules out an older epoch here).
      watched.epoch = update.epoch;
      watched.version = update.version;
      this.#epochSeen(watched.service, update.epoch);
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
    // A shard this node no longer owns is not loaded again.
    if (this.#watched.get(watched.service) !== watched) return;
    watched.loadWanted = true;
    if (this.#closed || watched.running !== undefined || watched.retryTimer !== undefined) return;
    watched.running = this.#loadLoop(watched).finally(() => (watched.running = undefined));
  }

  async #loadLoop(watched: Watched): Promise<void> {
    while (watched.loadWanted && !this.#closed && this.#watched.get(watched.service) === watched) {
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
    const keys = this.#keys(service);
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
      ({ epoch, version } = await this.#epochAndVersion(keys));
      // From here on, every update that arrives was published after the version was read.
      await this.#redis.subscriberCaughtUp(keys.channel);
      watched.barrier = watched.buffered.length;
      this.#epochSeen(service, epoch);
      const view = this.#registry.view();
      let cursor = '0';
      do {
        const [next, flat] = await this.#redis.command.hscan(keys.sessions, cursor, 'COUNT', 1000);
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

  /** An epoch of `service` read from Redis or from an update; a change means Redis lost the service's directory. */
  #epochSeen(service: string, epoch: string): void {
    const before = this.#epochs.get(service);
    if (before === epoch) return;
    this.#epochs.set(service, epoch);
    if (before === undefined || this.#closed) return;
    this.#o.logger.warn(
      { service, healMs: this.#o.staleAfterMs },
      'redis lost the session directory; writing the sessions this node holds again and answering from the last good view meanwhile',
    );
    this.#rewriteHeld(service);
    void this.#rooms.rewriteHeld(service);
    const watched = this.#watched.get(service);
    if (watched !== undefined) this.#heal(watched);
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

  /** Queues every session this node holds (of the unit `only`, when given) to be written again. */
  #rewriteHeld(only?: string): void {
    let any = false;
    for (const [service, businessId, sessionId, record] of this.#held()) {
      const unit = this.#unitOf(service, businessId);
      if (only !== undefined && unit !== only) continue;
      this.#pendingFor(unit).adds.set(sessionId, businessId);
      this.#presence.rewritten(sessionId, record);
      any = true;
    }
    if (any) this.#schedule();
  }

  /**
   * Compares the epoch and version of each service this node writes or
   * watches with Redis: catches an update lost with none after it, and a
   * Redis that forgot a service's directory without this node's connection
   * dropping. One command per unit (its slot), a chunk of units per round
   * trip; resolves with the units whose check could not be made.
   */
  async #check(): Promise<string[]> {
    if (this.#closed || this.#checking || this.#services.size === 0) return [];
    this.#checking = true;
    const failed: string[] = [];
    try {
      const units = [...this.#services];
      for (let i = 0; i < units.length && !this.#closed; i += CHECK_CHUNK_UNITS) {
        failed.push(...(await this.#checkUnits(units.slice(i, i + CHECK_CHUNK_UNITS))));
      }
      return failed;
    } finally {
      this.#checking = false;
    }
  }

  async #checkUnits(units: string[]): Promise<string[]> {
    const reads = await Promise.all(
      units.map((unit) =>
        this.#epochAndVersion(this.#keys(unit)).catch((err: unknown) => {
          this.#o.logger.debug({ err: (err as Error).message, service: unit }, 'session directory check failed');
          return undefined;
        }),
      ),
    );
    const failed = units.filter((_, i) => reads[i] === undefined);
    const watchedChannels = units.filter((unit, i) => reads[i] !== undefined && this.#watched.has(unit)).map((unit) => this.#keys(unit).channel);
    try {
      await this.#redis.subscriberCaughtUpAll(watchedChannels);
    } catch (err) {
      this.#o.logger.debug({ err: (err as Error).message }, 'session directory check failed');
      return units;
    }
    if (this.#closed) return failed;
    units.forEach((unit, i) => {
      const read = reads[i];
      if (read === undefined) return;
      this.#epochSeen(unit, read.epoch);
      const w = this.#watched.get(unit);
      if (w === undefined || w.loading || w.running !== undefined || w.epoch !== read.epoch) return;
      // Updates up to `read.version` were published before the read and have all arrived by now: behind means lost.
      if (w.version < read.version) {
        this.#o.logger.info(
          { service: unit, version: w.version, redis: read.version },
          'session directory replica is behind Redis; loading it again',
        );
        this.#requestLoad(w);
      }
    });
    return failed;
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
    for (const { index } of this.#watched.values()) for (const id of departed) index.removeGateway(id);
    for (const index of this.#bound.values()) for (const id of departed) index.removeGateway(id);
    if (this.#fullReplica || this.#closed) return;
    // Hosts joined or left: the ring moved. Lookups of a shard gained go to Redis until its load is done.
    for (const service of this.#wanted.keys()) {
      for (const unit of this.#own(service, view)) {
        this.#watchUnit(unit).catch((err: unknown) =>
          this.#o.logger.debug({ err: (err as Error).message, unit }, 'first load of a session directory shard failed; retrying'),
        );
      }
    }
  }

  /** Removes from Redis every entry of gateways that died without cleaning up. */
  async #reap(gatewayIds: string[]): Promise<void> {
    const c = this.#redis.command;
    for (const gateway of gatewayIds) {
      // Back already (it had only stalled, and registered again): its sessions are live.
      if (this.#registry.view().has(gateway)) continue;
      for (const { index } of this.#watched.values()) index.removeGateway(gateway);
      for (const index of this.#bound.values()) index.removeGateway(gateway);
      try {
        // Per service, one MULTI in that service's slot (its version bumped, the drop published); then the list of services goes.
        const services = await c.smembers(this.#gatewayServicesKey(gateway));
        let removed = 0;
        for (const service of services) {
          if (this.#registry.view().has(gateway)) break;
          const keys = this.#keys(service);
          const ids = await c.smembers(keys.gateway(gateway));
          removed += ids.length;
          const values = ids.length > 0 ? await c.hmget(keys.sessions, ...ids) : [];
          const members: string[] = [];
          values.forEach((value, i) => {
            if (value !== null) members.push(byBusinessMember(value.slice(value.indexOf('\n') + 1), ids[i]!, gateway));
          });
          const records = await this.#presence.readRecords(service, ids);
          // Asked of Redis, not of this node's view (which learns it a heartbeat later): a gateway that
          // registered again may have written these sessions again already; they are live.
          if (await this.#registeredAgain(gateway)) break;
          const multi = c.multi();
          if (ids.length > 0) multi.hdel(keys.sessions, ...ids);
          if (members.length > 0) multi.zrem(keys.byBusiness, ...members);
          const droppedAt = (ids.length > 0 ? 1 : 0) + (members.length > 0 ? 1 : 0);
          multi.del(keys.gateway(gateway));
          this.#publishIn(multi, keys, [[OP_DROP_GATEWAY, gateway]]);
          // Their leave events, published only by the node whose MULTI removed them (the DEL above found the set).
          const presence = this.#presence.reaped(multi, service, keys.byBusiness, gateway, ids, values, records, droppedAt + 2);
          this.#presence.written(presence, await multi.exec(), droppedAt);
        }
        await this.#presence.publish();
        if (await this.#registeredAgain(gateway)) continue;
        await c.del(this.#gatewayServicesKey(gateway));
        await this.#rooms.reap(gateway);
        if (removed > 0) {
          this.#o.logger.info({ gateway, sessions: removed }, 'removed the sessions of a gateway that left');
        }
      } catch (err) {
        this.#o.logger.warn({ err: (err as Error).message, gateway }, 'could not remove the sessions of a dead gateway');
      }
    }
  }

  /** Is `gateway`'s registry record back in Redis (it had stalled and registered again)? */
  async #registeredAgain(gateway: string): Promise<boolean> {
    if (this.#registry.view().has(gateway)) return true;
    return (await this.#redis.command.exists(registryKeys(this.#o.prefix).node(gateway))) === 1;
  }

  /**
   * After Redis came back (possibly empty) or this node's record lapsed:
   * write what this node holds, then compare with Redis; a replica that
   * missed updates loads again, and a lost directory is healed (#epochSeen).
   */
  async #restore(): Promise<void> {
    if (this.#closed) return;
    this.#rewriteHeld();
    await Promise.all([this.#flush(), this.#rooms.rewriteHeld()]);
    for (const listener of this.#restoredListeners) listener();
    // Could not tell what was missed: load those services (retried with backoff until Redis answers).
    for (const service of await this.#check()) {
      const watched = this.#watched.get(service);
      if (watched !== undefined) this.#requestLoad(watched);
    }
  }
}
