/**
 * RPC across processes sharing Redis: hosts, a gateway and callers each in
 * their own process, with real SIGKILLs and graceful stops. The failover
 * tests run on each kind of Redis: one server, a Redis Cluster, Sentinel.
 */
import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { registryKeys } from '../src/redis/keys.js';
import { eventually, httpJson, redisTest, spawnNode, uniquePrefix, type NodeProcess } from './helpers/index.js';
import { controlNode, dropPrefix, rawClient, type CallOutcome, type NodeControl } from './fixtures/node-control.js';
import { ENGINE_KINDS, engineLabel, engineTest, engines, type EngineKind } from './fixtures/redis-engines.js';

const redis = engines();

/** Short TTLs keep a dead node's stay in the views short; the heartbeat keeps live ones well inside theirs. */
const FAST = { WEFT_TTL_MS: '2000', WEFT_HEARTBEAT_MS: '500' };

/** One test's Redis, prefix and processes: after the test every process is killed, then the prefix's keys go. */
interface Scope {
  prefix: string;
  /** WEFT_REDIS_URL of the test's Redis. */
  url: string;
  procs: NodeProcess[];
}

async function scope(t: TestContext, kind: EngineKind = 'redis'): Promise<Scope> {
  const engine = await redis.get(kind);
  const sc: Scope = { prefix: uniquePrefix(), url: engine.url, procs: [] };
  t.after(async () => {
    await Promise.all(sc.procs.map((p) => p.kill()));
    await dropPrefix(sc.prefix, sc.url);
  });
  return sc;
}

interface Started {
  hosts: NodeProcess[];
  gateway: NodeProcess;
  url: string;
}

/** Hosts of ITestAppService and a gateway, each its own process; killed after the test. */
async function startCluster(sc: Scope, hostCount: number, hostEnv: Record<string, string> = {}): Promise<Started> {
  const env = { ...FAST, WEFT_PREFIX: sc.prefix, WEFT_REDIS_URL: sc.url };
  const spawned = await Promise.all([
    ...Array.from({ length: hostCount }, (_, i) =>
      spawnNode({ ...env, ...hostEnv, WEFT_ROLE: 'host', WEFT_SERVICES: 'test', WEFT_NAME: `h${i + 1}` }),
    ),
    spawnNode({ ...env, WEFT_ROLE: 'gateway', WEFT_NAME: 'gw' }),
  ]);
  sc.procs.push(...spawned);
  const gateway = spawned[spawned.length - 1]!;
  return { hosts: spawned.slice(0, hostCount), gateway, url: `http://127.0.0.1:${gateway.info.httpPort}` };
}

/** A process with no services that calls through its typed proxy; killed after the test. */
async function startCaller(sc: Scope, extra: Record<string, string> = {}): Promise<{ proc: NodeProcess; control: NodeControl }> {
  const proc = await spawnNode({
    ...FAST,
    WEFT_PREFIX: sc.prefix,
    WEFT_REDIS_URL: sc.url,
    WEFT_ROLE: 'host',
    WEFT_SERVICES: '',
    WEFT_NAME: 'caller',
    ...extra,
  });
  sc.procs.push(proc);
  return { proc, control: controlNode(proc) };
}

/** Waits until `whoami` through `ask` has been answered by every one of `nodeIds`. */
async function waitForAll(ask: () => Promise<string | undefined>, nodeIds: string[], what: string): Promise<void> {
  const seen = new Set<string>();
  await eventually(
    async () => {
      const who = await ask();
      if (who !== undefined) seen.add(who);
      return nodeIds.every((id) => seen.has(id));
    },
    15000,
    what,
  );
}

async function whoamiHttp(url: string): Promise<string | undefined> {
  const r = await httpJson(`${url}/api/test/whoami`);
  return r.status === 200 ? (r.body.result as string) : undefined;
}

async function whoamiProxy(control: NodeControl): Promise<string | undefined> {
  const r = await control.call('ITestAppService', 'whoami', []);
  return r.ok ? (r.value as string) : undefined;
}

interface StreamResult {
  /** Per call: who answered (and whether the call began after the victim was dead), or the failure. */
  outcomes: ({ ok: true; who: string; afterKill: boolean } | { ok: false; detail: string })[];
}

/**
 * Runs `total` calls, `concurrency` at a time; once `killAt` have finished,
 * kills `victim` (SIGKILL) while the stream goes on.
 */
