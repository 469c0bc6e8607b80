/**
 * Cluster-wide WebSocket push across processes sharing Redis: two gateways,
 * two WebSocket hosts and a service process with no services of its own,
 * with real SIGKILLs of hosts and gateways; on each kind of Redis (one
 * server, a Redis Cluster, Sentinel) except the frame-count test.
 */
import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import type { NodeStats } from '../src/index.js';
import { directoryUnit, serviceKeys } from '../src/redis/keys.js';
import { shardOf } from '../src/util/hash-ring.js';
import { controlNode, dropPrefix, rawClient, type NodeControl } from './fixtures/node-control.js';
import { ENGINE_KINDS, engineLabel, engineTest, engines, type EngineKind } from './fixtures/redis-engines.js';
import { connectWs, eventually, httpJson, redisTest, spawnNode, uniquePrefix, type NodeProcess, type OpenedClient } from './helpers/index.js';

const redis = engines();

/** Short TTLs keep a dead node's stay in the views short; the heartbeat keeps live ones well inside theirs. */
const FAST = { WEFT_TTL_MS: '2000', WEFT_HEARTBEAT_MS: '500' };

interface Gw {
  proc: NodeProcess;
  control: NodeControl;
  url: string;
  wsUrl: string;
}

interface WsCluster {
  prefix: string;
  /** WEFT_REDIS_URL of the test's Redis. */
  url: string;
  hosts: [NodeProcess, NodeProcess];
  hostControls: [NodeControl, NodeControl];
  gw1: Gw;
  gw2: Gw;
  /** The service process with no services: it calls IChatAppService through its proxy. */
  caller: NodeControl;
  /** Opens a client on a gateway; closed after the test. */
  connect(gw: Gw, businessId: string): Promise<OpenedClient>;
}

async function startWsCluster(t: TestContext, kind: EngineKind = 'redis'): Promise<WsCluster> {
  const { url } = await redis.get(kind);
  const prefix = uniquePrefix();
  const procs: NodeProcess[] = [];
  const clients: OpenedClient[] = [];
  t.after(async () => {
    for (const c of clients) c.ws.terminate();
    await Promise.all(procs.map((p) => p.kill()));
    await dropPrefix(prefix, url);
  });
  const env = { ...FAST, WEFT_PREFIX: prefix, WEFT_REDIS_URL: url };
  const spawned = await Promise.all([
    spawnNode({ ...env, WEFT_ROLE: 'host', WEFT_SERVICES: 'test,chat', WEFT_NAME: 'hA' }),
    spawnNode({ ...env, WEFT_ROLE: 'host', WEFT_SERVICES: 'test,chat', WEFT_NAME: 'hB' }),
    spawnNode({ ...env, WEFT_ROLE: 'gateway', WEFT_NAME: 'gw1' }),
    spawnNode({ ...env, WEFT_ROLE: 'gateway', WEFT_NAME: 'gw2' }),
    spawnNode({ ...env, WEFT_ROLE: 'host', WEFT_SERVICES: '', WEFT_NAME: 'caller' }),
  ]);
  procs.push(...spawned);
  const [hA, hB, g1, g2, callerProc] = spawned;
  const gw = (proc: NodeProcess): Gw => ({
    proc,
    control: controlNode(proc),
    url: `http://127.0.0.1:${proc.info.httpPort}`,
    wsUrl: `ws://127.0.0.1:${proc.info.httpPort}`,
  });
  const cluster: WsCluster = {
    prefix,
    url,
    hosts: [hA, hB],
    hostControls: [controlNode(hA), controlNode(hB)],
    gw1: gw(g1),
    gw2: gw(g2),
    caller: controlNode(callerProc),
    async connect(gateway, businessId) {
      const client = await connectWs(`${gateway.wsUrl}/api/chat?businessId=${encodeURIComponent(businessId)}`);
      clients.push(client);
      return client;
    },
  };
  // Ready when both gateways and the caller reach both hosts.
  const hostIds = [hA.info.nodeId, hB.info.nodeId];
  const reachesBoth = async (ask: () => Promise<string | undefined>, what: string): Promise<void> => {
    const seen = new Set<string>();
    await eventually(
      async () => {
        const who = await ask();
        if (who !== undefined) seen.add(who);
        return hostIds.every((id) => seen.has(id));
      },
      15000,
      what,
    );
  };
  const viaHttp = (g: Gw) => async () => {
    const r = await httpJson(`${g.url}/api/test/whoami`);
    return r.status === 200 ? (r.body.result as string) : undefined;
  };
  await Promise.all([
    reachesBoth(viaHttp(cluster.gw1), 'gateway 1 reaching both hosts'),
    reachesBoth(viaHttp(cluster.gw2), 'gateway 2 reaching both hosts'),
    reachesBoth(async () => {
      const r = await cluster.caller.call('ITestAppService', 'whoami', []);
      return r.ok ? (r.value as string) : undefined;
    }, 'the caller reaching both hosts'),
  ]);
  return cluster;
}

