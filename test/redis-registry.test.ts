/**
 * The Redis registry and session directory under failure: nodes killed
 * without a word, nodes stopped gracefully, and a Redis that restarts empty
 * or fails over. On each kind of Redis but for the graceful stop: one server
 * (restarts empty), a Redis Cluster (the masters of the test's slots restart
 * empty), Sentinel (the master dies and a replica takes over), and for the
 * Redis failover tests a Cluster with replicas (the masters of the test's
 * slots die and their replicas take over).
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import net from 'node:net';
import { test, type TestContext } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { WebSocketModule, createGateway, createHost, implement, redisCluster, type Cluster, type Gateway, type Host } from '../src/index.js';
import { directoryUnit, registryKeys, serviceKeys } from '../src/redis/keys.js';
import { shardOf } from '../src/util/hash-ring.js';
import { RedisConnection } from '../src/redis/redis-connection.js';
import { RedisRegistry } from '../src/registry/redis-registry.js';
import type { NodeRecord } from '../src/registry/registry.js';
import { ChatAppService, IChatAppService, ITestAppService, testService } from './fixtures/services.js';
import { dropPrefix, rawClient } from './fixtures/node-control.js';
import { ENGINE_KINDS, FAILOVER_ENGINE_KINDS, engineLabel, engineTest, engines } from './fixtures/redis-engines.js';
import {
  REDIS_URL,
  connectWs,
  eventually,
  getHealth,
  httpJson,
  quietLogger,
  redisTest,
  spawnNode,
  testSecret,
  uniquePrefix,
  type NodeProcess,
} from './helpers/index.js';

const redis = engines();

type Defer = (cleanup: () => unknown) => void;

/** Cleanups run last-in first-out (t.after runs in order), so a private Redis outlives the nodes that use it. */
function cleanupStack(t: TestContext): Defer {
  const stack: (() => unknown)[] = [];
  t.after(async () => {
    for (const cleanup of stack.reverse()) await cleanup();
  });
  return (cleanup) => void stack.push(cleanup);
}

/** A registry that only watches (it registers nothing), as any node's view is kept. */
async function observer(defer: Defer, url: string, prefix: string, ttlMs: number, heartbeatMs: number): Promise<RedisRegistry> {
  const logger = quietLogger();
  const registry = new RedisRegistry(new RedisConnection({ target: url, logger }), { prefix, ttlMs, heartbeatMs, logger });
  await registry.start();
  defer(() => registry.close());
  return registry;
}

function rawRedis(defer: Defer, url: string): ReturnType<typeof rawClient> {
  // Few retries: after a private Redis is gone for good, this client must not keep the test alive.
  const raw = rawClient(url);
  defer(() => raw.disconnect());
  return raw;
}

async function startHost(defer: Defer, cluster: Cluster, kind: 'test' | 'chat'): Promise<Host> {
  let nodeId = '';
  const services = kind === 'test' ? [testService(() => nodeId)] : [implement(IChatAppService, new ChatAppService())];
  const host = createHost({
    cluster,
    logger: quietLogger(),
    name: kind,
    services,
    modules: kind === 'chat' ? [WebSocketModule] : [],
    stopTimeoutMs: 2000,
  });
  await host.start();
  nodeId = host.nodeId;
  defer(() => host.stop());
  return host;
}

async function startGateway(defer: Defer, cluster: Cluster): Promise<Gateway> {
  const gateway = await createGateway({ cluster, logger: quietLogger(), http: { host: '127.0.0.1', port: 0 }, stopTimeoutMs: 2000 }).start();
  defer(() => gateway.stop());
  return gateway;
}

async function healthServices(url: string): Promise<string[]> {
  const r = await getHealth(url);
  return r.body.services;
}

