/**
 * Rooms in the directory: which gateways hold members of a room. The
 * members themselves live on the gateway that holds their sockets
 * (gateway/front-door/rooms.ts); the directory has one entry per (room,
 * gateway) while that gateway holds at least one member, written when the
 * first joins and removed when the last leaves. A push to a room reads the
 * entry once and sends one frame to each gateway it names.
 *
 * Memory mode: one map for the process. Redis mode: per directory unit (the
 * service's shard of the room name, so rooms spread over the slots like
 * businessIds), a sorted set of `room\ngatewayNodeId` (one range read gives
 * a room's gateways), per gateway a set of its rooms in that unit, and per
 * gateway the list of units it wrote rooms in, so the entries of a gateway
 * that dies can be removed. Writes are batched per tick, one MULTI per unit.
 * After Redis lost them (a restart, a flush) the gateway writes every room
 * it holds again (`rewriteHeld`), as it does its sessions.
 */
import type { Logger } from '../logger.js';
import type { RedisConnection } from '../redis/redis-connection.js';
import { directoryUnit, registryKeys, serviceKeys } from '../redis/keys.js';
import type { TurnReads } from '../redis/turn-reads.js';
import { shardOf } from '../util/hash-ring.js';
import type { HeldRooms } from './session-directory.js';

/** Rooms of every service of a process (memory mode): service and room -> gateways. */
export class MemoryRoomIndex {
  readonly #rooms = new Map<string, Set<string>>();

  /**
   * @example
   * const rooms = new MemoryRoomIndex();
   * rooms.add('IChatAppService', 'lobby', 'gateway-a');
   */
  add(service: string, room: string, gatewayNodeId: string): void {
    const key = `${service}\n${room}`;
    let gateways = this.#rooms.get(key);
    if (gateways === undefined) this.#rooms.set(key, (gateways = new Set()));
    gateways.add(gatewayNodeId);
  }

  /**
   * @example
   * const rooms = new MemoryRoomIndex();
   * rooms.remove('IChatAppService', 'lobby', 'gateway-a'); // its last member left
   */
  remove(service: string, room: string, gatewayNodeId: string): void {
    const key = `${service}\n${room}`;
    const gateways = this.#rooms.get(key);
    if (gateways === undefined) return;
    gateways.delete(gatewayNodeId);
    if (gateways.size === 0) this.#rooms.delete(key);
  }

  /**
   * @example
   * const rooms = new MemoryRoomIndex();
   * rooms.add('IChatAppService', 'lobby', 'gateway-a');
   * console.log(rooms.gatewaysOf('IChatAppService', 'lobby')); // ['gateway-a']
   */
  gatewaysOf(service: string, room: string): string[] {
    const gateways = this.#rooms.get(`${service}\n${room}`);
    return gateways === undefined ? [] : [...gateways];
  }

  /**
   * A gateway left: its rooms go with it.
   *
   * @example
   * const rooms = new MemoryRoomIndex();
   * rooms.removeGateway('gateway-a');
   */
  removeGateway(gatewayNodeId: string): void {
    for (const [key, gateways] of this.#rooms) {
      gateways.delete(gatewayNodeId);
      if (gateways.size === 0) this.#rooms.delete(key);
    }
  }
}

export interface RedisRoomIndexOptions {
  prefix: string;
  nodeId: string;
  /** One unit per service (the directory's `fullDirectoryReplica`). */
  fullReplica: boolean;
  /** Key TTL, refreshed while the node lives (the directory's). */
  keyTtlMs: number;
  logger: Logger;
  /** Where lookups go: with the other reads of the turn (the directory's). */
  reads: TurnReads;
}

interface Waiter {
  resolve: () => void;
  reject: (error: Error) => void;
}

interface PendingUnit {
  adds: Set<string>;
  dels: Set<string>;
  waiters: Waiter[];
}

