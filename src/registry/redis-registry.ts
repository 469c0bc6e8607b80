/**
 * Redis registry with versioned records. What a node pays scales with what
 * changes, not with the size of the cluster's records:
 *
 * - A record is written only when it changes (or Redis lost it), with a new
 *   version; the write also bumps the registry's change counter and
 *   announces `up <id> <version> <changes>`. Each receiver that holds an
 *   older version reads that one record; the others read nothing.
 * - A heartbeat is one small script: it refreshes the node's TTL (PEXPIRE
 *   of the record, its expiry in the `alive` sorted set), reaps nodes whose
 *   expiry passed (announcing `down <id> <version> <changes>` for each) and
 *   returns the change counter. Only a counter that moved without this node
 *   hearing every change (a lost message, a Redis restart) makes it read the
 *   versions (one small hash) and the records newer than its own copies.
 * - Expiry is judged on Redis's clock (TIME in the scripts), so the nodes'
 *   clocks need not agree. A node killed without a word leaves every view
 *   within TTL + one heartbeat: the first heartbeat after its expiry reaps
 *   it and says so.
 * - A refresh that finds the record gone (a stall past the TTL, Redis lost
 *   it) writes it again and tells the node's parts (`onRecovered`).
 *
 * One heartbeat is in flight at a time, and a view entry is replaced only by
 * a newer version, whatever order reads complete in.
 */
import type { Logger } from '../logger.js';
import type { RedisConnection } from '../redis/redis-connection.js';
import { registryKeys, type RegistryKeys } from '../redis/keys.js';
import { runScript, script } from '../redis/redis-script.js';
import type { NodeRecord, Registry, RegistryListener, RegistryView } from './registry.js';

/** How long the shared keys (alive, versions, changes) outlive the last heartbeat when a whole cluster dies at once. */
const SHARED_KEYS_TTL_MS = 10 * 60 * 1000; // 10 min

/** Most nodes one heartbeat reaps; more go on the next. */
const REAP_BATCH = 100;

// The now and the change bump every script shares. The counter starts at Redis's clock (ms) when
// it is missing, so after Redis lost it the new one does not repeat the numbers a node saw before.
const PRELUDE = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local function bump()
  if redis.call('EXISTS', KEYS[4]) == 0 then redis.call('SET', KEYS[4], now) end
  return redis.call('INCR', KEYS[4])
end
`;

/** KEYS: node, alive, versions, changes. ARGV: id, version, json, ttlMs, keepMs, channel, publish command. */
const WRITE = script(`${PRELUDE}
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'v', ARGV[2], 'r', ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[4]), ARGV[1])
redis.call('HSET', KEYS[3], ARGV[1], ARGV[2])
local changes = bump()
for i = 2, 4 do redis.call('PEXPIRE', KEYS[i], ARGV[5]) end
redis.call(ARGV[7], ARGV[6], 'up ' .. ARGV[1] .. ' ' .. ARGV[2] .. ' ' .. changes)
return changes
`);

/**
 * KEYS: own node (any key of the slot when none), alive, versions, changes.
 * ARGV: own id or '', ttlMs, keepMs, reap '1' or '0', channel, publish command, node key prefix, most to reap.
 * Returns {refreshed 1/0, changes, reaped ids}.
 */
const HEARTBEAT = script(`${PRELUDE}
local id = ARGV[1]
local refreshed = 0
if id ~= '' and redis.call('HEXISTS', KEYS[3], id) == 1 and redis.call('PEXPIRE', KEYS[1], ARGV[2]) == 1 then
  redis.call('ZADD', KEYS[2], now + tonumber(ARGV[2]), id)
  for i = 2, 4 do redis.call('PEXPIRE', KEYS[i], ARGV[3]) end
  refreshed = 1
