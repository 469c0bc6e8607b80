/**
 * The sharded session directory: a host keeps and hears only the shards it
 * owns on the hash ring, answers the others with one Redis read, and when
 * hosts join or die the new owners take over without a wrong count.
 */
import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import { Redis } from 'ioredis';
import { RedisConnection } from '../src/redis/redis-connection.js';
import { directoryUnit, serviceKeys } from '../src/redis/keys.js';
import { RedisRegistry } from '../src/registry/redis-registry.js';
import { RedisSessionDirectory } from '../src/directory/redis-session-directory.js';
import type { BusinessSessions } from '../src/directory/session-directory.js';
import { PROTOCOL_VERSION } from '../src/protocol/frames.js';
import { RING_SHARDS, shardOf } from '../src/util/hash-ring.js';
import { controlNode, dropPrefix, type NodeControl } from './fixtures/node-control.js';
import { engineLabel, engineTest, engines } from './fixtures/redis-engines.js';
import {
  REDIS_URL,
  connectWs,
  eventually,
  quietLogger,
  redisTest,
  spawnNode,
  uniquePrefix,
  type NodeProcess,
  type OpenedClient,
} from './helpers/index.js';

const SERVICE = 'IShardAppService';

/** A connection that counts the directory updates it receives, per channel. */
class CountingRedis extends RedisConnection {
  readonly received = new Map<string, number>();

  override subscribe(channel: string, handler: (message: Buffer) => void): Promise<void> {
    return super.subscribe(channel, (message) => {
      this.received.set(channel, (this.received.get(channel) ?? 0) + 1);
      handler(message);
    });
  }
}

interface Node {
  nodeId: string;
  redis: CountingRedis;
  registry: RedisRegistry;
  directory: RedisSessionDirectory;
}

async function node(t: TestContext, url: string, prefix: string, nodeId: string, role: 'host' | 'gateway'): Promise<Node> {
  const logger = quietLogger();
  const redis = new CountingRedis({ target: url, logger });
  const registry = new RedisRegistry(redis, { prefix, ttlMs: 3000, heartbeatMs: 1000, logger });
  const directory = new RedisSessionDirectory(redis, registry, { prefix, nodeId, staleAfterMs: 4000, checkIntervalMs: 500, logger });
  await registry.start();
  await directory.start();
  const services = role === 'host' ? [{ contract: { name: SERVICE, segment: 'shard', basePath: '/api/shard', methods: [] } }] : [];
  await registry.register({ nodeId, role, address: { host: '127.0.0.1', port: 1 }, services, startedAt: Date.now(), protocol: PROTOCOL_VERSION });
  t.after(async () => {
    await directory.close();
    await registry.close();
  });
  return { nodeId, redis, registry, directory };
}

const ids = (found: BusinessSessions): string[] => found.map(([id]) => id).sort();

const redisEngines = engines();

