/**
 * History in Redis: per (service, businessId) a stream of the last pushes
 * and a small hash with the stream's epoch and last offset.
 *
 * Keys (redis/keys.ts `historyKeys`: one hash tag, so both are in one slot
 * of a Redis Cluster, and a script touches that slot only):
 *   {<prefix>:history:<service>:<businessId>}:m  hash  e = epoch, o = last offset,
 *                                                x = when its TTL was last set (s),
 *                                                y = when the stream's TTL was last set (s),
 *                                                k:<key> = offset of the push a call made (dedupe)
 *   {<prefix>:history:<service>:<businessId>}:s  stream, entry id `<offset>-0`,
 *                                                fields d = payload, t = text, a = ms
 *
 * Appends are scripts: the offset is taken and the entry written in one
 * step, so offsets and stream order agree whoever pushes. The appends of
 * one event-loop turn go in one script call (on a Redis Cluster, one per
 * stream): under load the host pays one round trip and one socket write
 * for many pushes, not one each. The stream
 * is trimmed to maxEntries (MAXLEN) and expires at least ttlMs after the last push;
 * entries older than ttlMs are not replayed. The hash lives longer (a day),
 * so a client back after the window hears "window-passed", and only a
 * Redis that lost the keys makes a new epoch.
 */
import { historyKeys, type HistoryKeys } from '../redis/keys.js';
import type { RedisCommands, RedisConnection } from '../redis/redis-connection.js';
import { runScript, script } from '../redis/redis-script.js';
import type { HistoryLimits, HistoryRead, HistoryStore, Position } from './history-store.js';
import { newEpoch, readFrom } from './memory-history.js';

const META_TTL_MS = 24 * 60 * 60 * 1000;
/** Most pushes in one script call: a script holds Redis while it runs (about 10 µs a push). */
const MAX_BATCH = 200;

/** The pushes of one script call, and the limits they share. */
interface Batch {
  readonly limits: HistoryLimits;
  readonly appends: PendingAppend[];
}

/** A push waiting for this turn's script call. */
interface PendingAppend {
  readonly keys: HistoryKeys;
  readonly payload: Buffer;
  /** The text flag ('1' or '0') followed by the dedupe key (none: nothing follows). */
  readonly flags: string;
  readonly resolve: (position: Position) => void;
  readonly reject: (error: unknown) => void;
}

/**
 * Appends a batch, all with the same limits. KEYS are (meta, stream) per
 * push; ARGV is the new-epoch candidate, maxEntries, ttlMs, the meta TTL
 * (ms), the time (ms), then (payload, flags) per push. Returns the epoch
 * and offset of each push, in order.
 *
 * Three commands a push, where there were five to seven (under load the
 * script's Redis time is most of a push's Redis CPU):
 * - one HMGET reads the epoch, the TTL marks, the last offset and the
 *   call's dedupe field; one HSET writes the new offset and dedupe field;
 *   one XADD keeps the entry;
 * - the meta hash gets its day-long TTL again once an hour (`x`, in
 *   seconds) and the stream its TTL once a second (`y`), set to ttlMs plus
 *   that second, so it still outlives the last push by ttlMs (reads skip
 *   entries older than ttlMs by their own time);
 * - the dedupe fields of pushes no longer kept are dropped together, once
 *   every maxEntries pushes, not one a push through a list: a dedupe key
 *   holds for at least maxEntries pushes, at most twice that.
 */
