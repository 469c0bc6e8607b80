/**
 * Presence in the Redis session directory (redis-session-directory.ts calls
 * in here from its writes, its removal of a dead gateway and its lookups).
 *
 * - Records. Beside a unit's sessions hash, `{<prefix>:<unit>}:records`
 *   maps each sessionId to `openedAt\nmetadata JSON`, written and removed in
 *   the same MULTI as the session's entry, by the gateway that holds it. The
 *   gateway writes it again with the session when Redis lost the directory
 *   (its held sessions carry their records), so it heals like the entry.
 * - Events. A gateway's batch of writes to a unit yields join and leave
 *   events; ZLEXCOUNTs queued after the writes in the same MULTI give each
 *   touched businessId's count, which tells online and offline. Once the
 *   MULTIs of a tick are done, one message per service is published on the
 *   service's channel (`presenceChannel`). Sessions written again after a
 *   loss neither join nor leave. The node that removes a dead gateway's
 *   sessions publishes their leave events, only when its MULTI is the one
 *   that removed them (the DEL of the gateway's set found it).
 * - Lookups. `describe` is one script in the unit's slot: the businessId's
 *   range of the by-business sorted set, and each session's record.
 */
import type { Logger } from '../logger.js';
import type { RedisConnection } from '../redis/redis-connection.js';
import { presenceChannel, recordsKey, serviceOfUnit } from '../redis/keys.js';
import { runScript, script } from '../redis/redis-script.js';
import {
  PresenceBatch,
  PresenceListeners,
  decodeRecord,
  described,
  encodeRecord,
  packPresence,
  unpackPresence,
  type WirePresence,
} from './presence-events.js';
import type { DescribedSession, PresenceListener, SessionRecord } from './session-directory.js';

/**
 * A businessId's sessions with their records, in one step.
 * KEYS[1] the unit's by-business sorted set, KEYS[2] its records;
 * ARGV[1], ARGV[2] the range, ARGV[3] the businessId's length.
 * Returns [member, record or false, member, record or false...].
 */
const DESCRIBE = script(`local members = redis.call('ZRANGEBYLEX', KEYS[1], ARGV[1], ARGV[2])
local out = {}
local skip = tonumber(ARGV[3]) + 2
for _, member in ipairs(members) do
  local rest = string.sub(member, skip)
  local cut = string.find(rest, '\\n', 1, true)
  out[#out + 1] = member
  out[#out + 1] = cut and redis.call('HGET', KEYS[2], string.sub(rest, 1, cut - 1)) or false
end
return out`);

/** What one unit's MULTI carries for presence: the records it writes, its batch, and where the counts start in its results. */
export interface PresenceWrite {
  readonly service: string;
  readonly batch: PresenceBatch | undefined;
  readonly countsAt: number;
  /** Sessions whose records the MULTI writes: forgotten here once it is done, kept for the next try if it failed. */
  readonly records: readonly (readonly [string, SessionRecord])[];
}

type Multi = ReturnType<RedisConnection['command']['multi']>;

export class RedisPresence {
  readonly #redis: RedisConnection;
  readonly #prefix: string;
  readonly #nodeId: string;
  readonly #logger: Logger;
  /** Records of sessions waiting to be written (a new one, or one written again), until a MULTI wrote them. */
  readonly #records = new Map<string, SessionRecord>();
  /** Per unit, the sessions whose records the MULTI being built writes. */
  readonly #writing = new Map<string, [string, SessionRecord][]>();
  /** Per unit, the presence of the writes waiting for this tick's flush. */
  #batches = new Map<string, { service: string; batch: PresenceBatch }>();
  /** Events of the MULTIs done, per service, waiting to be published. */
  #settled = new Map<string, WirePresence[]>();
  readonly #listeners: PresenceListeners;
  readonly #handlers = new Map<string, (message: Buffer) => void>();
  /** Per service, its subscription (a second listener waits for the one the first started). */
  readonly #subscribed = new Map<string, Promise<void>>();

  constructor(redis: RedisConnection, prefix: string, nodeId: string, logger: Logger) {
    this.#redis = redis;
    this.#prefix = prefix;
    this.#nodeId = nodeId;
    this.#logger = logger;
    this.#listeners = new PresenceListeners((err, service) => logger.warn({ err, service }, 'a presence listener threw'));
  }