for (const kind of ENGINE_KINDS) {
  test(
    `a node killed with SIGKILL leaves every other view and the registry once its TTL runs out ${engineLabel(kind)}`,
    await engineTest(kind),
    async (t) => {
      const { url: redisUrl } = await redis.get(kind);
      const defer = cleanupStack(t);
      const prefix = uniquePrefix();
      const keys = registryKeys(prefix);
      defer(() => dropPrefix(prefix, redisUrl));
      const env = { WEFT_PREFIX: prefix, WEFT_REDIS_URL: redisUrl, WEFT_TTL_MS: '1500', WEFT_HEARTBEAT_MS: '500' };
      const procs: NodeProcess[] = [];
      defer(() => Promise.all(procs.map((p) => p.kill())));
      const victim = await spawnNode({ ...env, WEFT_ROLE: 'host', WEFT_SERVICES: 'test', WEFT_NAME: 'victim' });
      procs.push(victim);
      const gw = await spawnNode({ ...env, WEFT_ROLE: 'gateway' });
      procs.push(gw);
      const url = `http://127.0.0.1:${gw.info.httpPort}`;
      const view = await observer(defer, redisUrl, prefix, 1500, 500);
      const raw = rawRedis(defer, redisUrl);
      const id = victim.info.nodeId;

      // It is there first: in the watching node's view, in the gateway's routes, in Redis.
      await eventually(() => view.view().has(id), 10000, 'the victim in the view');
      await eventually(async () => (await healthServices(url)).includes('ITestAppService'), 10000, 'the gateway routing to the victim');
      assert.equal((await httpJson(`${url}/api/test/whoami`)).body.result, id);
      assert.notEqual(await raw.zscore(keys.alive, id), null);

      await victim.kill();

      await eventually(() => !view.view().has(id), 15000, 'the killed node to leave the view');
      await eventually(async () => !(await healthServices(url)).includes('ITestAppService'), 15000, "the gateway to drop the dead node's routes");
      const after = await httpJson(`${url}/api/test/whoami`);
      assert.ok(after.status === 404 || after.status === 503, `no route to a dead node: HTTP ${after.status}`);
      await eventually(async () => (await raw.exists(keys.node(id))) === 0, 15000, 'the record to expire');
      await eventually(async () => (await raw.zscore(keys.alive, id)) === null, 15000, 'the node to be reaped');
      assert.equal(await raw.hexists(keys.versions, id), 0);
    },
  );
}

test('a gracefully stopped node leaves the registry at once, long before its TTL', await redisTest(), async (t) => {
  const defer = cleanupStack(t);
  const prefix = uniquePrefix();
  const keys = registryKeys(prefix);
  defer(() => dropPrefix(prefix));
  // A TTL far longer than the test: only the node's own deregistration can take it out.
  const cluster = redisCluster({ url: REDIS_URL, prefix, secret: testSecret(), ttlMs: 120000, heartbeatMs: 30000 });
  const view = await observer(defer, REDIS_URL, prefix, 120000, 30000);
  const raw = rawRedis(defer, REDIS_URL);
  const gateway = await startGateway(defer, cluster);
  const host = await startHost(defer, cluster, 'test');

  await eventually(() => view.view().has(host.nodeId), 5000, 'the host in the view');
  await eventually(async () => (await healthServices(gateway.url)).includes('ITestAppService'), 5000, 'the gateway routing to the host');
  assert.equal(await raw.exists(keys.node(host.nodeId)), 1);

  await host.stop();

  assert.equal(await raw.exists(keys.node(host.nodeId)), 0, 'the record is deleted by stop()');
  assert.equal(await raw.zscore(keys.alive, host.nodeId), null);
  assert.equal(await raw.hexists(keys.versions, host.nodeId), 0);
  await eventually(() => !view.view().has(host.nodeId), 10000, 'the stopped node to leave the view');
  await eventually(async () => !(await healthServices(gateway.url)).includes('ITestAppService'), 10000, 'the gateway to drop its routes');
});