/** A member of a unit's rooms sorted set. */
function roomMember(room: string, gatewayNodeId: string): string {
  return `${room}\n${gatewayNodeId}`;
}

/** The room entries of one Redis session directory (the directory owns it and its connection). */
export class RedisRoomIndex {
  readonly #redis: RedisConnection;
  readonly #o: RedisRoomIndexOptions;
  #held: HeldRooms = () => [];
  /** Rooms this node holds members of (entries it has written or is writing). */
  #count = 0;
  /** Units this node wrote rooms in (their TTLs are its concern). */
  readonly #units = new Set<string>();
  #pending = new Map<string, PendingUnit>();
  #scheduled = false;

  constructor(redis: RedisConnection, options: RedisRoomIndexOptions) {
    this.#redis = redis;
    this.#o = options;
  }

  /** The directory unit a room's entries are in. */
  unitOf(service: string, room: string): string {
    return directoryUnit(service, this.#o.fullReplica ? undefined : shardOf(room));
  }

  setHeld(held: HeldRooms): void {
    this.#held = held;
  }

  add(service: string, room: string): Promise<void> {
    const unit = this.unitOf(service, room);
    this.#count += 1;
    this.#units.add(unit);
    const p = this.#pendingFor(unit);
    p.dels.delete(room);
    p.adds.add(room);
    this.#schedule();
    return new Promise((resolve, reject) => p.waiters.push({ resolve, reject }));
  }

  remove(service: string, room: string): void {
    this.#count = Math.max(0, this.#count - 1);
    const p = this.#pendingFor(this.unitOf(service, room));
    // Removed even when its add is still pending: that add may have cancelled the removal of an earlier entry.
    p.adds.delete(room);
    p.dels.add(room);
    this.#schedule();
  }

  /** The gateways Redis lists for a room: one range read. */
  async gatewaysOf(service: string, room: string): Promise<string[]> {
    const key = serviceKeys(this.#o.prefix, this.unitOf(service, room)).rooms;
    const flat = await this.#o.reads.zrangebylex(key, `[${room}\n`, `(${room}\u000b`);
    const out: string[] = [];
    for (const member of flat) {
      const cut = member.lastIndexOf('\n');
      // A room name that is a prefix of another shares the range: exact matches only.
      if (cut >= 0 && member.slice(0, cut) === room) out.push(member.slice(cut + 1));
    }
    return out;
  }

  /** Queues every room this node holds (of `only`, when given) to be written again: Redis lost them. */
  rewriteHeld(only?: string): Promise<void> {
    let any = false;
    for (const [service, room] of this.#held()) {
      const unit = this.unitOf(service, room);
      if (only !== undefined && unit !== only) continue;
      this.#units.add(unit);
      this.#pendingFor(unit).adds.add(room);
      any = true;
    }
    return any ? this.flush() : Promise.resolve();
  }

  /** Keys whose TTL this node keeps from running out. */
  ttlKeys(): string[] {
    if (this.#count === 0) return [];
    const me = this.#o.nodeId;
    const out = [registryKeys(this.#o.prefix).gatewayRoomUnits(me)];
    for (const unit of this.#units) {
      const keys = serviceKeys(this.#o.prefix, unit);
      out.push(keys.rooms, keys.gatewayRooms(me));
    }
    return out;
  }

  /** Removes the room entries of a gateway that died without taking them back. */
  async reap(gatewayNodeId: string): Promise<void> {
    const c = this.#redis.command;
    const unitsKey = registryKeys(this.#o.prefix).gatewayRoomUnits(gatewayNodeId);
    const units = await c.smembers(unitsKey);
    for (const unit of units) {
      const keys = serviceKeys(this.#o.prefix, unit);
      const rooms = await c.smembers(keys.gatewayRooms(gatewayNodeId));
      const multi = c.multi();
      if (rooms.length > 0) multi.zrem(keys.rooms, ...rooms.map((room) => roomMember(room, gatewayNodeId)));
      multi.del(keys.gatewayRooms(gatewayNodeId));
      await multi.exec();
    }
    if (units.length > 0) await c.del(unitsKey);
  }

  /** Takes back every room this node holds (it stops). */
  async close(): Promise<void> {
    for (const [service, room] of this.#held()) this.remove(service, room);
    await this.flush();
  }

  #pendingFor(unit: string): PendingUnit {
    let p = this.#pending.get(unit);
    if (p === undefined) this.#pending.set(unit, (p = { adds: new Set(), dels: new Set(), waiters: [] }));
    return p;
  }

  #schedule(): void {
    if (this.#scheduled) return;
    this.#scheduled = true;
    setImmediate(() => void this.flush());
  }

  /** Writes what this tick queued: one MULTI per unit, and the list of units in the registry's slot. */
  async flush(): Promise<void> {
    this.#scheduled = false;
    const pending = this.#pending;
    if (pending.size === 0) return;
    this.#pending = new Map();
    const me = this.#o.nodeId;
    const ttl = this.#o.keyTtlMs;
    const c = this.#redis.command;
    const added: string[] = [];
    const writes: { unit: string; p: PendingUnit; done: Promise<unknown> }[] = [];
    let unitsWritten: Promise<unknown> = Promise.resolve();
    // Every MULTI of this flush goes out in one socket write.
    this.#redis.together(() => {
      for (const [unit, p] of pending) {
        const keys = serviceKeys(this.#o.prefix, unit);
        if (p.adds.size === 0 && p.dels.size === 0) {
          writes.push({ unit, p, done: Promise.resolve() });
          continue;
        }
        const multi = c.multi();
        if (p.adds.size > 0) {
          const members: (string | number)[] = [];
          for (const room of p.adds) members.push(0, roomMember(room, me));
          multi
            .zadd(keys.rooms, ...members)
            .pexpire(keys.rooms, ttl)
            .sadd(keys.gatewayRooms(me), ...p.adds)
            .pexpire(keys.gatewayRooms(me), ttl);
          added.push(unit);
        }
        if (p.dels.size > 0) {
          multi.zrem(keys.rooms, ...[...p.dels].map((room) => roomMember(room, me))).srem(keys.gatewayRooms(me), ...p.dels);
        }
        writes.push({ unit, p, done: multi.exec().then(refusedBy) });
      }
      if (added.length > 0) {
        const key = registryKeys(this.#o.prefix).gatewayRoomUnits(me);
        unitsWritten = c
          .multi()
          .sadd(key, ...added)
          .pexpire(key, ttl)
          .exec()
          .then(refusedBy);
      }
    });
    const [unitsResult, ...results] = await Promise.allSettled([unitsWritten, ...writes.map((w) => w.done)]);
    writes.forEach(({ unit, p }, i) => {
      const r = results[i]!;
      const failed = r.status === 'rejected' ? r : unitsResult.status === 'rejected' && added.includes(unit) ? unitsResult : undefined;
      if (failed === undefined) {
        for (const w of p.waiters) w.resolve();
        return;
      }
      const error = failed.reason instanceof Error ? failed.reason : new Error('room directory write failed');
      this.#o.logger.debug({ err: error.message, unit }, 'room directory write failed');
      // Joins waiting on it are refused (the gateway takes the member back); removals are tried again.
      for (const w of p.waiters) w.reject(error);
      if (p.dels.size > 0) {
        const now = this.#pendingFor(unit);
        // Not scheduled now (Redis is away): with the next write, or the rewrite when it is back.
        for (const room of p.dels) if (!now.adds.has(room)) now.dels.add(room);
      }
    });
  }
}

/** A MULTI's results, or the first command error in them as a rejection. */
function refusedBy(results: [Error | null, unknown][] | null): unknown {
  if (results === null) throw new Error('redis discarded the transaction');
  const refused = results.find(([err]) => err !== null)?.[0];
  if (refused) throw refused;
  return results;
}