  recordsKey(unit: string): string {
    return recordsKey(this.#prefix, unit);
  }

  #batchOf(service: string, unit: string): PresenceBatch {
    let entry = this.#batches.get(unit);
    if (entry === undefined) this.#batches.set(unit, (entry = { service, batch: new PresenceBatch() }));
    return entry.batch;
  }

  /** A gateway's new session: its record is written with it, and it joins. */
  added(service: string, unit: string, businessId: string, sessionId: string, record: SessionRecord | undefined): void {
    if (record !== undefined) this.#records.set(sessionId, record);
    this.#batchOf(service, unit).join(businessId, sessionId, this.#nodeId, record);
  }

  /** A session closed before its write left: it neither joined nor leaves. */
  unsent(unit: string, sessionId: string): void {
    this.#records.delete(sessionId);
    this.#batches.get(unit)?.batch.forget(sessionId);
  }

  removed(service: string, unit: string, businessId: string, sessionId: string, record: SessionRecord | undefined): void {
    this.#records.delete(sessionId);
    this.#batchOf(service, unit).leave(businessId, sessionId, this.#nodeId, record, Date.now());
  }

  /** A held session written again after a loss: its record goes with it, no event. */
  rewritten(sessionId: string, record: SessionRecord | undefined): void {
    if (record !== undefined) this.#records.set(sessionId, record);
  }

  /** Queues the records of `sessionIds` that have one; returns the number of commands queued. */
  writeRecords(multi: Multi, unit: string, sessionIds: Iterable<string>, ttlMs: number): number {
    const fields: string[] = [];
    const ids: [string, SessionRecord][] = [];
    for (const id of sessionIds) {
      const record = this.#records.get(id);
      if (record === undefined) continue;
      ids.push([id, record]);
      fields.push(id, encodeRecord(record));
    }
    if (fields.length === 0) return 0;
    this.#writing.set(unit, ids);
    const key = this.recordsKey(unit);
    multi.hset(key, ...fields).pexpire(key, ttlMs);
    return 2;
  }

  dropRecords(multi: Multi, unit: string, sessionIds: string[]): number {
    if (sessionIds.length === 0) return 0;
    multi.hdel(this.recordsKey(unit), ...sessionIds);
    return 1;
  }

  /** Queues the counts of the businessIds the unit's batch touched, as the MULTI's last commands (from index `countsAt`). */
  countIn(multi: Multi, unit: string, byBusiness: string, countsAt: number): PresenceWrite | undefined {
    const records = this.#writing.get(unit) ?? [];
    this.#writing.delete(unit);
    const entry = this.#batches.get(unit);
    this.#batches.delete(unit);
    const batch = entry === undefined || entry.batch.empty ? undefined : entry.batch;
    if (batch === undefined && records.length === 0) return undefined;
    for (const businessId of batch?.businessIds() ?? []) multi.zlexcount(byBusiness, `[${businessId}\n`, `(${businessId}\u000b`);
    return { service: entry?.service ?? '', batch, countsAt, records };
  }