for (const kind of FAILOVER_ENGINE_KINDS) {
  test(
    `every live node is registered again after Redis restarts empty or fails over, without restarting itself ${engineLabel(kind)}`,
    await engineTest(kind),
    async (t) => {
      const defer = cleanupStack(t);
      const engine = await redis.get(kind, { disruptable: true });
      const prefix = uniquePrefix();
      const keys = registryKeys(prefix);
      defer(() => dropPrefix(prefix, engine.url));
      const ttlMs = 1500;
      const heartbeatMs = 300;
      const cluster = redisCluster({ url: engine.url, prefix, secret: testSecret(), ttlMs, heartbeatMs });
      const testHost = await startHost(defer, cluster, 'test');
      const chatHost = await startHost(defer, cluster, 'chat');
      const raw = rawRedis(defer, engine.url);
      // Each node reaches the other only through its view: the test host serves only ITestAppService, the chat host only IChatAppService.
      const callEachOther = async (): Promise<boolean> =>
        (await chatHost.proxy(ITestAppService).whoami()) === testHost.nodeId && (await testHost.proxy(IChatAppService).count()) === 0;
      await eventually(callEachOther, 5000, 'the two nodes calling each other');

      await engine.disrupt([keys.tag]);

      // Both write their records again on their own.
      await eventually(
        async () => {
          const alive = await raw.zmscore(keys.alive, testHost.nodeId, chatHost.nodeId);
          const records = await raw.exists(keys.node(testHost.nodeId), keys.node(chatHost.nodeId));
          return alive.every((score) => score !== null) && records === 2;
        },
        15000,
        'both nodes registered in the restarted Redis',
      );
      // A node that knew nothing before the restart sees both.
      const fresh = await observer(defer, engine.url, prefix, ttlMs, heartbeatMs);
      assert.ok(fresh.view().has(testHost.nodeId) && fresh.view().has(chatHost.nodeId));
      // Past the grace a reconnecting node gives the others, the views hold only what Redis holds: they still reach each other.
      await sleep(ttlMs + 2 * heartbeatMs);
      assert.ok(await callEachOther(), 'the nodes reach each other after the restart');
      assert.ok(fresh.view().has(testHost.nodeId) && fresh.view().has(chatHost.nodeId), 'both nodes stay registered');
    },
  );

  test(
    `a gateway's open session is listed again after Redis restarts empty or fails over ${engineLabel(kind)}`,
    await engineTest(kind),
    async (t) => {
      const defer = cleanupStack(t);
      const engine = await redis.get(kind, { disruptable: true });
      const prefix = uniquePrefix();
      defer(() => dropPrefix(prefix, engine.url));
      const cluster = redisCluster({ url: engine.url, prefix, secret: testSecret(), ttlMs: 1500, heartbeatMs: 300 });
      const chatHost = await startHost(defer, cluster, 'chat');
      const gateway = await startGateway(defer, cluster);
      const raw = rawRedis(defer, engine.url);
      const client = await connectWs(`ws://127.0.0.1:${gateway.port}/api/chat?businessId=r1`);
      defer(() => client.ws.terminate());
      const hashKey = serviceKeys(prefix, directoryUnit('IChatAppService', shardOf('r1'))).sessions;
      const listed = async (): Promise<boolean> => Object.values(await raw.hgetall(hashKey)).includes(`${gateway.nodeId}\nr1`);
      await eventually(listed, 5000, 'the session in the directory');
      await eventually(async () => (await chatHost.proxy(IChatAppService).count('r1')) === 1, 5000, 'the host counting the session');

      await engine.disrupt([registryKeys(prefix).tag, serviceKeys(prefix, directoryUnit('IChatAppService', shardOf('r1'))).tag]);

      await eventually(listed, 15000, 'the session listed again in the restarted Redis');
      // A host that starts after the restart knows only what Redis holds; with the old host, both count the session.
      const freshHost = await startHost(defer, cluster, 'chat');
      const proxy = freshHost.proxy(IChatAppService);
      await eventually(
        async () => {
          const counts = await Promise.all([proxy.count('r1'), proxy.count('r1'), proxy.count('r1'), proxy.count('r1')]);
          return counts.every((n) => n === 1);
        },
        15000,
        'every host counting the session again',
      );
      assert.equal(await proxy.push('r1', 'after the restart'), 1);
      await client.waitFor(1);
      assert.deepEqual(client.messages, ['after the restart']);
    },
  );
}

/** A record as a node publishes it, with one service per name (no methods: the registry does not look inside). */
function recordOf(nodeId: string, services: string[]): NodeRecord {
  return {
    nodeId,
    role: 'host',
    address: { host: '127.0.0.1', port: 1 },
    services: services.map((name) => ({ contract: { name, segment: name, basePath: `/api/${name}`, methods: [] } })),
    startedAt: Date.now(),
    protocol: 1,
  };
}