const APPEND = `
local newEpoch, maxEntries, ttlMs, metaTtl, at = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4], ARGV[5]
local nowS = math.floor(tonumber(at) / 1000)
local out = {}
for i = 0, #KEYS / 2 - 1 do
  local meta, stream = KEYS[i * 2 + 1], KEYS[i * 2 + 2]
  local payload, flags = ARGV[6 + i * 2], ARGV[7 + i * 2]
  local dedupeKey = string.sub(flags, 2)
  local field = 'k:' .. dedupeKey
  -- One read for the epoch, the TTL marks, the last offset and this call's earlier offset (if any).
  local m = redis.call('HMGET', meta, 'e', 'x', 'o', field, 'y')
  local epoch, last, seen = m[1], tonumber(m[3]) or 0, dedupeKey ~= '' and m[4]
  local fresh = not epoch
  if fresh then
    epoch, last, seen = newEpoch, 0, false
    redis.call('DEL', stream)
  end
  if not m[2] or nowS - tonumber(m[2]) >= 3600 then
    redis.call('HSET', meta, 'x', nowS)
    redis.call('PEXPIRE', meta, metaTtl)
  end
  if seen then
    out[#out + 1] = epoch
    out[#out + 1] = tonumber(seen)
  else
    local offset = last + 1
    -- The offset, this call's dedupe field, the stream's TTL mark and (for a new stream) the epoch in one write.
    local set = {'o', offset}
    if fresh then
      set[#set + 1] = 'e'
      set[#set + 1] = epoch
    end
    if dedupeKey ~= '' then
      set[#set + 1] = field
      set[#set + 1] = offset
    end
    local ttlDue = fresh or tonumber(m[5]) ~= nowS
    if ttlDue then
      set[#set + 1] = 'y'
      set[#set + 1] = nowS
    end
    redis.call('HSET', meta, unpack(set))
    redis.call('XADD', stream, 'MAXLEN', maxEntries, offset .. '-0', 'd', payload, 't', string.sub(flags, 1, 1), 'a', at)
    if ttlDue then redis.call('PEXPIRE', stream, ttlMs + 1000) end
    if offset % maxEntries == 0 then
      -- Dedupe fields of pushes the stream no longer keeps.
      local all, gone = redis.call('HGETALL', meta), {}
      for j = 1, #all, 2 do
        if string.sub(all[j], 1, 2) == 'k:' and tonumber(all[j + 1]) <= offset - maxEntries then
          gone[#gone + 1] = all[j]
          if #gone == 1000 then
            redis.call('HDEL', meta, unpack(gone))
            gone = {}
          end
        end
      end
      if #gone > 0 then redis.call('HDEL', meta, unpack(gone)) end
    end
    out[#out + 1] = epoch
    out[#out + 1] = offset
  end
end
return out
`;

const READ = `
local meta = redis.call('HMGET', KEYS[1], 'e', 'o')
local epoch, offset = meta[1], meta[2]
if not epoch then
  epoch = ARGV[3]
  offset = '0'
  redis.call('DEL', KEYS[2])
  redis.call('HSET', KEYS[1], 'e', epoch, 'o', 0)
  redis.call('PEXPIRE', KEYS[1], ARGV[4])
end
if ARGV[1] == '' or ARGV[2] ~= epoch then return {epoch, offset} end
return {epoch, offset, redis.call('XRANGE', KEYS[2], '(' .. ARGV[1] .. '-0', '+')}
`;

type Reply = [Buffer, Buffer | number, ([Buffer, Buffer[]][] | undefined)?];

const APPEND_SCRIPT = script(APPEND);
const READ_SCRIPT = script(READ);

interface BufferScripts {
  evalshaBuffer(sha: string, numKeys: number, ...args: string[]): Promise<unknown>;
  evalBuffer(lua: string, numKeys: number, ...args: string[]): Promise<unknown>;
}

export interface RedisHistoryOptions {
  prefix: string;
}

export class RedisHistory implements HistoryStore {
  readonly #redis: RedisConnection;
  readonly #prefix: string;
  #opening: Promise<RedisCommands> | undefined;
  /** Pushes queued this turn, by batch (by limits, and by stream on a Redis Cluster). */
  #batches = new Map<string, Batch>();
  #flushScheduled = false;
  #closed = false;

  constructor(redis: RedisConnection, options: RedisHistoryOptions) {
    this.#redis = redis;
    this.#prefix = options.prefix;
  }