/** `IChatAppService.<method>` through a gateway's HTTP route; the result, or throws with the body. */
async function chatHttp(g: Gw, method: string, query: Record<string, string>): Promise<unknown> {
  const r = await httpJson(`${g.url}/api/chat/${method}?${new URLSearchParams(query).toString()}`);
  if (r.status !== 200) throw new Error(`${method} via HTTP: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body.result;
}

async function chatProxy(caller: NodeControl, method: string, args: unknown[]): Promise<unknown> {
  const r = await caller.call('IChatAppService', method, args);
  if (!r.ok) throw new Error(`${method} via the proxy: ${r.code} ${r.message}`);
  return r.value;
}

/**
 * Counts through each route twice in a row (round-robin: both hosts answer);
 * `count(undefined)` is every session of the service.
 */
async function counts(routes: (Gw | NodeControl)[], businessId?: string): Promise<number[]> {
  const out: number[] = [];
  for (const route of routes) {
    for (let i = 0; i < 2; i++) {
      if ('url' in route) out.push((await chatHttp(route, 'count', businessId === undefined ? {} : { businessId })) as number);
      else out.push((await chatProxy(route, 'count', businessId === undefined ? [] : [businessId])) as number);
    }
  }
  return out;
}

async function countsSettle(routes: (Gw | NodeControl)[], businessId: string | undefined, expected: number, what: string): Promise<void> {
  await eventually(async () => (await counts(routes, businessId)).every((n) => n === expected), 15000, what);
}

function pushFrames(stats: NodeStats): { business: number; session: number; all: number } {
  const f = stats.framesReceived;
  const business = f['PushBusiness'] ?? 0;
  const session = f['PushSession'] ?? 0;
  return { business, session, all: business + session + (f['PushService'] ?? 0) };
}

for (const kind of ENGINE_KINDS) {
  test(
    `delivers a push to every session of a businessId on both gateways, whichever node pushes ${engineLabel(kind)}`,
    await engineTest(kind),
    async (t) => {
      const c = await startWsCluster(t, kind);
      const mine = [await c.connect(c.gw1, 'b'), await c.connect(c.gw1, 'b'), await c.connect(c.gw2, 'b')];
      const other = await c.connect(c.gw1, 'other');
      await countsSettle([c.gw1, c.gw2, c.caller], 'b', 3, 'every host counting the three sessions of b');

      // (a) through gateway 1's HTTP routes, (b) through gateway 2's, (c) from a service process's proxy;
      // two pushes in a row from one place are run by the two hosts in turn.
      assert.equal(await chatHttp(c.gw1, 'echo', { businessId: 'b', msg: 'e1' }), 3);
      assert.equal(await chatHttp(c.gw1, 'push', { businessId: 'b', msg: 'p1a' }), 3);
      assert.equal(await chatHttp(c.gw1, 'push', { businessId: 'b', msg: 'p1b' }), 3);
      assert.equal(await chatHttp(c.gw2, 'echo', { businessId: 'b', msg: 'e2' }), 3);
      assert.equal(await chatHttp(c.gw2, 'push', { businessId: 'b', msg: 'p2a' }), 3);
      assert.equal(await chatHttp(c.gw2, 'push', { businessId: 'b', msg: 'p2b' }), 3);
      assert.equal(await chatProxy(c.caller, 'push', ['b', 'p3a']), 3);
      assert.equal(await chatProxy(c.caller, 'push', ['b', 'p3b']), 3);

      const echoIds = new Set<string>();
      for (const client of mine) {
        const got = await client.waitFor(8);
        assert.deepEqual(
          got.filter((m) => m.startsWith('p')),
          ['p1a', 'p1b', 'p2a', 'p2b', 'p3a', 'p3b'],
        );
        const echoes = got.filter((m) => m.startsWith('message:'));
        assert.equal(echoes.length, 2, JSON.stringify(got));
        const [e1, e2] = echoes.map((m) => /^message:(e[12]),sessionId:(.+)$/.exec(m));
        assert.equal(e1?.[1], 'e1');
        assert.equal(e2?.[1], 'e2');
        assert.equal(e1?.[2], e2?.[2], "both echoes name the same session: this client's");
        echoIds.add(e1[2]!);
      }
      assert.equal(echoIds.size, 3, 'each client got the echo for its own session');
      // A session of another businessId got none of it (checked after a push of its own has arrived).
      assert.equal(await chatProxy(c.caller, 'push', ['other', 'yours']), 1);
      await other.waitFor(1);
      assert.deepEqual(other.messages, ['yours']);
    },
  );

  test(
    `closes the sessions of a killed host with 1011 or 1012, drops them from the directory, and lets clients reconnect ${engineLabel(kind)}`,
    await engineTest(kind),
    async (t) => {
      const c = await startWsCluster(t, kind);
      const [hA] = c.hosts;
      const [statsA, statsB] = c.hostControls;
      // One session per gateway for each businessId, until both hosts hold some (a businessId's sessions share a host).
      const sessions: { businessId: string; gw: Gw; client: OpenedClient; closed?: number }[] = [];
      let openedOnA = 0;
      for (let i = 0; i < 40; i++) {
        const businessId = `k${i}`;
        for (const gw of [c.gw1, c.gw2]) sessions.push({ businessId, gw, client: await c.connect(gw, businessId) });
        const [a, b] = await Promise.all([statsA.stats(), statsB.stats()]);
        openedOnA = a.framesReceived['SessionOpen'] ?? 0;
        if (openedOnA > 0 && (b.framesReceived['SessionOpen'] ?? 0) > 0) break;
      }
      assert.ok(openedOnA > 0 && openedOnA < sessions.length, 'both hosts hold sessions');
      t.diagnostic(`${openedOnA} of ${sessions.length} sessions on the host to be killed`);
      for (const s of sessions) void s.client.closed.then(({ code }) => (s.closed = code));
      const total = sessions.length;
      await countsSettle([c.gw1, c.gw2], undefined, total, 'every host listing every session');

      await hA.kill();

      await eventually(
        () => sessions.filter((s) => s.closed !== undefined).length === openedOnA,
        15000,
        "the gateways closing the dead host's sessions",
      );
      const lost = sessions.filter((s) => s.closed !== undefined);
      for (const s of lost) assert.ok(s.closed === 1011 || s.closed === 1012, `closed with ${s.closed}`);
      await countsSettle([c.gw1, c.gw2, c.caller], undefined, total - openedOnA, "the directory dropping the dead host's sessions");
      assert.ok(
        sessions.every((s) => s.closed !== undefined || s.client.ws.readyState === s.client.ws.OPEN),
        'sessions on the live host stay open',
      );

      // The clients reconnect (the dead host may still be in the views: a refused handshake is retried) and get pushes again.
      const back: OpenedClient[] = [];
      for (const s of lost) back.push(await eventually(() => c.connect(s.gw, s.businessId), 15000, `reconnecting ${s.businessId}`));
      await countsSettle([c.gw1, c.gw2, c.caller], undefined, total, 'the reconnected sessions listed');
      const lostIds = [...new Set(lost.map((s) => s.businessId))];
      for (const businessId of lostIds) assert.equal(await chatProxy(c.caller, 'push', [businessId, `again ${businessId}`]), 2);
      for (const [i, client] of back.entries()) {
        await client.waitFor(1);
        assert.deepEqual(client.messages, [`again ${lost[i]!.businessId}`]);
      }
    },
  );

  test(
    `drops the sessions of a killed gateway from the directory and counts only live sessions as delivered ${engineLabel(kind)}`,
    await engineTest(kind),
    async (t) => {
      const c = await startWsCluster(t, kind);
      const raw = rawClient(c.url);
      t.after(() => raw.disconnect());
      const live = [await c.connect(c.gw1, 'g'), await c.connect(c.gw1, 'g')];
      const doomed = await c.connect(c.gw2, 'g');
      await countsSettle([c.gw1, c.gw2, c.caller], 'g', 3, 'every host counting the three sessions');
      const gw2Id = c.gw2.proc.info.nodeId;
      const gw2Entries = async (): Promise<number> =>
        Object.values(await raw.hgetall(serviceKeys(c.prefix, directoryUnit('IChatAppService', shardOf('g'))).sessions)).filter((v) =>
          v.startsWith(`${gw2Id}\n`),
        ).length;
      assert.equal(await gw2Entries(), 1);

      await c.gw2.proc.kill();
      await doomed.closed;

      await countsSettle([c.gw1, c.caller], 'g', 2, "the directory counting only the live gateway's sessions");
      await eventually(async () => (await gw2Entries()) === 0, 15000, "the dead gateway's entries removed from Redis");
      assert.equal(await chatProxy(c.caller, 'push', ['g', 'still here']), 2);
      assert.equal(await chatHttp(c.gw1, 'push', { businessId: 'g', msg: 'still here, 2' }), 2);
      assert.equal(await chatHttp(c.gw1, 'push', { businessId: 'g', msg: 'still here, 3' }), 2);
      for (const client of live) assert.deepEqual(await client.waitFor(3), ['still here', 'still here, 2', 'still here, 3']);
    },
  );
}

test(
  'sends a push for one businessId only to the gateway that holds its sessions, and none for a businessId without sessions',
  await redisTest(),
  async (t) => {
    const c = await startWsCluster(t);
    const onGw1 = [await c.connect(c.gw1, 'x'), await c.connect(c.gw1, 'x')];
    // Gateway 2 holds sessions of the same service, only not of x.
    const onGw2 = await c.connect(c.gw2, 'y');
    await countsSettle([c.gw1, c.gw2, c.caller], 'x', 2, 'every host counting the sessions of x');
    await countsSettle([c.gw1, c.gw2, c.caller], 'y', 1, 'every host counting the session of y');

    const [before1, before2] = (await Promise.all([c.gw1.control.stats(), c.gw2.control.stats()])).map(pushFrames) as [
      ReturnType<typeof pushFrames>,
      ReturnType<typeof pushFrames>,
    ];
    // Every push resolves after the gateways it went to have answered, so the counters below are final.
    assert.equal(await chatProxy(c.caller, 'push', ['x', 'x1']), 2);
    assert.equal(await chatHttp(c.gw1, 'push', { businessId: 'x', msg: 'x2' }), 2);
    assert.equal(await chatHttp(c.gw2, 'push', { businessId: 'x', msg: 'x3' }), 2);
    assert.equal(await chatHttp(c.gw2, 'echo', { businessId: 'x', msg: 'x4' }), 2);
    const [after1, after2] = (await Promise.all([c.gw1.control.stats(), c.gw2.control.stats()])).map(pushFrames) as [
      ReturnType<typeof pushFrames>,
      ReturnType<typeof pushFrames>,
    ];
    assert.equal(after1.business - before1.business, 3, 'one PushBusiness frame per push, to gateway 1');
    assert.equal(after1.session - before1.session, 2, 'one PushSession frame per session of the echo, to gateway 1');
    assert.deepEqual(after2, before2, 'gateway 2 received no push frame');
    for (const client of onGw1) assert.equal((await client.waitFor(4)).length, 4);

    // No sessions: no push frame anywhere, and 0 (or the seed's business error for echo).
    assert.equal(await chatProxy(c.caller, 'push', ['nobody', 'n1']), 0);
    assert.equal(await chatHttp(c.gw1, 'push', { businessId: 'nobody', msg: 'n2' }), 0);
    assert.equal(await chatHttp(c.gw2, 'push', { businessId: 'nobody', msg: 'n3' }), 0);
    const echo = await httpJson(`${c.gw1.url}/api/chat/echo?businessId=nobody&msg=n4`);
    assert.equal(echo.status, 400);
    assert.equal(echo.body.code, 'BusinessError');
    const [final1, final2] = (await Promise.all([c.gw1.control.stats(), c.gw2.control.stats()])).map(pushFrames);
    assert.deepEqual(final1, after1, 'gateway 1 received no push frame for a businessId without sessions');
    assert.deepEqual(final2, after2, 'gateway 2 received no push frame for a businessId without sessions');
    // Gateway 2 still delivers what is meant for it.
    assert.equal(await chatProxy(c.caller, 'push', ['y', 'y1']), 1);
    assert.deepEqual(await onGw2.waitFor(1), ['y1']);
  },
);