/** A registry that registers `record` (no node behind it: only the registry is under test). */
async function member(defer: Defer, prefix: string, ttlMs: number, heartbeatMs: number, record: NodeRecord): Promise<RedisRegistry> {
  const registry = await observer(defer, REDIS_URL, prefix, ttlMs, heartbeatMs);
  await registry.register(record);
  return registry;
}

/**
 * Every command Redis runs, as MONITOR reports it (command name and first argument), on a bare
 * socket: ioredis's monitor mode can lose its place in a busy Redis ("Command queue state error").
 */
async function monitorRedis(defer: Defer, onCommand: (command: string, firstArg: string) => void): Promise<void> {
  const url = new URL(REDIS_URL);
  const socket = net.connect({ host: url.hostname, port: Number(url.port || 6379) });
  defer(() => socket.destroy());
  await once(socket, 'connect');
  let pending = '';
  let started: () => void = () => {};
  const ok = new Promise<void>((resolve) => (started = resolve));
  socket.on('data', (chunk: Buffer) => {
    pending += chunk.toString('utf8');
    const lines = pending.split('\r\n');
    pending = lines.pop() ?? '';
    for (const line of lines) {
      if (line === '+OK') started();
      // +1796138107.982121 [0 127.0.0.1:51234] "HMGET" "{p}:node:a" "v" "r"
      const m = /^\+\d+\.\d+ \[[^\]]*\] "([^"]*)"(?: "([^"]*)")?/.exec(line);
      if (m !== null) onCommand(m[1] ?? '', m[2] ?? '');
    }
  });
  socket.write('MONITOR\r\n');
  await ok;
}

const servicesIn = (registry: RedisRegistry, nodeId: string): string[] | undefined =>
  registry
    .view()
    .get(nodeId)
    ?.services.map((s) => s.contract.name);

test('a change to one node record reaches every other node with one read of that record and none of the others', await redisTest(), async (t) => {
  const defer = cleanupStack(t);
  const prefix = uniquePrefix();
  const keys = registryKeys(prefix);
  defer(() => dropPrefix(prefix));
  // Heartbeats far apart: what the test sees is the change alone.
  const [ttlMs, heartbeatMs] = [120000, 60000];
  const a = await member(defer, prefix, ttlMs, heartbeatMs, recordOf('node-a', ['IOne']));
  const b = await member(defer, prefix, ttlMs, heartbeatMs, recordOf('node-b', ['ITwo']));
  const watchers = [b, await observer(defer, REDIS_URL, prefix, ttlMs, heartbeatMs), await observer(defer, REDIS_URL, prefix, ttlMs, heartbeatMs)];
  await eventually(() => watchers.every((w) => w.view().has('node-a') && w.view().has('node-b')), 5000, 'every view with both nodes');

  const raw = rawRedis(defer, REDIS_URL);
  const reads = new Map<string, number>();
  let marked = false;
  const mark = `${keys.tag}:monitor-mark`;
  await monitorRedis(defer, (command, key) => {
    if (key === mark) marked = true;
    if (key.startsWith(keys.node('')) && ['get', 'mget', 'hget', 'hmget', 'hgetall'].includes(command.toLowerCase())) {
      reads.set(key, (reads.get(key) ?? 0) + 1);
    }
  });

  await a.register(recordOf('node-a', ['IOne', 'IThree']));

  await eventually(() => watchers.every((w) => servicesIn(w, 'node-a')?.includes('IThree') === true), 5000, 'the change in every view');
  // MONITOR reports commands in the order Redis ran them: once the mark is seen, so is every read before it.
  await raw.get(mark);
  await eventually(() => marked, 5000, 'the monitor to catch up');
  assert.deepEqual(Object.fromEntries(reads), { [keys.node('node-a')]: watchers.length }, 'one read of the changed record per watching node');
});

