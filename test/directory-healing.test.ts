/**
 * A session directory replica that heals: a load that fails is retried and
 * never leaves the replica stuck, the updates held while loading are
 * bounded, a lost update is found (a gap in the versions, or Redis ahead at
 * the periodic check), and a Redis that restarts empty does not make a push
 * to an open session count 0.
 */
import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import { setImmediate as nextTick } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { WebSocketModule, createGateway, createHost, implement, redisCluster, type Gateway } from '../src/index.js';
import { RedisConnection, type RedisCommands } from '../src/redis/redis-connection.js';
import { directoryUnit, serviceKeys } from '../src/redis/keys.js';
import { shardOf } from '../src/util/hash-ring.js';
import { RedisRegistry } from '../src/registry/redis-registry.js';
import { RedisSessionDirectory, type ReplicaState } from '../src/directory/redis-session-directory.js';
import type { BusinessSessions } from '../src/directory/session-directory.js';
import { PROTOCOL_VERSION } from '../src/protocol/frames.js';
import { ChatAppService, IChatAppService } from './fixtures/services.js';
import { dropPrefix, rawClient, startPrivateRedis } from './fixtures/node-control.js';
import { engineTest, engines } from './fixtures/redis-engines.js';
import {
  REDIS_URL,
  captureLogger,
  connectWs,
  eventually,
  quietLogger,
  redisTest,
  testSecret,
  uniquePrefix,
  type OpenedClient,
} from './helpers/index.js';

const SERVICE = 'IHealAppService';

/** A Redis connection whose HSCAN (what a replica's load reads) can be made to fail, or to wait. */
class FlakyRedis extends RedisConnection {
  /** HSCAN calls to fail from now on. */
  failScans = 0;
  scanFailures = 0;
  /** While set, HSCAN waits for it. */
  gate: Promise<void> | undefined;

  override get command(): RedisCommands {
    const real = super.command;
    return new Proxy(real, {
      get: (target, prop) => {
        if (prop === 'hscan') {
          return async (...args: unknown[]) => {
            if (this.gate !== undefined) await this.gate;
            if (this.failScans > 0) {
              this.failScans -= 1;
              this.scanFailures += 1;
              throw new Error('injected: redis went away during the scan');
            }
            return (target.hscan as (...a: unknown[]) => Promise<unknown>)(...args);
          };
        }
        const value = Reflect.get(target, prop, target) as unknown;
        return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
      },
    });
  }
}

interface DirectoryNode {
  nodeId: string;
  directory: RedisSessionDirectory;
  /** Sessions of `businessId` the replica lists (it must watch SERVICE). */
  count(businessId: string): number;
  state(): ReplicaState;
}

/** A registered node with a directory of its own on `prefix`, closed after the test. */
async function directoryNode(
  t: TestContext,
  prefix: string,
  nodeId: string,
  options: { redis?: RedisConnection; checkIntervalMs?: number; maxLoadBufferBytes?: number } = {},
): Promise<DirectoryNode> {
  const logger = quietLogger();
  const redis = options.redis ?? new RedisConnection({ target: REDIS_URL, logger });
  const registry = new RedisRegistry(redis, { prefix, ttlMs: 3000, heartbeatMs: 1000, logger });
  const directory = new RedisSessionDirectory(redis, registry, {
    prefix,
    nodeId,
    staleAfterMs: 4000,
    checkIntervalMs: options.checkIntervalMs ?? 200,
    // One unit per service, which these tests write to by hand: the replica's machinery is the same for a shard.
    fullReplica: true,
    ...(options.maxLoadBufferBytes === undefined ? {} : { maxLoadBufferBytes: options.maxLoadBufferBytes }),
    logger,
  });
  await registry.start();
  await directory.start();
  await registry.register({
    nodeId,
    role: 'gateway',
    address: { host: '127.0.0.1', port: 1 },
    services: [],
    startedAt: Date.now(),
    protocol: PROTOCOL_VERSION,
  });
  t.after(async () => {
    await directory.close();
    await registry.close();
  });
  return {
    nodeId,
    directory,
    count: (businessId) => (directory.sessionsOf(SERVICE, businessId) as BusinessSessions).length,
    state: () => directory.replicaState(SERVICE)!,
  };
}

