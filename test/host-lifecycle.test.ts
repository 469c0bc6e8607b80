/**
 * A host's life: it leaves the registry before it stops, finishes the calls
 * in flight, turns away late calls so that callers fail over, keeps to its
 * stop deadline, and refuses to start twice or to run a WebSocket service
 * without WebSocketModule.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { test, type TestContext } from 'node:test';
import {
  Type,
  WebSocketModule,
  createGateway,
  createHost,
  defineContract,
  implement,
  isWeftError,
  memoryCluster,
  type Cluster,
  type Host,
  type HostOptions,
  type ServiceBinding,
} from '../src/index.js';
import type { Registry, RegistryView } from '../src/registry/registry.js';
import { ChatAppService, IChatAppService, ITestAppService, testService } from './fixtures/services.js';
import { eventually, httpJson, quietLogger, rejection } from './helpers/index.js';

/** A call that stays in flight until the test lets it go: no timing involved. */
const IHoldAppService = defineContract({
  name: 'IHoldAppService',
  methods: { hold: { params: [], returns: Type.String() } },
});

function gate(): { binding: ServiceBinding; release: () => void } {
  let release: () => void = () => {};
  const opened = new Promise<void>((r) => (release = r));
  return {
    binding: implement(IHoldAppService, {
      hold: async () => {
        await opened;
        return 'released';
      },
    }),
    release: () => release(),
  };
}

async function startHost(
  t: TestContext,
  cluster: Cluster,
  name: string,
  services: ServiceBinding[],
  options: Partial<HostOptions> = {},
): Promise<Host> {
  // These tests are about what crosses a link: no direct in-process shortcut.
  const host = createHost({ cluster, name, logger: quietLogger(), directInProcess: false, services, ...options });
  await host.start();
  t.after(() => host.stop());
  return host;
}

/** A registry handle that only watches, to see what every node sees. */
async function observe(t: TestContext, cluster: Cluster): Promise<() => RegistryView> {
  const { registry } = cluster.join('observer', quietLogger());
  await registry.start();
  t.after(() => registry.close());
  return () => registry.view();
}

/** Is `nodeId` out of routing: gone from the registry or marked draining? */
function outOfRouting(view: RegistryView, nodeId: string): boolean {
  const record = view.get(nodeId);
  return record === undefined;
}

/**
 * The same cluster, but the nodes that join through it stop hearing registry
 * changes after `freeze()`: a caller with a stale view, as a Redis registry
 * has for a moment after a change.
 */
function freezableCluster(real: Cluster): { cluster: Cluster; freeze: () => void } {
  let frozen = false;
  const cluster: Cluster = {
    kind: real.kind,
    secret: real.secret,
    nodeExpiryMs: real.nodeExpiryMs,
    join(nodeId, logger) {
      const membership = real.join(nodeId, logger);
      const r = membership.registry;
      const registry: Registry = {
        start: () => r.start(),
        register: (record) => r.register(record),
        deregister: () => r.deregister(),
        view: () => r.view(),
        onChange: (listener) => r.onChange((view) => (frozen ? undefined : listener(view))),
        onExpired: (listener) => r.onExpired(listener),
        onRecovered: (listener) => r.onRecovered(listener),
        close: () => r.close(),
      };
      return { registry, directory: membership.directory };
    },
  };
  return { cluster, freeze: () => (frozen = true) };
}

function refusesConnections(address: { host: string; port: number }): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(address);
    socket.once('connect', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', (err: NodeJS.ErrnoException) => resolve(err.code === 'ECONNREFUSED'));
  });
}

test('stop() takes the host out of routing first: the gateway sends new requests to the other host', async (t) => {
  const cluster = memoryCluster();
  const held = gate();
  t.after(held.release);
  const leaving = await startHost(t, cluster, 'leaving', [testService(() => 'leaving'), held.binding]);
  await startHost(t, cluster, 'staying', [testService(() => 'staying')]);
  const gateway = await createGateway({ cluster, logger: quietLogger(), directInProcess: false, http: { host: '127.0.0.1', port: 0 } }).start();
  t.after(() => gateway.stop());
  const view = await observe(t, cluster);

  const spread = new Set<string>();
  for (let i = 0; i < 4; i++) spread.add((await httpJson(`${gateway.url}/api/test/whoami`)).body.result as string);
  assert.deepEqual([...spread].sort(), ['leaving', 'staying']);

  const heldRequest = httpJson(`${gateway.url}/api/hold/hold`);
  await eventually(() => leaving.stats().callsInFlight === 1, 5000, 'the held call in flight');
  let stopped = false;
  const stopping = leaving.stop().then(() => (stopped = true));
  await eventually(() => outOfRouting(view(), leaving.nodeId), 5000, 'the host out of routing');

  for (let i = 0; i < 10; i++) {
    const res = await httpJson(`${gateway.url}/api/test/whoami`);
    assert.equal(res.status, 200);
    assert.equal(res.body.result, 'staying');
  }
  assert.equal(stopped, false, 'the host is still finishing its call');
  held.release();
  const answer = await heldRequest;
  assert.equal(answer.status, 200);
  assert.equal(answer.body.result, 'released');
  await stopping;
  for (let i = 0; i < 4; i++) assert.equal((await httpJson(`${gateway.url}/api/test/whoami`)).body.result, 'staying');
});