end
local reaped = {}
if ARGV[4] == '1' then
  for _, dead in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'LIMIT', 0, tonumber(ARGV[8]))) do
    if dead ~= id then
      local version = redis.call('HGET', KEYS[3], dead) or '0'
      redis.call('ZREM', KEYS[2], dead)
      redis.call('HDEL', KEYS[3], dead)
      -- Its record too (it may outlive the expiry by a millisecond): a stalled node's next refresh then fails and it registers again.
      redis.call('DEL', ARGV[7] .. dead)
      redis.call(ARGV[6], ARGV[5], 'down ' .. dead .. ' ' .. version .. ' ' .. bump())
      reaped[#reaped + 1] = dead
    end
  end
end
return {refreshed, tonumber(redis.call('GET', KEYS[4]) or '0'), reaped}
`);

/** KEYS: node, alive, versions, changes. ARGV: id, version, channel, publish command. */
const DEREGISTER = script(`${PRELUDE}
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('HDEL', KEYS[3], ARGV[1])
redis.call(ARGV[4], ARGV[3], 'down ' .. ARGV[1] .. ' ' .. ARGV[2] .. ' ' .. bump())
return 1
`);

export interface RedisRegistryOptions {
  prefix: string;
  ttlMs: number;
  heartbeatMs: number;
  logger: Logger;
}

/** What this node holds of another's record: its version, and the change count it was learned at. */
interface Known {
  version: number;
  record: NodeRecord;
  learnedAt: number;
}

export class RedisRegistry implements Registry {
  readonly #redis: RedisConnection;
  readonly #options: RedisRegistryOptions;
  readonly #keys: RegistryKeys;
  readonly #listeners = new Set<RegistryListener>();
  readonly #expiredListeners = new Set<(ids: string[]) => void>();
  readonly #recoveredListeners = new Set<() => void>();
  readonly #known = new Map<string, Known>();
  #view: RegistryView = new Map();
  #record: NodeRecord | undefined;
  #version = 0;
  /** The change count up to which this node heard every change; undefined: it must read the versions. */
  #changesSeen: number | undefined;
  #timer: NodeJS.Timeout | undefined;
  #beat: Promise<void> | undefined;
  #beatAgain = false;
  #graceUntil = 0;
  #closed = false;

  constructor(redis: RedisConnection, options: RedisRegistryOptions) {
    this.#redis = redis;
    this.#options = options;
    // One hash tag for all of them: the scripts and MULTIs below stay in one slot on a Redis Cluster.
    this.#keys = registryKeys(options.prefix);
  }

  async start(): Promise<void> {
    await this.#redis.open();
    await this.#redis.subscribe(this.#keys.channel, (message) => this.#onAnnouncement(message.toString()));
    this.#redis.onReconnect(() => {
      // Redis may have come back empty: give every node one TTL to write its record again
      // before anyone is treated as gone, and check the versions whatever the counter says.
      this.#graceUntil = Date.now() + this.#options.ttlMs;
      this.#changesSeen = undefined;
      this.#heartbeat(true);
    });
    await this.#resync();
    this.#timer = setInterval(() => this.#heartbeat(false), this.#options.heartbeatMs);
    this.#timer.unref();
  }

  async register(record: NodeRecord): Promise<void> {
    this.#record = record;
    // Above any version an earlier process with this id wrote, and above this one's last.
    this.#version = Math.max(this.#version + 1, Date.now());
    this.#known.set(record.nodeId, { version: this.#version, record, learnedAt: this.#changesSeen ?? 0 });
    this.#publishView();
    await this.#write();
  }

  async deregister(): Promise<void> {
    const record = this.#record;
    if (record === undefined) return;
    this.#record = undefined;
    await this.#run(DEREGISTER, record.nodeId, [record.nodeId, String(this.#version), this.#keys.channel, this.#redis.publishCommand]);
  }

  view(): RegistryView {
    return this.#view;
  }

  onChange(listener: RegistryListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  onExpired(listener: (nodeIds: string[]) => void): () => void {
    this.#expiredListeners.add(listener);
    return () => this.#expiredListeners.delete(listener);
  }

  onRecovered(listener: () => void): () => void {
    this.#recoveredListeners.add(listener);
    return () => this.#recoveredListeners.delete(listener);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#timer);
    try {
      await this.deregister();
    } catch (err) {
      this.#options.logger.warn({ err: (err as Error).message }, 'could not deregister from redis');
    }
    this.#listeners.clear();
    await this.#beat;
    await this.#redis.close();
  }

  /** Runs one of the scripts on this registry's four keys (`nodeId`'s record first). */
  #run(s: typeof WRITE, nodeId: string, args: string[]): Promise<unknown> {
    const c = this.#redis.command;
    const k = this.#keys;
    const keys = [k.node(nodeId), k.alive, k.versions, k.changes];
    return runScript(
      () => c.evalsha(s.sha, keys.length, ...keys, ...args),
      () => c.eval(s.lua, keys.length, ...keys, ...args),
    );
  }

  /** Writes this node's record with its version and announces it. */
  async #write(): Promise<void> {
    const record = this.#record;
    if (record === undefined) return;
    const { ttlMs } = this.#options;
    const args = [record.nodeId, String(this.#version), JSON.stringify(record), String(ttlMs), String(SHARED_KEYS_TTL_MS)];
    await this.#run(WRITE, record.nodeId, [...args, this.#keys.channel, this.#redis.publishCommand]);
  }

  /** Starts a heartbeat unless one is in flight; `again`: run one more after it (something may have changed meanwhile). */
  #heartbeat(again: boolean): void {
    if (this.#closed) return;
    if (this.#beat !== undefined) {
      this.#beatAgain ||= again;
      return;
    }
    this.#beat = this.#beatOnce().finally(() => {
      this.#beat = undefined;
      if (!this.#beatAgain) return;
      this.#beatAgain = false;
      this.#heartbeat(false);
    });
  }

  async #beatOnce(): Promise<void> {
    try {
      if (this.#graceUntil !== 0 && Date.now() >= this.#graceUntil) {
        // The grace is over: what is still missing from Redis now leaves the view.
        this.#graceUntil = 0;
        this.#changesSeen = undefined;
      }
      const ownId = this.#record?.nodeId ?? '';
      const reap = this.#graceUntil === 0 ? '1' : '0';
      const { ttlMs } = this.#options;
      const k = this.#keys;
      const args = [ownId, String(ttlMs), String(SHARED_KEYS_TTL_MS), reap, k.channel, this.#redis.publishCommand, k.node(''), String(REAP_BATCH)];
      const [refreshed, changes, reaped] = (await this.#run(HEARTBEAT, ownId, args)) as [number, number, string[]];
      if (this.#closed) return;
      if (this.#record !== undefined && refreshed === 0) await this.#rewrite();
      if (reaped.length > 0) this.#onReaped(reaped);
      if (changes !== this.#changesSeen) await this.#resync();
    } catch (err) {
      this.#options.logger.debug({ err: (err as Error).message }, 'registry heartbeat failed');
    }
  }

  /** The record was gone (a stall longer than the TTL, or Redis lost it): others may have reaped this node. */
  async #rewrite(): Promise<void> {
    this.#options.logger.warn('this node had dropped out of the registry; registering again');
    // Redis may have lost every record (a restart that this heartbeat reached before the reconnect
    // handler did): the same grace, so the others are not dropped from the view before they write again.
    this.#graceUntil = Math.max(this.#graceUntil, Date.now() + this.#options.ttlMs);
    await this.#write();
    for (const listener of this.#recoveredListeners) listener();
  }

  /** Nodes this heartbeat reaped: only the node whose script removed them reports them, so cleanup runs once per dead node. */
  #onReaped(ids: string[]): void {
    let changed = false;
    for (const id of ids) changed = this.#forget(id, undefined) || changed;
    if (changed) this.#publishView();
    this.#options.logger.info({ nodes: ids }, 'nodes expired from the registry');
    for (const listener of this.#expiredListeners) listener(ids);
  }

  /** Reads the versions (and the change count with them), then only the records newer than this node's copies. */
  async #resync(): Promise<void> {
    const c = this.#redis.command;
    const k = this.#keys;
    const replies = await c.multi().get(k.changes).hgetall(k.versions).exec();
    const changes = Number(replies?.[0]?.[1] ?? 0);
    const versions = (replies?.[1]?.[1] ?? {}) as Record<string, string>;
    const ownId = this.#record?.nodeId;
    const wanted = Object.entries(versions).filter(([id, v]) => id !== ownId && Number(v) > (this.#known.get(id)?.version ?? -1));
    let changed = false;
    if (wanted.length > 0) {
      const reads = c.multi();
      for (const [id] of wanted) reads.hmget(k.node(id), 'v', 'r');
      const records = (await reads.exec()) ?? [];
      wanted.forEach(([id], i) => {
        const [version, json] = (records[i]?.[1] ?? [null, null]) as [string | null, string | null];
        if (version !== null && json !== null) changed = this.#learn(id, Number(version), json, changes) || changed;
      });
    }
    if (this.#graceUntil === 0) {
      for (const [id, known] of this.#known) {
        // Learned after this read of the versions (an announcement that overtook it): not ours to judge.
        if (versions[id] === undefined && known.learnedAt <= changes) changed = this.#forget(id, undefined) || changed;
      }
    }
    if (changed) this.#publishView();
    this.#changesSeen = changes;
  }

  #onAnnouncement(message: string): void {
    const [verb, id, v, count] = message.split(' ');
    const version = Number(v);
    const changes = Number(count);
    if (id === undefined || !Number.isFinite(version) || !Number.isFinite(changes) || this.#closed) return;
    const heardAll = this.#changesSeen !== undefined && changes === this.#changesSeen + 1;
    // The next change in order: this node still heard every one. Out of order (a lost message,
    // a counter Redis lost): the next heartbeat sees a count it has not seen and reads the versions.
    if (heardAll) this.#changesSeen = changes;
    if (verb === 'down') {
      if (this.#forget(id, version)) this.#publishView();
      return;
    }
    if (verb !== 'up' || id === this.#record?.nodeId || version <= (this.#known.get(id)?.version ?? -1)) return;
    this.#redis.command.hmget(this.#keys.node(id), 'v', 'r').then(
      ([read, json]) => {
        if (read == null || json == null || this.#closed) return;
        if (this.#learn(id, Number(read), json, changes)) this.#publishView();
      },
      (err: Error) => {
        this.#changesSeen = undefined;
        this.#options.logger.debug({ err: err.message }, 'registry lookup failed');
      },
    );
  }

  /** Takes `json` as `id`'s record if `version` is newer than the one held; says whether it did. */
  #learn(id: string, version: number, json: string, learnedAt: number): boolean {
    if (version <= (this.#known.get(id)?.version ?? -1)) return false;
    try {
      this.#known.set(id, { version, record: JSON.parse(json) as NodeRecord, learnedAt });
      return true;
    } catch {
      this.#options.logger.warn({ nodeId: id }, 'ignoring a malformed registry record');
      return false;
    }
  }

  /** Drops `id` (never this node's own record while registered), unless what is held is newer than `version`. */
  #forget(id: string, version: number | undefined): boolean {
    const known = this.#known.get(id);
    if (known === undefined || id === this.#record?.nodeId) return false;
    if (version !== undefined && known.version > version) return false;
    this.#known.delete(id);
    return true;
  }

  #publishView(): void {
    const view = new Map<string, NodeRecord>();
    for (const [id, known] of this.#known) view.set(id, known.record);
    this.#view = view;
    for (const listener of this.#listeners) listener(view);
  }
}