test('a heartbeat refreshes the record TTL without writing the record again', await redisTest(), async (t) => {
  const defer = cleanupStack(t);
  const prefix = uniquePrefix();
  const keys = registryKeys(prefix);
  defer(() => dropPrefix(prefix));
  await member(defer, prefix, 1500, 300, recordOf('node-a', ['IOne']));
  const raw = rawRedis(defer, REDIS_URL);
  const key = keys.node('node-a');
  const version = await raw.hget(key, 'v');
  // Changed behind the node's back: a heartbeat that rewrote the record would put the original back.
  const altered = JSON.stringify(recordOf('node-a', ['IAlteredInRedis']));
  await raw.hset(key, 'r', altered);
  // When the TTL runs out (PEXPIRETIME, ms on Redis's clock): a refresh moves it later.
  const expiresAt = async (): Promise<number> => Number(await raw.call('PEXPIRETIME', key));
  const expiryAfterAltering = await expiresAt();

  await eventually(async () => (await expiresAt()) > expiryAfterAltering, 5000, 'a heartbeat to refresh the TTL');

  assert.equal(await raw.hget(key, 'r'), altered, 'the record as it was left');
  assert.equal(await raw.hget(key, 'v'), version, 'the same version');
  assert.notEqual(await raw.zscore(keys.alive, 'node-a'), null);
});

test('an announcement older than the record a node holds does not replace it', await redisTest(), async (t) => {
  const defer = cleanupStack(t);
  const prefix = uniquePrefix();
  const keys = registryKeys(prefix);
  defer(() => dropPrefix(prefix));
  const [ttlMs, heartbeatMs] = [120000, 60000];
  const first = recordOf('node-a', ['IOld']);
  const a = await member(defer, prefix, ttlMs, heartbeatMs, first);
  const raw = rawRedis(defer, REDIS_URL);
  const v1 = Number(await raw.hget(keys.node('node-a'), 'v'));
  await a.register(recordOf('node-a', ['INew']));
  const v2 = Number(await raw.hget(keys.node('node-a'), 'v'));
  const b = await observer(defer, REDIS_URL, prefix, ttlMs, heartbeatMs);
  assert.deepEqual(servicesIn(b, 'node-a'), ['INew']);
  const seen: (string[] | undefined)[] = [];
  b.onChange(() => seen.push(servicesIn(b, 'node-a')));

  // As a late writer or a stale load would leave things: the older record back in Redis, announced
  // with its own version, with a newer one it does not have, and an old leave.
  await raw.hset(keys.node('node-a'), 'v', String(v1), 'r', JSON.stringify(first));
  const changes = Number(await raw.get(keys.changes));
  await raw.publish(keys.channel, `up node-a ${v1} ${changes + 1}`);
  await raw.publish(keys.channel, `up node-a ${v2 + 1} ${changes + 2}`);
  await raw.publish(keys.channel, `down node-a ${v1} ${changes + 3}`);
  // Then a real change: once it is in the view, the announcements before it were handled.
  await a.register(recordOf('node-a', ['INewest']));

  await eventually(() => servicesIn(b, 'node-a')?.[0] === 'INewest', 5000, 'the newest record in the view');
  assert.deepEqual(seen, [['INewest']], 'no view in between held the older record or lacked the node');
});

test('a node whose record Redis lost writes it again, and every view has it', await redisTest(), async (t) => {
  const defer = cleanupStack(t);
  const prefix = uniquePrefix();
  const keys = registryKeys(prefix);
  defer(() => dropPrefix(prefix));
  const a = await member(defer, prefix, 1500, 300, recordOf('node-a', ['IOne']));
  let recovered = 0;
  a.onRecovered(() => (recovered += 1));
  const b = await observer(defer, REDIS_URL, prefix, 1500, 300);
  assert.ok(b.view().has('node-a'));
  const raw = rawRedis(defer, REDIS_URL);

  await dropPrefix(prefix);

  await eventually(async () => (await raw.hget(keys.node('node-a'), 'r')) !== null, 5000, 'the record written again');
  assert.notEqual(await raw.zscore(keys.alive, 'node-a'), null);
  assert.notEqual(await raw.hget(keys.versions, 'node-a'), null);
  assert.ok(recovered >= 1, 'the node was told, so its parts write their state again');
  await eventually(() => b.view().has('node-a'), 5000, 'the node in the other view');
  const fresh = await observer(defer, REDIS_URL, prefix, 1500, 300);
  assert.deepEqual(servicesIn(fresh, 'node-a'), ['IOne']);
});