// On a Redis Cluster the shard channels are sharded pub/sub (SSUBSCRIBE): a host hears its shards there too.
for (const kind of ['redis', 'cluster'] as const) {
  test(
    `a host keeps and hears only the shards it owns, and answers every businessId with every session ${engineLabel(kind)}`,
    await engineTest(kind),
    async (t) => {
      const { url } = await redisEngines.get(kind);
      const prefix = uniquePrefix();
      t.after(() => dropPrefix(prefix, url));
      const gateway = await node(t, url, prefix, 'gw-1', 'gateway');
      const hosts = [
        await node(t, url, prefix, 'host-a', 'host'),
        await node(t, url, prefix, 'host-b', 'host'),
        await node(t, url, prefix, 'host-c', 'host'),
      ];
      // Each host sees the three on its ring before it watches.
      const hostsSeen = (h: Node): number => [...h.registry.view().values()].filter((r) => r.role === 'host').length;
      await eventually(() => hosts.every((h) => hostsSeen(h) === 3), 10_000, 'every host seeing the three');
      for (const h of hosts) await h.directory.watch(SERVICE);
      const owned = hosts.map((h) => new Set(h.directory.ownedShards(SERVICE)));
      const all = owned.flatMap((s) => [...s]);
      assert.equal(all.length, RING_SHARDS, 'every shard has one owner');
      assert.equal(new Set(all).size, RING_SHARDS, 'no shard has two');
      for (const s of owned) assert.ok(s.size > 0, 'each host owns some shards');

      const expected = new Map<string, string[]>();
      for (let i = 0; i < 600; i++) {
        const businessId = `b${i % 300}`;
        const sessionId = `gw-1.s${i}`;
        gateway.directory.add(SERVICE, businessId, sessionId);
        expected.set(businessId, [...(expected.get(businessId) ?? []), sessionId].sort());
      }
      const ownerOf = (businessId: string): number => owned.findIndex((s) => s.has(shardOf(businessId)));
      await eventually(
        () => {
          for (const [businessId, sessions] of expected) {
            const h = hosts[ownerOf(businessId)]!;
            const found = h.directory.sessionsOf(SERVICE, businessId);
            if (found instanceof Promise || ids(found).join() !== sessions.join()) return false;
          }
          return true;
        },
        10_000,
        'each owner listing its businessIds from memory',
      );

      for (const [i, h] of hosts.entries()) {
        // Updates came only on the channels of its own shards.
        const heard = [...h.redis.received.keys()].filter((c) => c.endsWith(':sessions'));
        assert.ok(heard.length > 0, `${h.nodeId} heard the updates of its shards`);
        for (const channel of heard) {
          const shard = Number(/#(\d+)\}/.exec(channel)?.[1]);
          assert.ok(owned[i]!.has(shard), `${h.nodeId} heard no update of shard ${shard}, which it does not own`);
        }
        // Its replicas hold only its businessIds.
        let kept = 0;
        for (const shard of owned[i]!) kept += h.directory.replicaState(directoryUnit(SERVICE, shard))!.sessions;
        const mine = [...expected].filter(([b]) => ownerOf(b) === i).reduce((n, [, s]) => n + s.length, 0);
        assert.equal(kept, mine, `${h.nodeId} keeps the sessions of its shards and no other`);
        // A businessId of another host's shard: one read of Redis, the same answer.
        for (const [businessId, sessions] of expected) {
          if (ownerOf(businessId) === i) continue;
          const found = h.directory.sessionsOf(SERVICE, businessId);
          assert.ok(found instanceof Promise, 'read from Redis');
          assert.deepEqual(ids(await found), sessions, `${h.nodeId} lists ${businessId} from Redis`);
        }
        // The same reads all in one turn (they go out as one pipeline), one of them twice: the same answers.
        const others = [...expected].filter(([businessId]) => ownerOf(businessId) !== i);
        others.push(others[0]!);
        const together = await Promise.all(others.map(async ([businessId]) => h.directory.sessionsOf(SERVICE, businessId)));
        together.forEach((found, k) => assert.deepEqual(ids(found), others[k]![1], `${h.nodeId} lists ${others[k]![0]} in a batch`));
        assert.equal(await h.directory.size(SERVICE), 600);
      }
      // A session bound to a host is listed by it at once, before the gateway's write.
      const b = [...expected.keys()].find((id) => ownerOf(id) !== 0)!;
      hosts[0]!.directory.bind(SERVICE, b, 'gw-2.bound', 'gw-2');
      assert.ok(ids(await hosts[0]!.directory.sessionsOf(SERVICE, b)).includes('gw-2.bound'));
    },
  );
}

/** Subscribers of each shard channel of the chat service (one server: PUBSUB NUMSUB). */
async function subscribersPerShard(raw: Redis, prefix: string): Promise<number[]> {
  const channels = Array.from({ length: RING_SHARDS }, (_, s) => serviceKeys(prefix, directoryUnit('IChatAppService', s)).channel);
  const flat = (await raw.call('PUBSUB', 'NUMSUB', ...channels)) as (string | number)[];
  const out: number[] = [];
  for (let i = 1; i < flat.length; i += 2) out.push(Number(flat[i]));
  return out;
}

test(
  'when a host joins and when a host is killed, every shard keeps one owner and every push counts every open session, whichever host answers',
  await redisTest(),
  async (t) => {
    const prefix = uniquePrefix();
    const procs: NodeProcess[] = [];
    const clients: OpenedClient[] = [];
    const raw = new Redis(REDIS_URL);
    t.after(async () => {
      for (const c of clients) c.ws.terminate();
      await Promise.all(procs.map((p) => p.kill()));
      raw.disconnect();
      await dropPrefix(prefix);
    });
    const env = { WEFT_TTL_MS: '2000', WEFT_HEARTBEAT_MS: '500', WEFT_PREFIX: prefix, WEFT_REDIS_URL: REDIS_URL };
    const host = (name: string) => spawnNode({ ...env, WEFT_ROLE: 'host', WEFT_SERVICES: 'chat', WEFT_NAME: name });
    const started = await Promise.all([
      host('hA'),
      host('hB'),
      spawnNode({ ...env, WEFT_ROLE: 'gateway', WEFT_NAME: 'gw1' }),
      spawnNode({ ...env, WEFT_ROLE: 'gateway', WEFT_NAME: 'gw2' }),
      spawnNode({ ...env, WEFT_ROLE: 'host', WEFT_SERVICES: '', WEFT_NAME: 'caller' }),
    ]);
    procs.push(...started);
    const [hA, hB, g1, g2, callerProc] = started;
    const caller: NodeControl = controlNode(callerProc);
    const push = async (businessId: string): Promise<number> => {
      const r = await caller.call('IChatAppService', 'push', [businessId, 'x']);
      if (!r.ok) throw new Error(`push: ${r.code} ${r.message}`);
      return r.value as number;
    };
    await eventually(async () => (await subscribersPerShard(raw, prefix)).every((n) => n === 1), 15_000, 'each shard owned by one of two hosts');

    // Two sessions per businessId, one on each gateway; each bound to the host owning the businessId.
    const businessIds = Array.from({ length: 24 }, (_, i) => `u${i}`);
    const opened = new Map<string, OpenedClient[]>();
    for (const b of businessIds) {
      for (const g of [g1, g2]) {
        const client = await connectWs(`ws://127.0.0.1:${g.info.httpPort}/api/chat?businessId=${b}`);
        clients.push(client);
        opened.set(b, [...(opened.get(b) ?? []), client]);
      }
    }
    const open = (b: string): number => opened.get(b)!.filter((c) => c.ws.readyState === c.ws.OPEN).length;
    void hB;
    await eventually(
      async () => (await Promise.all(businessIds.map(push))).every((n, i) => n === open(businessIds[i]!)),
      10_000,
      'every push counting',
    );

    /** Subscriber connections with many channels: the hosts, each with the shards it owns. */
    const shardHolders = async (): Promise<number> => {
      const list = (await raw.call('CLIENT', 'LIST')) as string;
      return list.split('\n').filter((line) => Number(/ sub=(\d+)/.exec(line)?.[1] ?? 0) >= 20).length;
    };
    /** Pushes to every businessId until `done`; returns what each push counted. */
    const pushAllAlong = async (done: () => Promise<boolean>, what: string): Promise<number[][]> => {
      const rounds: number[][] = [];
      // Bounded by time, not by rounds: faster pushes must not shorten the wait for the shards to move.
      const giveUpAt = Date.now() + 30_000;
      for (;;) {
        if (Date.now() > giveUpAt) assert.fail(`${what} did not settle within 30 s`);
        rounds.push(await Promise.all(businessIds.map(push)));
        if (await done()) return rounds;
      }
    };
    const settled = async (holders: number): Promise<boolean> =>
      (await shardHolders()) === holders && (await subscribersPerShard(raw, prefix)).every((n) => n === 1);

    // A host joins: it loads the shards it now owns, the others drop them. No session closes meanwhile.
    const hC = await host('hC');
    procs.push(hC);
    const joining = await pushAllAlong(() => settled(3), 'a host joining');
    for (const counted of joining)
      assert.deepEqual(
        counted,
        businessIds.map(() => 2),
        'every push during the join counted both sessions',
      );

    // A host is killed: sessions bound to it close (1012, the chat service has hooks); the others' counts hold.
    await hA.kill();
    const killed = await pushAllAlong(() => settled(2), 'a host killed');
    await eventually(
      async () => (await Promise.all(businessIds.map(push))).every((n, i) => n === open(businessIds[i]!)),
      15_000,
      'every push counting the sessions still open',
    );
    const survivors = businessIds.filter((b) => open(b) === 2);
    assert.ok(survivors.length > 0 && survivors.length < businessIds.length, 'some sessions were bound to the killed host, some not');
    for (const counted of killed) {
      for (const b of survivors) assert.equal(counted[businessIds.indexOf(b)], 2, `a push to ${b}, whose sessions stayed open, counted both`);
    }
  },
);
