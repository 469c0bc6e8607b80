/**
 * History in Redis: per (service, businessId) a stream of the last pushes
 * and a small hash with the stream's epoch and last offset.
 *
 * Keys (redis/keys.ts `historyKeys`: one hash tag, so both are in one slot
 * of a Redis Cluster, and a script touches that slot only):
 *   {<prefix>:history:<service>:<businessId>}:m  hash  e = epoch, o = last offset,
 *                                                k:<key> = offset of the push a call made (dedupe)
 *   {<prefix>:history:<service>:<businessId>}:k  list  those dedupe keys, oldest first (at most maxEntries)
 *   {<prefix>:history:<service>:<businessId>}:s  stream, entry id `<offset>-0`,
 *                                                fields d = payload, t = text, a = ms
 *
 * Each append is one script: the offset is taken and the entry written in
 * one step, so offsets and stream order agree whoever pushes. The stream
 * is trimmed to maxEntries (MAXLEN) and expires ttlMs after the last push;
 * entries older than ttlMs are not replayed. The hash lives longer (a day),
 * so a client back after the window hears "window-passed", and only a
 * Redis that lost the keys makes a new epoch.
 */
import { historyKeys } from '../redis/keys.js';
import type { RedisCommands, RedisConnection } from '../redis/redis-connection.js';
import { runScript, script } from '../redis/redis-script.js';
import type { HistoryLimits, HistoryRead, HistoryStore, Position } from './history-store.js';
import { newEpoch, readFrom } from './memory-history.js';

const META_TTL_MS = 24 * 60 * 60 * 1000;

const APPEND = `
local epoch = redis.call('HGET', KEYS[1], 'e')
if not epoch then
  epoch = ARGV[6]
  redis.call('DEL', KEYS[2], KEYS[3])
  redis.call('HSET', KEYS[1], 'e', epoch, 'o', 0)
end
if ARGV[8] ~= '' then
  local seen = redis.call('HGET', KEYS[1], 'k:' .. ARGV[8])
  if seen then return {epoch, tonumber(seen)} end
end
local offset = redis.call('HINCRBY', KEYS[1], 'o', 1)
if ARGV[8] ~= '' then
  -- Kept while its entry could be: the dedupe field of an older push goes after maxEntries more.
  redis.call('HSET', KEYS[1], 'k:' .. ARGV[8], offset)
  redis.call('RPUSH', KEYS[3], ARGV[8])
  if redis.call('LLEN', KEYS[3]) > tonumber(ARGV[3]) then redis.call('HDEL', KEYS[1], 'k:' .. redis.call('LPOP', KEYS[3])) end
  redis.call('PEXPIRE', KEYS[3], ARGV[7])
end
redis.call('XADD', KEYS[2], 'MAXLEN', ARGV[3], offset .. '-0', 'd', ARGV[1], 't', ARGV[2], 'a', ARGV[5])
redis.call('PEXPIRE', KEYS[2], ARGV[4])
redis.call('PEXPIRE', KEYS[1], ARGV[7])
return {epoch, offset}
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

  async append(
    service: string,
    businessId: string,
    payload: Uint8Array,
    text: boolean,
    limits: HistoryLimits,
    dedupeKey?: string,
  ): Promise<Position> {
    const c = await this.#command();
    const keys = historyKeys(this.#prefix, service, businessId);
    const args = [
      keys.meta,
      keys.stream,
      keys.dedupe,
      Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength),
      text ? '1' : '0',
      limits.maxEntries,
      limits.ttlMs,
      Date.now(),
      newEpoch(),
      Math.max(limits.ttlMs, META_TTL_MS),
      dedupeKey ?? '',
    ];
    const [epoch, offset] = (await runScript(
      () => c.evalsha(APPEND_SCRIPT.sha, 3, ...args),
      () => c.eval(APPEND_SCRIPT.lua, 3, ...args),
    )) as [string, number];
    return { epoch, offset: Number(offset) };
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
