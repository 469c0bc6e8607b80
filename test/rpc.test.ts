/**
 * RPC between real nodes of one memory cluster: endpoint selection, timeouts,
 * errors across the wire, failover, the concurrency limit, the circuit
 * breaker and the call context. Every link is real TCP on 127.0.0.1.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { test, type TestContext } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  BusinessException,
  Type,
  createGateway,
  createHost,
  currentContext,
  defineContract,
  implement,
  memoryCluster,
  param,
  type AnyContract,
  type Cluster,
  type Host,
  type HostOptions,
} from '../src/index.js';
import { PROTOCOL_VERSION } from '../src/protocol/frames.js';
import type { NodeRecord } from '../src/registry/registry.js';
import { ITestAppService, testService, type SeenContext } from './fixtures/services.js';
import { eventually, httpJson, quietLogger, rejection } from './helpers/index.js';

/** Methods that pick their instance in other ways, and record who served each call. */
const IProbeAppService = defineContract({
  name: 'IProbeAppService',
  methods: {
    owner: { params: [param('key', Type.String())], returns: Type.String(), select: { hashBy: 'key' } },
    pick: { params: [], returns: Type.String(), select: 'random' },
    refuse: { params: [param('reason', Type.String())] },
  },
});

function probeService(nodeName: () => string, served: string[]) {
  return implement(IProbeAppService, {
    owner: () => nodeName(),
    pick: () => nodeName(),
    refuse: (reason) => {
      served.push(nodeName());
      throw new BusinessException(reason);
    },
  });
}

/** Calls ITestAppService from inside a call, so the nested call's context can be compared. */
const IOuterAppService = defineContract({
  name: 'IOuterAppService',
  methods: {
    nested: { params: [], returns: Type.Unknown() },
  },
});

const outerService = implement(IOuterAppService, ({ proxy }) => ({
  nested: async () => {
    const ctx = currentContext();
    const inner = await proxy(ITestAppService).context();
    return { outer: { traceId: ctx?.traceId ?? '', callerNodeId: ctx?.callerNodeId ?? '' }, inner };
  },
}));

/** A contract nobody serves. */
const INobodyAppService = defineContract({
  name: 'INobodyAppService',
  methods: { ping: { params: [], returns: Type.String() } },
});

/** A call that stays in flight until the test lets it go: windows without timing. */
const IHoldAppService = defineContract({
  name: 'IHoldAppService',
  methods: { hold: { params: [], returns: Type.String() } },
});

function gate(t: TestContext): { service: ServiceFactory; release: () => void } {
  let release: () => void = () => {};
  const opened = new Promise<void>((r) => (release = r));
  t.after(() => release());
  return {
    service: (nodeName) =>
      implement(IHoldAppService, {
        hold: async () => {
          await opened;
          return nodeName();
        },
      }),
    release: () => release(),
  };
}

type ServiceFactory = (nodeName: () => string) => ReturnType<typeof implement>;

/** Starts a host serving what `services` builds (given the host's node id), stopped after the test. */
async function startHost(
  t: TestContext,
  cluster: Cluster,
  name: string,
  services: ServiceFactory[],
  options: Partial<HostOptions> = {},
): Promise<Host> {
  // Called by the services only once `host` is set.
  const nodeName = (): string => host.nodeId;
  // These tests are about what crosses a link: no direct in-process shortcut.
  const host: Host = createHost({
    cluster,
    name,
    logger: quietLogger(),
    directInProcess: false,
    services: services.map((s) => s(nodeName)),
    ...options,
  });
  await host.start();
  t.after(() => host.stop());
  return host;
}

/** A node that serves nothing: it only calls. */
function startClient(t: TestContext, cluster: Cluster, options: Partial<HostOptions> = {}): Promise<Host> {
  return startHost(t, cluster, 'client', [], options);
}