test('stop() finishes the calls in flight and then closes', async (t) => {
  const cluster = memoryCluster();
  const held = gate();
  t.after(held.release);
  const host = await startHost(t, cluster, 'server', [held.binding]);
  const client = await startHost(t, cluster, 'client', []);
  const view = await observe(t, cluster);
  const address = host.linkAddress!;
  const events: string[] = [];
  const calls = Array.from({ length: 5 }, (_, i) =>
    client
      .proxy(IHoldAppService)
      .hold()
      .then((v) => {
        events.push(`call ${i}`);
        return v;
      }),
  );
  await eventually(() => host.stats().callsInFlight === 5, 5000, 'five calls in flight');
  const stopping = host.stop().then(() => events.push('stopped'));
  await eventually(() => outOfRouting(view(), host.nodeId), 5000, 'the host out of routing');
  assert.deepEqual(events, [], 'nothing finished before the calls were let go');
  held.release();
  assert.deepEqual(await Promise.all(calls), Array(5).fill('released'));
  await stopping;
  assert.equal(events.length, 6);
  assert.equal(events.at(-1), 'stopped', `stop resolved after every call: ${events.join(', ')}`);
  assert.equal(await refusesConnections(address), true, 'the link server is closed');
});

test('a call that reaches a draining host is failed over to another host without an error', async (t) => {
  const cluster = memoryCluster();
  const held = gate();
  t.after(held.release);
  const draining = await startHost(t, cluster, 'draining', [testService(() => 'draining'), held.binding]);
  await startHost(t, cluster, 'other', [testService(() => 'other')]);
  const view = await observe(t, cluster);
  // This caller will not hear that the host is draining: its calls really arrive there.
  const stale = freezableCluster(cluster);
  const caller = await startHost(t, stale.cluster, 'caller', []);
  stale.freeze();
  const holder = await startHost(t, cluster, 'holder', []);
  const heldCall = holder.proxy(IHoldAppService).hold();
  await eventually(() => draining.stats().callsInFlight === 1, 5000, 'the held call in flight');

  const stopping = draining.stop();
  await eventually(() => outOfRouting(view(), draining.nodeId), 5000, 'the host out of routing');
  const callsBefore = draining.stats().framesReceived['Call'] ?? 0;
  for (let i = 0; i < 10; i++) assert.equal(await caller.proxy(ITestAppService).whoami(), 'other');
  const turnedAway = (draining.stats().framesReceived['Call'] ?? 0) - callsBefore;
  assert.ok(turnedAway >= 1, 'calls arrived at the draining host and were turned away');

  held.release();
  assert.equal(await heldCall, 'released');
  await stopping;
});

test('stop() with a deadline shorter than a call in flight resolves and the call fails', async (t) => {
  const cluster = memoryCluster();
  const held = gate();
  t.after(held.release); // the call is never let go while the test runs
  const host = await startHost(t, cluster, 'server', [held.binding], { stopTimeoutMs: 200 });
  const client = await startHost(t, cluster, 'client', [], { callTimeoutMs: 60_000 });
  const outcome = rejection(client.proxy(IHoldAppService).hold());
  await eventually(() => host.stats().callsInFlight === 1, 5000, 'the call in flight');
  await host.stop();
  const error = await outcome;
  // It failed because the host went away, not because the caller waited out its timeout.
  assert.ok(['CommunicationError', 'ServiceUnavailable'].includes(error.code), `${error.code}: ${error.message}`);
});

test('a host cannot be started twice', async (t) => {
  const cluster = memoryCluster();
  const host = createHost({ cluster, logger: quietLogger(), services: [testService(() => 'once')] });
  await host.start();
  t.after(() => host.stop());
  await assert.rejects(host.start(), (e: unknown) => isWeftError(e, 'InvalidOption'));
  await host.stop();
  await assert.rejects(host.start(), (e: unknown) => isWeftError(e, 'InvalidOption'));
});

test('a host with a WebSocket service but without WebSocketModule is refused at construction', () => {
  const cluster = memoryCluster();
  assert.throws(
    () => createHost({ cluster, logger: quietLogger(), services: [implement(IChatAppService, new ChatAppService())] }),
    (e: unknown) => isWeftError(e, 'InvalidOption') && /modules/.test(e.message),
  );
  // The same service with the module is accepted.
  const host = createHost({
    cluster,
    logger: quietLogger(),
    modules: [WebSocketModule],
    services: [implement(IChatAppService, new ChatAppService())],
  });
  assert.ok(host.nodeId);
});

test('a stop during start waits for the start and leaves nothing serving; concurrent stops share one promise', async (t) => {
  const cluster = memoryCluster();
  const host = createHost({ cluster, logger: quietLogger(), services: [testService(() => 'zombie')] });
  const starting = host.start();
  const first = host.stop();
  const second = host.stop();
  assert.equal(first, second, 'the same promise');
  await first;
  await starting.catch(() => undefined);
  const caller = await createHost({ cluster, logger: quietLogger() }).start();
  t.after(() => caller.stop());
  await assert.rejects(caller.proxy(ITestAppService, { timeoutMs: 1000 }).whoami(), { code: 'ServiceUnavailable' });
  await host.stop(); // and again: resolves, does nothing
});

test('a gateway stopped during its start ends stopped, its port closed', async () => {
  const gateway = createGateway({ cluster: memoryCluster(), logger: quietLogger(), http: { host: '127.0.0.1', port: 0 } });
  const starting = gateway.start();
  await gateway.stop();
  await starting;
  const port = gateway.port;
  await assert.rejects(fetch(`http://127.0.0.1:${port}/healthz`));
});