  /**
   * A MULTI is done: its events wait for `publish`. With `removedAt`, they
   * count only when the command there removed something (the dead
   * gateway's set was still there: no other node removed its sessions first).
   */
  written(write: PresenceWrite | undefined, results: [Error | null, unknown][] | null | undefined, removedAt?: number): void {
    if (write === undefined || results === null || results === undefined) return;
    // Unless given again since (written again after a loss): then the next MULTI writes it.
    for (const [id, record] of write.records) if (this.#records.get(id) === record) this.#records.delete(id);
    if (write.batch === undefined || (removedAt !== undefined && results[removedAt]?.[1] !== 1)) return;
    const counts = results.slice(write.countsAt).map(([err, value]) => (err === null ? value : undefined));
    const events = write.batch.settle(counts);
    if (events.length === 0) return;
    let list = this.#settled.get(write.service);
    if (list === undefined) this.#settled.set(write.service, (list = []));
    for (const e of events) list.push(e);
  }

  /** Publishes what the MULTIs done so far settled: one message per service. Never rejects. */
  async publish(): Promise<void> {
    if (this.#settled.size === 0) return;
    const settled = this.#settled;
    this.#settled = new Map();
    await Promise.all(
      [...settled].map(([service, events]) =>
        this.#redis
          .publish(presenceChannel(this.#prefix, service), packPresence(events))
          .catch((err: unknown) =>
            this.#logger.debug({ err: (err as Error).message, service }, 'could not publish presence events (they are at most once)'),
          ),
      ),
    );
  }

  /** The records of a dead gateway's sessions, read before they are removed (for their leave events). */
  async readRecords(unit: string, sessionIds: string[]): Promise<(string | null)[]> {
    if (sessionIds.length === 0) return [];
    return this.#redis.command.hmget(this.recordsKey(unit), ...sessionIds);
  }

  /**
   * Queues the removal of a dead gateway's records and the counts after it;
   * `values` are the sessions hash's values of `sessionIds` (gateway\nbusinessId).
   */
  reaped(
    multi: Multi,
    unit: string,
    byBusiness: string,
    gateway: string,
    sessionIds: string[],
    values: (string | null)[],
    records: (string | null)[],
    nextIndex: number,
  ): PresenceWrite | undefined {
    const at = Date.now();
    const batch = new PresenceBatch();
    const service = serviceOfUnit(unit);
    sessionIds.forEach((id, i) => {
      const value = values[i];
      if (value === null || value === undefined) return;
      batch.leave(value.slice(value.indexOf('\n') + 1), id, gateway, decodeRecord(records[i]), at);
    });
    const dropped = this.dropRecords(multi, unit, sessionIds);
    if (batch.empty) return undefined;
    for (const businessId of batch.businessIds()) multi.zlexcount(byBusiness, `[${businessId}\n`, `(${businessId}\u000b`);
    return { service, batch, countsAt: nextIndex + dropped, records: [] };
  }

  /** A businessId's sessions with their records: one script in the unit's slot. */
  async describe(unit: string, byBusiness: string, businessId: string): Promise<DescribedSession[]> {
    const c = this.#redis.command;
    const keys = [byBusiness, this.recordsKey(unit)];
    const args = [`[${businessId}\n`, `(${businessId}\u000b`, String(Buffer.byteLength(businessId))];
    const flat = (await runScript(
      () => c.evalsha(DESCRIBE.sha, 2, ...keys, ...args),
      () => c.eval(DESCRIBE.lua, 2, ...keys, ...args),
    )) as (string | null)[];
    const out: DescribedSession[] = [];
    for (let i = 0; i + 1 < flat.length; i += 2) {
      const member = flat[i]!;
      const last = member.lastIndexOf('\n');
      const middle = member.lastIndexOf('\n', last - 1);
      // A businessId with a newline in it could share a range with another: exact matches only (as sessionsOf reads).
      if (middle < 0 || member.slice(0, middle) !== businessId) continue;
      out.push(described(member.slice(middle + 1, last), member.slice(last + 1), decodeRecord(flat[i + 1])));
    }
    return out;
  }

  /** Subscribes to the service's events on its first listener; the function returned unsubscribes (the channel is left with the last). */
  async listen(service: string, listener: PresenceListener): Promise<() => void> {
    const channel = presenceChannel(this.#prefix, service);
    if (this.#listeners.add(service, listener)) {
      const handler = (message: Buffer): void => this.#listeners.emit(service, unpackPresence(message));
      this.#handlers.set(service, handler);
      this.#subscribed.set(service, this.#redis.subscribe(channel, handler));
    }
    try {
      await this.#subscribed.get(service);
    } catch (err) {
      if (this.#listeners.remove(service, listener)) {
        this.#handlers.delete(service);
        this.#subscribed.delete(service);
      }
      throw err;
    }
    let done = false;
    return () => {
      if (done) return;
      done = true;
      if (!this.#listeners.remove(service, listener)) return;
      const handler = this.#handlers.get(service);
      this.#handlers.delete(service);
      this.#subscribed.delete(service);
      if (handler !== undefined) {
        void this.#redis
          .unsubscribe(channel, handler)
          .catch((err: unknown) => this.#logger.debug({ err: (err as Error).message, service }, 'could not unsubscribe from presence events'));
      }
    };
  }
}