  /** The command connection; opened on first use. */
  #command(): Promise<RedisCommands> {
    this.#opening ??= this.#redis.open().then(() => this.#redis.command);
    return this.#opening;
  }

  #keys(service: string, businessId: string): [string, string] {
    const keys = historyKeys(this.#prefix, service, businessId);
    return [keys.meta, keys.stream];
  }

  append(service: string, businessId: string, payload: Uint8Array, text: boolean, limits: HistoryLimits, dedupeKey?: string): Promise<Position> {
    return new Promise<Position>((resolve, reject) => {
      const keys = historyKeys(this.#prefix, service, businessId);
      // One batch per set of limits (a service's); on a Redis Cluster a script's keys share a
      // slot, so one per stream there.
      const group = `${limits.maxEntries}/${limits.ttlMs}${this.#redis.isCluster ? keys.tag : ''}`;
      let batch = this.#batches.get(group);
      if (batch === undefined) {
        batch = { limits, appends: [] };
        this.#batches.set(group, batch);
      }
      const flags = (text ? '1' : '0') + (dedupeKey ?? '');
      batch.appends.push({ keys, payload: Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength), flags, resolve, reject });
      if (batch.appends.length >= MAX_BATCH) {
        this.#batches.delete(group);
        void this.#flush(batch);
      } else if (!this.#flushScheduled) {
        this.#flushScheduled = true;
        setImmediate(this.#flushAll);
      }
    });
  }

  /** Every push queued this turn of the event loop goes out, one script call per batch. */
  readonly #flushAll = (): void => {
    this.#flushScheduled = false;
    // A new map each turn, never clear(): V8 keeps a cleared map's old table, entries and all,
    // linked to its new one, so once one such table is promoted every batch after it survives
    // the scavenges until a full GC (1.3 KB a push at 2,000 pushes/s; bench/ANALYSIS.md).
    const batches = this.#batches;
    this.#batches = new Map();
    for (const batch of batches.values()) void this.#flush(batch);
  };

  async #flush({ limits, appends }: Batch): Promise<void> {
    try {
      if (this.#closed) throw new Error('history closed');
      const c = await this.#command();
      const args: (string | Buffer)[] = [];
      for (const p of appends) args.push(p.keys.meta, p.keys.stream);
      args.push(newEpoch(), String(limits.maxEntries), String(limits.ttlMs), String(Math.max(limits.ttlMs, META_TTL_MS)), String(Date.now()));
      for (const p of appends) args.push(p.payload, p.flags);
      const numKeys = appends.length * 2;
      const reply = (await runScript(
        () => c.evalsha(APPEND_SCRIPT.sha, numKeys, ...args),
        () => c.eval(APPEND_SCRIPT.lua, numKeys, ...args),
      )) as (string | number)[];
      for (let i = 0; i < appends.length; i++) appends[i]!.resolve({ epoch: String(reply[i * 2]), offset: Number(reply[i * 2 + 1]) });
    } catch (e) {
      for (const p of appends) p.reject(e);
    }
  }

  async read(service: string, businessId: string, since: Position | undefined, ttlMs: number): Promise<HistoryRead> {
    const c = await this.#command();
    const [meta, stream] = this.#keys(service, businessId);
    const args = [
      meta,
      stream,
      since === undefined ? '' : String(since.offset),
      since?.epoch ?? '',
      newEpoch(),
      String(Math.max(ttlMs, META_TTL_MS)),
    ];
    // Buffer replies (the payloads): ioredis has evalshaBuffer / evalBuffer but does not type them, and
    // callBuffer drops its command name under auto-pipelining.
    const b = c as unknown as BufferScripts;
    const reply = (await runScript(
      () => b.evalshaBuffer(READ_SCRIPT.sha, 2, ...args),
      () => b.evalBuffer(READ_SCRIPT.lua, 2, ...args),
    )) as Reply;
    const top: Position = { epoch: reply[0].toString(), offset: Number(reply[1].toString()) };
    const entries = (reply[2] ?? []).map(([id, fields]) => entryOf(id, fields));
    return readFrom(entries, top, since, ttlMs);
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#flushAll();
    if (this.#opening === undefined) return;
    this.#opening = undefined;
    await this.#redis.close();
  }
}

function entryOf(id: Buffer, fields: Buffer[]): { offset: number; payload: Uint8Array; text: boolean; atMs: number } {
  let payload: Buffer = Buffer.alloc(0);
  let text = false;
  let atMs = 0;
  for (let i = 0; i + 1 < fields.length; i += 2) {
    const name = fields[i]!.toString();
    const value = fields[i + 1]!;
    if (name === 'd') payload = value;
    else if (name === 't') text = value.toString() === '1';
    else if (name === 'a') atMs = Number(value.toString());
  }
  const idText = id.toString();
  return { offset: Number(idText.slice(0, idText.indexOf('-'))), payload, text, atMs };
}