async function setup(t: TestContext, replicaOptions: { redis?: RedisConnection; checkIntervalMs?: number; maxLoadBufferBytes?: number } = {}) {
  const prefix = uniquePrefix();
  const raw = new Redis(REDIS_URL);
  t.after(async () => {
    await dropPrefix(prefix);
    raw.disconnect();
  });
  const gateway = await directoryNode(t, prefix, 'gw-1');
  const replica = await directoryNode(t, prefix, 'host-1', replicaOptions);
  await replica.directory.watch(SERVICE);
  /** What a lost publish leaves behind: the entry and the version in Redis, and no update on the channel. */
  const writeWithoutPublishing = async (sessionId: string, businessId: string): Promise<void> => {
    await raw
      .multi()
      .hset(serviceKeys(prefix, SERVICE).sessions, sessionId, `${gateway.nodeId}\n${businessId}`)
      .incr(serviceKeys(prefix, SERVICE).version)
      .exec();
  };
  return { prefix, raw, gateway, replica, writeWithoutPublishing };
}

test(
  'a replica whose load failed keeps taking updates, loads again with backoff, and counts the sessions opened afterwards',
  await redisTest(),
  async (t) => {
    const flaky = new FlakyRedis({ target: REDIS_URL, logger: quietLogger() });
    const { gateway, replica, writeWithoutPublishing } = await setup(t, { redis: flaky });
    gateway.directory.add(SERVICE, 'before', 'gw-1.s1');
    await eventually(() => replica.count('before') === 1, 5000, 'the first session listed');

    // Redis "goes away" for every load from now on, and the replica has reason to load (an update it missed).
    flaky.failScans = Number.MAX_SAFE_INTEGER;
    await writeWithoutPublishing('gw-1.missed', 'missed');
    await eventually(() => flaky.scanFailures >= 2, 10_000, 'a load that failed, tried again');
    // (A retry may be under way this instant; between tries the replica is not loading.)
    await eventually(() => !replica.state().loading, 10_000, 'the replica taking updates between tries');

    gateway.directory.add(SERVICE, 'after', 'gw-1.s2');
    await eventually(() => replica.count('after') === 1, 5000, 'a session opened after the failed load listed');
    assert.equal(replica.count('before'), 1);

    // Redis is back: the next try loads, and finds what was missed.
    flaky.failScans = 0;
    await eventually(() => replica.count('missed') === 1, 15_000, 'the missed session listed once a load succeeds');
    assert.equal(replica.count('after'), 1);
    assert.equal(replica.count('before'), 1);
    assert.equal(replica.state().loading, false);
  },
);

test('a replica holds a bounded buffer of updates while it loads, and past the bound loads again', await redisTest(), async (t) => {
  const flaky = new FlakyRedis({ target: REDIS_URL, logger: quietLogger() });
  const maxLoadBufferBytes = 2048;
  const { gateway, replica, writeWithoutPublishing } = await setup(t, { redis: flaky, maxLoadBufferBytes });
  let release: () => void = () => {};
  flaky.gate = new Promise<void>((r) => (release = r));
  await writeWithoutPublishing('gw-1.missed', 'missed');
  await eventually(() => replica.state().loading, 10_000, 'a load waiting on its scan');

  // Far more updates than the bound holds, one batch per tick, while the load waits.
  let peakBytes = 0;
  const sessions = 400;
  for (let i = 0; i < sessions; i++) {
    gateway.directory.add(SERVICE, `b${i % 20}`, `gw-1.many-${i}`);
    await nextTick();
    await nextTick();
    peakBytes = Math.max(peakBytes, replica.state().bufferedBytes);
  }
  await eventually(() => replica.state().bufferedBytes === 0 || !replica.state().loading, 5000, 'the buffer dropped');
  assert.ok(replica.state().loading, 'still loading');
  assert.ok(peakBytes <= maxLoadBufferBytes, `held ${peakBytes} bytes, bound ${maxLoadBufferBytes}`);
  const loadsBefore = replica.state().loads;

  flaky.gate = undefined;
  release();
  await eventually(
    () => replica.count('missed') === 1 && Array.from({ length: 20 }, (_, i) => replica.count(`b${i}`)).every((n) => n === sessions / 20),
    15_000,
    'every session listed after loading again',
  );
  await eventually(() => replica.state().loads > loadsBefore && !replica.state().loading, 15_000, 'loaded again after the buffer was dropped');
  assert.equal(replica.count('missed'), 1);
});