async function streamWithKill(
  total: number,
  concurrency: number,
  killAt: number,
  victim: NodeProcess,
  one: (i: number) => Promise<{ ok: true; who: string } | { ok: false; detail: string }>,
): Promise<StreamResult> {
  const outcomes: StreamResult['outcomes'] = [];
  let next = 0;
  let finished = 0;
  let killed = false;
  let killing: Promise<void> | undefined;
  const worker = async (): Promise<void> => {
    while (next < total) {
      const i = next++;
      const startedAfterKill = killed;
      const r = await one(i);
      outcomes[i] = r.ok ? { ok: true, who: r.who, afterKill: startedAfterKill } : r;
      finished += 1;
      if (finished === killAt) killing = victim.kill().then(() => void (killed = true));
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  await killing;
  return { outcomes };
}

function failuresOf(result: StreamResult): string[] {
  return result.outcomes.flatMap((o, i) => (o.ok ? [] : [`call ${i}: ${o.detail}`]));
}

for (const kind of ENGINE_KINDS) {
  test(`answers HTTP calls through the gateway from both hosts of a service ${engineLabel(kind)}`, await engineTest(kind), async (t) => {
    const { hosts, url } = await startCluster(await scope(t, kind), 2);
    const ids = hosts.map((h) => h.info.nodeId);
    await waitForAll(() => whoamiHttp(url), ids, 'both hosts answering through the gateway');
    // Round-robin: a run of calls is shared by both hosts.
    const answered = new Map<string, number>();
    for (let i = 0; i < 20; i++) {
      const who = await whoamiHttp(url);
      assert.ok(who !== undefined && ids.includes(who), `answered by ${who}`);
      answered.set(who, (answered.get(who) ?? 0) + 1);
    }
    // And every answer is the right one, whichever host gave it.
    for (let i = 0; i < 10; i++) {
      const r = await httpJson(`${url}/api/test/echo?value=v${i}`);
      assert.equal(r.status, 200, JSON.stringify(r.body));
      assert.equal(r.body.result, `v${i}`);
    }
    assert.deepEqual([...answered.keys()].sort(), [...ids].sort());
  });
}

/** Every one of 300 calls succeeded; the killed host answered some before it died, the live one every call after. */
function assertFailedOver(t: TestContext, result: Awaited<ReturnType<typeof streamWithKill>>, killed: NodeProcess, live: NodeProcess): void {
  assert.deepEqual(failuresOf(result), []);
  const answers = result.outcomes.flatMap((o) => (o.ok ? [o] : []));
  assert.equal(answers.length, 300);
  assert.ok(
    answers.some((a) => a.who === killed.info.nodeId && !a.afterKill),
    'the killed host answered calls before it died',
  );
  const afterKill = answers.filter((a) => a.afterKill);
  t.diagnostic(`${afterKill.length} of 300 calls began after the kill`);
  assert.ok(afterKill.length > 0, 'calls were still starting after the kill');
  assert.ok(
    afterKill.every((a) => a.who === live.info.nodeId),
    'every call begun after the kill was answered by the live host',
  );
}

for (const kind of ENGINE_KINDS) {
  test(
    `keeps every HTTP call through the gateway succeeding when a host is killed mid-stream ${engineLabel(kind)}`,
    await engineTest(kind),
    async (t) => {
      const { hosts, url } = await startCluster(await scope(t, kind), 2);
      const [h1, h2] = hosts as [NodeProcess, NodeProcess];
      await waitForAll(() => whoamiHttp(url), [h1.info.nodeId, h2.info.nodeId], 'both hosts answering through the gateway');

      const result = await streamWithKill(300, 4, 60, h1, async (i) => {
        try {
          const r = await httpJson(`${url}/api/test/slow?ms=2`);
          if (r.status !== 200) return { ok: false, detail: `HTTP ${r.status} ${JSON.stringify(r.body)}` };
          return { ok: true, who: r.body.result as string };
        } catch (e) {
          return { ok: false, detail: `request ${i} failed: ${(e as Error).message}` };
        }
      });

      assertFailedOver(t, result, h1, h2);
    },
  );

  test(
    `keeps every proxy call from another process succeeding when a host is killed mid-stream ${engineLabel(kind)}`,
    await engineTest(kind),
    async (t) => {
      const sc = await scope(t, kind);
      const { hosts } = await startCluster(sc, 2);
      const [h1, h2] = hosts as [NodeProcess, NodeProcess];
      const { control } = await startCaller(sc);
      await waitForAll(() => whoamiProxy(control), [h1.info.nodeId, h2.info.nodeId], 'both hosts answering the caller');

      const result = await streamWithKill(300, 4, 60, h1, async (i) => {
        const r: CallOutcome = await control.call('ITestAppService', 'slow', [2]);
        return r.ok ? { ok: true, who: r.value as string } : { ok: false, detail: `call ${i}: ${r.code} ${r.message}` };
      });

      assertFailedOver(t, result, h1, h2);
    },
  );
}

test('finishes the calls in flight on a gracefully stopped host and sends later calls to the other host', await redisTest(), async (t) => {
  const sc = await scope(t);
  const prefix = sc.prefix;
  const { hosts, url } = await startCluster(sc, 2, { WEFT_STOP_MS: '15000' });
  const [h1, h2] = hosts as [NodeProcess, NodeProcess];
  const c1 = controlNode(h1);
  const c2 = controlNode(h2);
  await waitForAll(() => whoamiHttp(url), [h1.info.nodeId, h2.info.nodeId], 'both hosts answering through the gateway');
  const raw = rawClient(sc.url);
  t.after(() => raw.disconnect());

  // Slow calls, shared by the two hosts; wait until every one is running somewhere.
  const SLOW = 8;
  const slowCalls = Array.from({ length: SLOW }, () => httpJson(`${url}/api/test/slow?ms=4000`));
  let onH1 = 0;
  await eventually(
    async () => {
      const [s1, s2] = await Promise.all([c1.stats(), c2.stats()]);
      onH1 = s1.callsInFlight;
      return s1.callsInFlight + s2.callsInFlight === SLOW;
    },
    10000,
    'every slow call running on a host',
  );
  assert.ok(onH1 > 0, 'some slow calls run on the host that will stop');

  const stopped = h1.stop();
  // The host tells its peers it drains, then leaves the registry; from then on calls go elsewhere.
  await eventually(async () => (await raw.exists(registryKeys(prefix).node(h1.info.nodeId))) === 0, 10000, 'the stopping host to leave the registry');
  // Its Draining frame left just before; a moment lets it land on a loaded machine (a wait, not a measurement).
  await sleep(200);
  const during: string[] = [];
  for (let i = 0; i < 10; i++) {
    const r = await httpJson(`${url}/api/test/whoami`);
    assert.equal(r.status, 200, JSON.stringify(r.body));
    during.push(r.body.result as string);
  }
  assert.equal(h1.child.exitCode, null, 'the stopping host is still finishing its calls');
  assert.deepEqual(new Set(during), new Set([h2.info.nodeId]), 'calls made while the host drains go to the other host');

  const answers = await Promise.all(slowCalls);
  for (const r of answers) assert.equal(r.status, 200, JSON.stringify(r.body));
  const byH1 = answers.filter((r) => r.body.result === h1.info.nodeId).length;
  assert.equal(byH1, onH1, 'every call in flight on the stopping host was finished there');
  assert.equal(answers.length - byH1, SLOW - onH1);

  await stopped;
  assert.equal(h1.child.exitCode, 0);
  for (let i = 0; i < 10; i++) {
    const r = await httpJson(`${url}/api/test/whoami`);
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal(r.body.result, h2.info.nodeId);
  }
});

test('refuses calls from a process that does not hold the cluster secret', await redisTest(), async (t) => {
  const sc = await scope(t);
  const { hosts } = await startCluster(sc, 1);
  const host = controlNode(hosts[0]!);
  const [intruder, member] = await Promise.all([startCaller(sc, { WEFT_SECRET: 'not-the-cluster-secret' }), startCaller(sc)]);
  const callsServed = async (): Promise<number> => (await host.stats()).framesReceived['Call'] ?? 0;
  const before = await callsServed();

  const first = await intruder.control.call('ITestAppService', 'echo', ['intrusion']);
  assert.equal(first.ok, false, 'a call without the secret must fail');
  if (!first.ok) assert.equal(first.code, 'LinkUnauthenticated', first.message);
  // Trying again does not get in either (the host is now backing off or refused again).
  for (let i = 0; i < 2; i++) {
    const r = await intruder.control.call('ITestAppService', 'echo', [`intrusion ${i}`]);
    assert.equal(r.ok, false, 'a call without the secret must fail');
  }
  assert.equal(await callsServed(), before, 'the host received no call from the intruder');

  // The same call from a process with the secret is served: the counter above would have shown it.
  const ok = await member.control.call('ITestAppService', 'echo', ['member']);
  assert.deepEqual(ok, { ok: true, value: 'member' });
  assert.equal(await callsServed(), before + 1);
});

test(
  'a call that may not run twice (POST) in flight on a host that dies fails with OutcomeUnknown; it is not run again elsewhere',
  await redisTest(),
  async (t) => {
    const { hosts, url } = await startCluster(await scope(t), 2);
    const ids = hosts.map((h) => h.info.nodeId);
    await waitForAll(() => whoamiHttp(url), ids, 'both hosts answering through the gateway');
    const [victim, survivor] = hosts as [NodeProcess, NodeProcess];
    // Round-robin spreads these over both hosts; each takes 3 s, and the victim dies after 500 ms.
    const calls = Array.from({ length: 10 }, () =>
      httpJson(`${url}/api/test/slowcreate`, { method: 'POST', body: JSON.stringify({ ms: 3000 }), headers: { 'content-type': 'application/json' } }),
    );
    await new Promise((r) => setTimeout(r, 500));
    await victim.kill();
    const results = await Promise.all(calls);
    const served = results.filter((r) => r.status === 200).map((r) => r.body.result);
    const unknown = results.filter((r) => r.body.code === 'OutcomeUnknown');
    assert.equal(served.length + unknown.length, 10, JSON.stringify(results.map((r) => [r.status, r.body.code])));
    assert.ok(unknown.length > 0, 'the calls on the killed host were in flight');
    assert.ok(
      unknown.every((r) => r.status === 502),
      'OutcomeUnknown is HTTP 502',
    );
    assert.deepEqual(new Set(served), new Set([survivor.info.nodeId]), 'only the survivor answered, and only the calls it had from the start');
    assert.equal(served.length, 10 - unknown.length);
  },
);