/** Publishes a node record by hand, as a node that died without deregistering leaves one behind. */
async function registerRecord(
  t: TestContext,
  cluster: Cluster,
  nodeId: string,
  address: { host: string; port: number },
  contracts: AnyContract[],
): Promise<void> {
  const { registry } = cluster.join(nodeId, quietLogger());
  await registry.start();
  const record: NodeRecord = {
    nodeId,
    role: 'host',
    address,
    services: contracts.map((c) => ({ contract: c.descriptor })),
    startedAt: Date.now(),
    protocol: PROTOCOL_VERSION,
  };
  await registry.register(record);
  t.after(() => registry.close());
}

/** A TCP server that accepts connections and never says a word; counts connections. */
async function silentServer(t: TestContext): Promise<{ port: number; connections: () => number }> {
  let connections = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    connections += 1;
    sockets.add(socket);
    socket.on('error', () => {});
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(async () => {
    for (const s of sockets) s.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return { port: (server.address() as net.AddressInfo).port, connections: () => connections };
}

/** A TCP relay to `target` that can be cut abruptly, as a crash or a network failure would. */
async function relay(target: { host: string; port: number }): Promise<{ port: number; connections: () => number; cut: () => Promise<void> }> {
  let connections = 0;
  const sockets = new Set<net.Socket>();
  const track = (s: net.Socket): void => {
    sockets.add(s);
    s.on('error', () => {});
    s.on('close', () => sockets.delete(s));
  };
  const server = net.createServer((inbound) => {
    connections += 1;
    const outbound = net.connect(target);
    track(inbound);
    track(outbound);
    inbound.pipe(outbound);
    outbound.pipe(inbound);
    inbound.on('close', () => outbound.destroy());
    outbound.on('close', () => inbound.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    connections: () => connections,
    cut: async () => {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const s of sockets) s.destroy();
      await closed;
    },
  };
}

test('a typed proxy call from one host reaches a service on another host and returns its value', async (t) => {
  const cluster = memoryCluster();
  const server = await startHost(t, cluster, 'server', [testService]);
  const client = await startClient(t, cluster);
  const api = client.proxy(ITestAppService);
  assert.equal(await api.add(2, 3), 5);
  assert.equal(await api.echo('hello'), 'hello');
  assert.equal(await api.whoami(), server.nodeId);
  assert.ok((server.stats().framesReceived['Call'] ?? 0) >= 3, 'the calls crossed the link');
});

test('round-robin spreads calls over every host of a service', async (t) => {
  const cluster = memoryCluster();
  const a = await startHost(t, cluster, 'a', [testService]);
  const b = await startHost(t, cluster, 'b', [testService]);
  const client = await startClient(t, cluster);
  const counts = new Map<string, number>();
  for (let i = 0; i < 20; i++) {
    const who = await client.proxy(ITestAppService).whoami();
    counts.set(who, (counts.get(who) ?? 0) + 1);
  }
  assert.deepEqual([...counts.keys()].sort(), [a.nodeId, b.nodeId].sort());
  assert.equal(counts.get(a.nodeId)! + counts.get(b.nodeId)!, 20);
});

test('select hashBy sends the same key to the same host every time', async (t) => {
  const cluster = memoryCluster();
  const hosts = [
    await startHost(t, cluster, 'a', [(n) => probeService(n, [])]),
    await startHost(t, cluster, 'b', [(n) => probeService(n, [])]),
    await startHost(t, cluster, 'c', [(n) => probeService(n, [])]),
  ];
  const client = await startClient(t, cluster);
  const probe = client.proxy(IProbeAppService);
  const owners = new Set<string>();
  for (let k = 0; k < 20; k++) {
    const key = `customer-${k}`;
    const first = await probe.owner(key);
    owners.add(first);
    for (let i = 0; i < 4; i++) assert.equal(await probe.owner(key), first, `key ${key} moved to another host`);
  }
  // Consistent hashing still spreads keys: 20 keys do not all land on one of three hosts.
  assert.ok(owners.size >= 2, `all keys went to ${[...owners].join(',')}`);
  for (const owner of owners) assert.ok(hosts.some((h) => h.nodeId === owner));
});

test('random selection picks only live hosts', async (t) => {
  const cluster = memoryCluster();
  const a = await startHost(t, cluster, 'a', [(n) => probeService(n, [])]);
  const b = await startHost(t, cluster, 'b', [(n) => probeService(n, [])]);
  const gone = await startHost(t, cluster, 'gone', [(n) => probeService(n, [])]);
  const client = await startClient(t, cluster);
  await gone.stop();
  const seen = new Set<string>();
  for (let i = 0; i < 40; i++) seen.add(await client.proxy(IProbeAppService).pick());
  assert.ok(!seen.has(gone.nodeId), 'a stopped host was picked');
  assert.deepEqual([...seen].sort(), [a.nodeId, b.nodeId].sort());
});

test('a call that outlives its timeout fails with code Timeout', async (t) => {
  const cluster = memoryCluster();
  const held = gate(t);
  await startHost(t, cluster, 'server', [testService, held.service]);
  const client = await startClient(t, cluster, { callTimeoutMs: 150 });
  const viaDefault = await rejection(client.proxy(IHoldAppService).hold());
  assert.equal(viaDefault.code, 'Timeout');
  const viaCallOptions = await rejection(client.proxy(IHoldAppService, { timeoutMs: 100 }).hold());
  assert.equal(viaCallOptions.code, 'Timeout');
  // The host is still fine: a quick call answers.
  assert.equal(await client.proxy(ITestAppService, { timeoutMs: 10_000 }).echo('after'), 'after');
  held.release();
});

test('a business error is not failed over and arrives with code BusinessError and its message', async (t) => {
  const cluster = memoryCluster();
  const served: string[] = [];
  await startHost(t, cluster, 'a', [(n) => probeService(n, served)]);
  await startHost(t, cluster, 'b', [(n) => probeService(n, served)]);
  const client = await startClient(t, cluster);
  for (let i = 1; i <= 4; i++) {
    const error = await rejection(client.proxy(IProbeAppService).refuse(`no stock for order ${i}`));
    assert.equal(error.code, 'BusinessError');
    assert.equal(error.message, `no stock for order ${i}`);
    assert.equal(served.length, i, 'exactly one host saw each call');
  }
});

test('invalid arguments arrive as ValidateError naming each bad field', async (t) => {
  const cluster = memoryCluster();
  const server = await startHost(t, cluster, 'server', [testService]);
  const client = await startClient(t, cluster);
  // Untyped on purpose: the proxy's types would refuse these arguments at compile time.
  const add = client.proxy(ITestAppService).add as unknown as (...args: unknown[]) => Promise<number>;
  const error = await rejection(add('x', 1.5));
  assert.equal(error.code, 'ValidateError');
  const fields = (error.validErrors ?? []).flatMap((v) => v.memberNames);
  assert.ok(fields.includes('a'), `validErrors: ${JSON.stringify(error.validErrors)}`);
  assert.ok(fields.includes('b'), `validErrors: ${JSON.stringify(error.validErrors)}`);
  assert.ok((server.stats().framesReceived['Call'] ?? 0) >= 1, 'validation happened on the serving host');
});

test('a plain Error thrown by a service arrives as ServerError with a generic message', async (t) => {
  const cluster = memoryCluster();
  await startHost(t, cluster, 'server', [testService]);
  const client = await startClient(t, cluster);
  const error = await rejection(client.proxy(ITestAppService).throwPlain());
  assert.equal(error.code, 'ServerError');
  assert.doesNotMatch(error.message, /secret|internal detail|\/srv\/app\.js/);
  assert.equal(error.data, undefined);
  assert.equal(error.cause, undefined, 'nothing of the original error crossed the wire');
});

test('after one of two hosts stops, later calls keep succeeding on the other', async (t) => {
  const cluster = memoryCluster();
  const a = await startHost(t, cluster, 'a', [testService]);
  const b = await startHost(t, cluster, 'b', [testService]);
  const client = await startClient(t, cluster);
  const before = new Set<string>();
  for (let i = 0; i < 4; i++) before.add(await client.proxy(ITestAppService).whoami());
  assert.equal(before.size, 2);
  await a.stop();
  for (let i = 0; i < 10; i++) assert.equal(await client.proxy(ITestAppService).whoami(), b.nodeId);
});

test('when a link dies abruptly, calls in flight on it and later calls are answered by the other host', async (t) => {
  const cluster = memoryCluster();
  const held = gate(t);
  const a = await startHost(t, cluster, 'a', [testService, held.service]);
  const b = await startHost(t, cluster, 'b', [testService, held.service]);
  // The client reaches `a` through a relay that is then cut: a crash as the client sees it,
  // with `a` still in the registry.
  const cable = await relay(a.linkAddress!);
  t.after(() => cable.cut());
  await registerRecord(t, cluster, a.nodeId, { host: '127.0.0.1', port: cable.port }, [ITestAppService, IHoldAppService]);
  const client = await startClient(t, cluster);
  const api = client.proxy(ITestAppService);
  const seen = new Set<string>();
  for (let i = 0; i < 4; i++) seen.add(await api.whoami());
  assert.deepEqual([...seen].sort(), [a.nodeId, b.nodeId].sort());
  assert.equal(cable.connections(), 1);

  const hold = client.proxy(IHoldAppService).hold;
  const inFlight = [hold(), hold(), hold(), hold()];
  await eventually(() => a.stats().callsInFlight === 2 && b.stats().callsInFlight === 2, 5000, 'two calls in flight on each host');
  await cable.cut();
  await eventually(() => b.stats().callsInFlight === 4, 5000, 'the calls of the dead link taken over by b');
  held.release();
  const answers = await Promise.all(inFlight);
  assert.deepEqual(answers, [b.nodeId, b.nodeId, b.nodeId, b.nodeId]);
  for (let i = 0; i < 10; i++) assert.equal(await api.whoami(), b.nodeId);
});

test('a host at its concurrency limit is skipped for another host', async (t) => {
  const cluster = memoryCluster();
  const held = gate(t);
  const busy = await startHost(t, cluster, 'busy', [testService, held.service], { maxConcurrentCalls: 1 });
  const free = await startHost(t, cluster, 'free', [testService, held.service]);
  const client = await startClient(t, cluster);
  const api = client.proxy(ITestAppService);
  // Round-robin puts one held call on each host; `busy` is then at its limit.
  const holding = [client.proxy(IHoldAppService).hold(), client.proxy(IHoldAppService).hold()];
  await eventually(() => busy.stats().callsInFlight === 1 && free.stats().callsInFlight === 1, 5000, 'one held call on each host');
  const callsBefore = busy.stats().framesReceived['Call'] ?? 0;
  for (let i = 0; i < 6; i++) assert.equal(await api.whoami(), free.nodeId);
  const refused = (busy.stats().framesReceived['Call'] ?? 0) - callsBefore;
  assert.ok(refused >= 1, 'some calls reached the busy host and were refused there');
  held.release();
  assert.deepEqual((await Promise.all(holding)).sort(), [busy.nodeId, free.nodeId].sort());
});

test('a single host at its concurrency limit answers Overloaded', async (t) => {
  const cluster = memoryCluster();
  const held = gate(t);
  const only = await startHost(t, cluster, 'only', [testService, held.service], { maxConcurrentCalls: 1 });
  const client = await startClient(t, cluster);
  const api = client.proxy(ITestAppService);
  const holding = client.proxy(IHoldAppService).hold();
  await eventually(() => only.stats().callsInFlight === 1, 5000, 'the held call in flight');
  const error = await rejection(api.whoami());
  assert.equal(error.code, 'Overloaded');
  held.release();
  assert.equal(await holding, only.nodeId);
  assert.equal(await api.whoami(), only.nodeId, 'the limit frees up once the call is done');
});

test('the circuit breaker stops sending calls to an endpoint that keeps failing', async (t) => {
  const cluster = memoryCluster();
  const healthy = await startHost(t, cluster, 'healthy', [testService]);
  const client = await startClient(t, cluster, {
    connectTimeoutMs: 150,
    breaker: { failureThreshold: 2, resetAfterMs: 60_000 },
  });
  const api = client.proxy(ITestAppService);
  assert.equal(await api.whoami(), healthy.nodeId); // the link to the healthy host is open before anything fails
  // A registered node whose address accepts TCP and never answers the handshake.
  const silent = await silentServer(t);
  await registerRecord(t, cluster, 'silent-node', { host: '127.0.0.1', port: silent.port }, [ITestAppService]);
  // Every call succeeds (failed over to the healthy host) while the silent node collects failures.
  await eventually(
    async () => {
      assert.equal(await api.whoami(), healthy.nodeId);
      return silent.connections() >= 2;
    },
    20_000,
    'two failed connection attempts',
  );
  const attempts = silent.connections();
  // Outlast the dial backoff (at most 200 ms after two failures): only the open circuit keeps calls away now.
  await sleep(600);
  for (let i = 0; i < 20; i++) assert.equal(await api.whoami(), healthy.nodeId);
  assert.equal(silent.connections(), attempts, 'no call went to the endpoint with an open circuit');
});

test('a call to a service with no live instance fails with ServiceUnavailable', async (t) => {
  const cluster = memoryCluster();
  await startHost(t, cluster, 'server', [testService]);
  const client = await startClient(t, cluster);
  const error = await rejection(client.proxy(INobodyAppService).ping());
  assert.equal(error.code, 'ServiceUnavailable');
});

test('a nested call keeps the trace id and sees the calling host as its caller', async (t) => {
  const cluster = memoryCluster();
  const outer = await startHost(t, cluster, 'outer', [() => outerService]);
  await startHost(t, cluster, 'inner', [testService]);
  const client = await startClient(t, cluster);
  const result = (await client.proxy(IOuterAppService, { traceId: 'trace-nested-1' }).nested()) as {
    outer: { traceId: string; callerNodeId: string };
    inner: { traceId: string; callerNodeId: string };
  };
  assert.equal(result.outer.traceId, 'trace-nested-1');
  assert.equal(result.inner.traceId, 'trace-nested-1');
  assert.equal(result.outer.callerNodeId, client.nodeId);
  assert.equal(result.inner.callerNodeId, outer.nodeId);

  // Without a given trace id, one is made and still shared by the nested call.
  const fresh = (await client.proxy(IOuterAppService).nested()) as typeof result;
  assert.match(fresh.outer.traceId, /^\S{8,}$/);
  assert.equal(fresh.inner.traceId, fresh.outer.traceId);
  assert.notEqual(fresh.outer.traceId, 'trace-nested-1');
});

test('headers forwarded by the gateway reach the service and its nested calls', async (t) => {
  const cluster = memoryCluster();
  const outer = await startHost(t, cluster, 'outer', [() => outerService]);
  await startHost(t, cluster, 'inner', [testService]);
  const gateway = await createGateway({ cluster, logger: quietLogger(), directInProcess: false, http: { host: '127.0.0.1', port: 0 } }).start();
  t.after(() => gateway.stop());
  const headers = { authorization: 'Bearer t0ken', 'x-request-id': 'req-42.a' };

  const direct = await httpJson(`${gateway.url}/api/test/context`, { headers });
  assert.equal(direct.status, 200);
  const seen = direct.body.result as SeenContext;
  assert.equal(seen.traceId, 'req-42.a');
  assert.equal(seen.callerNodeId, gateway.nodeId);
  assert.equal(seen.headers.authorization, 'Bearer t0ken');
  assert.equal(seen.headers['x-request-id'], 'req-42.a');

  const nested = await httpJson(`${gateway.url}/api/outer/nested`, { headers });
  assert.equal(nested.status, 200);
  const both = nested.body.result as { outer: SeenContext; inner: SeenContext };
  assert.equal(both.outer.traceId, 'req-42.a');
  assert.equal(both.outer.callerNodeId, gateway.nodeId);
  assert.equal(both.inner.traceId, 'req-42.a');
  assert.equal(both.inner.callerNodeId, outer.nodeId);
  assert.equal(both.inner.headers.authorization, 'Bearer t0ken');
});

test('after its link drops, the client dials the host again, backing off while it is unreachable', async (t) => {
  const cluster = memoryCluster();
  const a = await startHost(t, cluster, 'a', [testService]);
  // A relay in front of `a` that can drop its connections and refuse new ones for a while.
  const sockets = new Set<net.Socket>();
  let accepted = 0;
  const relayServer = (): net.Server =>
    net.createServer((inbound) => {
      accepted += 1;
      const outbound = net.connect(a.linkAddress!);
      for (const s of [inbound, outbound]) {
        sockets.add(s);
        s.on('error', () => {});
        s.on('close', () => sockets.delete(s));
      }
      inbound.pipe(outbound).pipe(inbound);
      inbound.on('close', () => outbound.destroy());
      outbound.on('close', () => inbound.destroy());
    });
  let server = relayServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  t.after(() => {
    for (const s of sockets) s.destroy();
    server.close();
  });
  await registerRecord(t, cluster, a.nodeId, { host: '127.0.0.1', port }, [ITestAppService]);
  const client = await startClient(t, cluster);
  const api = client.proxy(ITestAppService, { timeoutMs: 2000 });
  assert.equal(await api.echo('one'), 'one');
  assert.equal(accepted, 1);

  // The link drops; the next call dials again and gets through.
  for (const s of sockets) s.destroy();
  await eventually(async () => (await api.echo('two').catch(() => undefined)) === 'two', 5000, 'a call after the drop');
  assert.equal(accepted, 2, 'one new link, not one per call');

  // Unreachable for a while: calls fail fast with ServiceUnavailable, not after a long wait each.
  const closed = new Promise<void>((r) => server.close(() => r()));
  for (const s of sockets) s.destroy();
  await closed;
  const failures: string[] = [];
  for (let i = 0; i < 5; i++) {
    await api.echo('x').then(
      () => failures.push('ok'),
      (e: { code?: string }) => failures.push(e.code ?? 'unknown'),
    );
  }
  assert.ok(
    failures.every((c) => c === 'ServiceUnavailable'),
    JSON.stringify(failures),
  );

  // Back on the same port: after the backoff, calls reach it again.
  server = relayServer();
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
  await eventually(async () => (await api.echo('three').catch(() => undefined)) === 'three', 10_000, 'calls after the host is back');
});

test('a method whose own call fails with a failover error is not run again on another instance', async (t) => {
  const IInnerAppService = defineContract({
    name: 'IInnerAppService',
    methods: { work: { params: [param('ms', Type.Integer())], returns: Type.Integer() } },
  });
  const IOuterAppService = defineContract({
    name: 'IOuterAppService',
    methods: { createOrder: { params: [param('id', Type.String())], returns: Type.Integer() } },
  });
  const cluster = memoryCluster();
  let executions = 0;
  const inner = createHost({
    cluster,
    logger: quietLogger(),
    directInProcess: false,
    maxConcurrentCalls: 1,
    services: [implement(IInnerAppService, { work: (ms) => sleep(ms).then(() => ms) })],
  });
  await inner.start();
  t.after(() => inner.stop());
  const outer = implement(IOuterAppService, ({ proxy }) => ({
    createOrder: async () => {
      executions += 1;
      return proxy(IInnerAppService).work(1);
    },
  }));
  for (let i = 0; i < 2; i++) {
    const host = createHost({ cluster, logger: quietLogger(), directInProcess: false, services: [outer] });
    await host.start();
    t.after(() => host.stop());
  }
  const client = await startClient(t, cluster);
  const busy = client.proxy(IInnerAppService).work(400); // the inner host is now at its limit
  await eventually(() => inner.stats().callsInFlight === 1, 5000, 'the inner host busy');
  await assert.rejects(client.proxy(IOuterAppService).createOrder('o1'), { code: 'ServiceUnavailable' });
  assert.equal(executions, 1, 'createOrder ran once for one call');
  await busy;
});