test('a replica that missed an update with none after it finds Redis ahead at its periodic check and loads again', await redisTest(), async (t) => {
  const { gateway, replica, writeWithoutPublishing } = await setup(t, { checkIntervalMs: 200 });
  gateway.directory.add(SERVICE, 'seen', 'gw-1.s1');
  await eventually(() => replica.count('seen') === 1, 5000, 'the published session listed');
  await writeWithoutPublishing('gw-1.lost', 'lost');
  await eventually(() => replica.count('lost') === 1, 10_000, 'the session whose update was lost listed');
  assert.equal(replica.count('seen'), 1);
});

test('a replica that missed an update sees the gap in the next one and loads again', await redisTest(), async (t) => {
  // No periodic check within the test: only the gap can tell.
  const { gateway, replica, writeWithoutPublishing } = await setup(t, { checkIntervalMs: 3_600_000 });
  gateway.directory.add(SERVICE, 'first', 'gw-1.s1');
  await eventually(() => replica.count('first') === 1, 5000, 'the first session listed');
  await writeWithoutPublishing('gw-1.lost', 'lost');
  gateway.directory.add(SERVICE, 'next', 'gw-1.s2');
  await eventually(() => replica.count('next') === 1 && replica.count('lost') === 1, 10_000, 'both the next and the lost session listed');
  assert.equal(replica.count('first'), 1);
});

/**
 * Node TTLs of the healing tests: long enough that a pause of the test process under load (every node of these
 * tests lives in it) does not let Redis expire the records of live nodes, which would be another failure than the
 * one tested; the heal takes ttlMs + heartbeatMs.
 */
const HEALING_TTLS = { ttlMs: 4000, heartbeatMs: 500 };

/**
 * Pushes to r1 and r2 all along (while Redis is away, while it is empty, while the gateways write again, and
 * after the replica replaced its last good view with what Redis holds) until five rounds after the heal found
 * Redis listing every session; the answers of every round, as `r1/r2`.
 */
/** Every push that answered counted every open session (none fewer), and the rounds after the heal all answered. */
function assertCounted(answers: string[], r1: string, r2: string): void {
  const ok = (got: string, want: string): boolean => got === want || got.startsWith('error:');
  assert.ok(
    answers.every((a) => {
      const [a1, a2] = a.split('/');
      return ok(a1!, r1) && ok(a2!, r2);
    }),
    `every push that answered counted every open session: ${answers.join(' ')}`,
  );
  assert.deepEqual(answers.slice(-5), Array(5).fill(`${r1}/${r2}`), 'after the heal, every push answers with every session');
}

async function pushUntilHealed(
  chat: { push(businessId: string, msg: string): Promise<number> },
  capture: ReturnType<typeof captureLogger>,
  listedAll: () => Promise<boolean>,
): Promise<string[]> {
  const answers: string[] = [];
  const healed = (): boolean => capture.lines().some((l) => String(l['msg']).startsWith('session directory rewritten'));
  const deadline = Date.now() + 60_000;
  // A push or a read of Redis that never answers fails the test by the deadline too, saying which.
  const bounded = <T>(what: string, p: Promise<T>): Promise<T> =>
    new Promise<T>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`${what} did not answer within 60 s of the disruption; answers so far: ${answers.slice(-20).join(' ')}`)),
        Math.max(0, deadline - Date.now()),
      );
      p.then(resolve, reject).finally(() => clearTimeout(timer));
    });
  let after = 0;
  for (let round = 0; after < 5; round++) {
    if (Date.now() > deadline) assert.fail(`the directory did not heal within 60 s; answers so far: ${answers.slice(-20).join(' ')}`);
    // A push may fail while the master of its shard is away (a clear error, no count at all); one that answers counts every session.
    const answer = (businessId: string): Promise<string> =>
      chat.push(businessId, `p${round}`).then(String, (e: unknown) => `error:${(e as { code?: string }).code ?? 'unknown'}`);
    const [r1, r2] = await bounded(`round ${round}'s pushes`, Promise.all([answer('r1'), answer('r2')]));
    answers.push(`${r1}/${r2}`);
    if (healed() && (await bounded('the read of what Redis lists', listedAll()))) after += 1;
    await new Promise((r) => setTimeout(r, 20));
  }
  return answers;
}

test(
  'after Redis restarts empty, every push to an open session is answered with its count, and Redis lists the sessions again',
  await redisTest(),
  async (t) => {
    const redis = await startPrivateRedis();
    const cleanups: (() => unknown)[] = [];
    t.after(async () => {
      for (const c of cleanups.reverse()) await c();
      await redis.kill();
      redis.remove();
    });
    const prefix = uniquePrefix();
    const secret = testSecret();
    const cluster = () => redisCluster({ url: redis.url, prefix, secret, ...HEALING_TTLS });
    const capture = captureLogger();
    const host = await createHost({
      cluster: cluster(),
      logger: capture.logger,
      modules: [WebSocketModule],
      services: [implement(IChatAppService, new ChatAppService())],
    }).start();
    cleanups.push(() => host.stop());
    const gateways: Gateway[] = [];
    for (let i = 0; i < 2; i++) {
      const gateway = await createGateway({ cluster: cluster(), logger: quietLogger(), http: { host: '127.0.0.1', port: 0 } }).start();
      cleanups.push(() => gateway.stop());
      gateways.push(gateway);
    }
    const clients: OpenedClient[] = [];
    const open = async (gateway: Gateway, businessId: string): Promise<OpenedClient> => {
      const client = await connectWs(`ws://127.0.0.1:${gateway.port}/api/chat?businessId=${businessId}`);
      cleanups.push(() => client.ws.terminate());
      clients.push(client);
      return client;
    };
    await open(gateways[0]!, 'r1');
    await open(gateways[0]!, 'r1');
    await open(gateways[1]!, 'r1');
    await open(gateways[1]!, 'r2');
    const chat = host.proxy(IChatAppService);
    const raw = new Redis(redis.url, { maxRetriesPerRequest: 1 });
    raw.on('error', () => {});
    cleanups.push(() => raw.disconnect());
    // The keys of the shards of r1 and r2 (the directory is sharded by businessId).
    const hashKeys = [...new Set(['r1', 'r2'].map((b) => serviceKeys(prefix, directoryUnit('IChatAppService', shardOf(b))).sessions))];
    const listed = async (): Promise<number> => (await Promise.all(hashKeys.map((k) => raw.hlen(k)))).reduce((a, b) => a + b, 0);
    await eventually(
      async () => (await chat.push('r1', 'warm')) === 3 && (await chat.push('r2', 'warm')) === 1,
      5000,
      'pushes counting every session',
    );

    await redis.kill();
    await redis.start();

    const answers = await pushUntilHealed(chat, capture, async () => (await listed().catch(() => 0)) === 4);
    assertCounted(answers, '3', '1');
    // A session opened after the restart is counted too.
    await open(gateways[0]!, 'r2');
    await eventually(async () => (await chat.push('r2', 'new')) === 2, 5000, 'the new session counted');
    assert.equal(await listed(), 5);
  },
);

const redisEngines = engines();

/** The chat service without history: a push is then the directory's answer alone, even while the history's master is away. */
class PlainChatService extends ChatAppService {
  static override history = false as const;
}

test(
  'on a Redis Cluster whose master of a service restarts empty, every push to an open session keeps its count, and Redis lists the sessions again [redis cluster]',
  await engineTest('cluster'),
  async (t) => {
    // The epoch is per service, in the service's slot: the master that lost the service's keys lost its epoch with them,
    // whichever master holds the registry. (No history: its businessIds may live on the master that restarts.)
    const step = (what: string): void => {
      process.stderr.write(`[healing cluster] ${new Date().toISOString()} ${what}\n`);
    };
    step('starting a disruptable Redis Cluster');
    const engine = await redisEngines.get('cluster', { disruptable: true });
    step('cluster up');
    const cleanups: (() => unknown)[] = [];
    const prefix = uniquePrefix();
    t.after(async () => {
      step('cleaning up');
      for (const c of cleanups.reverse()) {
        step(`cleanup: ${c.toString().slice(0, 40)}`);
        await c();
      }
      step('dropping the prefix');
      await dropPrefix(prefix, engine.url);
      step('cleaned up');
    });
    const secret = testSecret();
    const cluster = () => redisCluster({ url: engine.url, prefix, secret, ...HEALING_TTLS });
    const capture = captureLogger();
    const host = await createHost({
      cluster: cluster(),
      logger: capture.logger,
      modules: [WebSocketModule],
      services: [implement(IChatAppService, new PlainChatService())],
    }).start();
    cleanups.push(() => host.stop());
    const gateways: Gateway[] = [];
    for (let i = 0; i < 2; i++) {
      const gateway = await createGateway({ cluster: cluster(), logger: quietLogger(), http: { host: '127.0.0.1', port: 0 } }).start();
      cleanups.push(() => gateway.stop());
      gateways.push(gateway);
    }
    const open = async (gateway: Gateway, businessId: string): Promise<void> => {
      const client = await connectWs(`ws://127.0.0.1:${gateway.port}/api/chat?businessId=${businessId}`);
      cleanups.push(() => client.ws.terminate());
    };
    await open(gateways[0]!, 'r1');
    await open(gateways[1]!, 'r1');
    await open(gateways[1]!, 'r2');
    step('host, gateways and sessions up');
    const chat = host.proxy(IChatAppService);
    const raw = rawClient(engine.url);
    cleanups.push(() => raw.disconnect());
    const keys = serviceKeys(prefix, directoryUnit('IChatAppService', shardOf('r1')));
    const r2Keys = serviceKeys(prefix, directoryUnit('IChatAppService', shardOf('r2')));
    const listed = async (): Promise<number> =>
      (await Promise.all([...new Set([keys.sessions, r2Keys.sessions])].map((k) => raw.hlen(k)))).reduce((a, b) => a + b, 0);
    await eventually(
      async () => (await chat.push('r1', 'warm')) === 2 && (await chat.push('r2', 'warm')) === 1,
      5000,
      'pushes counting every session',
    );
    const epochBefore = await raw.get(keys.epoch);
    assert.ok(epochBefore !== null, 'the shard has an epoch');

    step('disrupting');
    await engine.disrupt([...new Set([keys.tag, r2Keys.tag])]);
    step('disrupted');

    const answers = await pushUntilHealed(chat, capture, async () => (await listed().catch(() => 0)) === 3);
    step(`healed after ${answers.length} rounds`);
    assertCounted(answers, '2', '1');
    assert.notEqual(await raw.get(keys.epoch), epochBefore, 'a new epoch for the shard');
  },
);
