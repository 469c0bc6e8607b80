/**
 * createClient: a process that serves nothing calls services and pushes to
 * sessions anywhere in the cluster, and can close a businessId's sessions
 * (revocation) from outside the WebSocket service.
 */
import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import { WebSocket } from 'ws';
import { connectSession } from '../src/client/index.js';
import { WebSocketModule, createClient, createGateway, createHost, implement, redisCluster, type Cluster, type Gateway } from '../src/index.js';
import { ChatAppService, IChatAppService, ITestAppService, testService } from './fixtures/services.js';
import { dropPrefix } from './fixtures/node-control.js';
import { PROCESS_SECRET, REDIS_URL, connectWs, eventually, quietLogger, redisTest, rejection, uniquePrefix } from './helpers/index.js';

async function cluster(t: TestContext): Promise<{ cluster: Cluster; gateways: Gateway[]; wsUrl: (i: number) => string }> {
  const prefix = uniquePrefix();
  t.after(() => dropPrefix(prefix));
  const c = redisCluster({ url: REDIS_URL, secret: PROCESS_SECRET, prefix });
  const host = createHost({
    cluster: c,
    logger: quietLogger(),
    modules: [WebSocketModule],
    services: [testService(() => host.nodeId), implement(IChatAppService, new ChatAppService())],
  });
  await host.start();
  t.after(() => host.stop());
  const gateways = await Promise.all(
    [0, 1].map(() => createGateway({ cluster: c, logger: quietLogger(), http: { host: '127.0.0.1', port: 0 } }).start()),
  );
  t.after(() => Promise.all(gateways.map((g) => g.stop())));
  return { cluster: c, gateways, wsUrl: (i) => `${gateways[i]!.url.replace(/^http/, 'ws')}/api/chat` };
}

test('a client that serves nothing calls a service through a typed proxy and is no host of any route', await redisTest(), async (t) => {
  const stack = await cluster(t);
  const client = await createClient({ cluster: stack.cluster, logger: quietLogger() }).start();
  t.after(() => client.stop());
  assert.equal(await client.proxy(ITestAppService).echo('ann'), 'ann');
  // Sessions still bind to the WebSocket host: the client is in no hash ring.
  const clients = await Promise.all(Array.from({ length: 8 }, (_, i) => connectWs(`${stack.wsUrl(i % 2)}?businessId=ring-${i}`)));
  t.after(() => clients.forEach((c) => c.ws.close()));
});

test(
  'a client pushes to the sessions of a businessId on both gateways, with positions, and closes them all (revocation)',
  await redisTest(),
  async (t) => {
    const stack = await cluster(t);
    const client = await createClient({ cluster: stack.cluster, logger: quietLogger() }).start();
    t.after(() => client.stop());
    const sessions = await client.sessions(IChatAppService);

    const got: [string, number | undefined][] = [];
    const closes: number[] = [];
    const v1 = connectSession(stack.wsUrl(0), {
      businessId: 'acme',
      WebSocket,
      onMessage: (d, info) => got.push([String(d), info.position?.offset]),
      onClose: (code) => closes.push(code),
    });
    t.after(() => v1.close());
    const bare = await connectWs(`${stack.wsUrl(1)}?businessId=acme`);
    t.after(() => bare.ws.close());
    await eventually(async () => (await sessions.count('acme')) === 2, 5000, 'both sessions in the client’s directory');

    assert.equal(await sessions.pushToBusiness('acme', 'from a worker'), 2);
    await eventually(() => got.length === 1);
    assert.equal(got[0]![0], 'from a worker');
    assert.equal(typeof got[0]![1], 'number', 'the push has a position: the client pushes with the service’s history');
    assert.deepEqual(await bare.waitFor(1), ['from a worker']);

    assert.equal(await sessions.closeBusiness('acme', 4003, 'access revoked'), 2);
    assert.deepEqual(await bare.closed, { code: 4003, reason: 'access revoked' });
    await eventually(() => closes.includes(4003));
    await eventually(async () => (await sessions.count('acme')) === 0);
  },
);

test('with no live host of the service, a push from a client is refused with ServiceUnavailable', await redisTest(), async (t) => {
  const prefix = uniquePrefix();
  t.after(() => dropPrefix(prefix));
  const c = redisCluster({ url: REDIS_URL, secret: PROCESS_SECRET, prefix });
  const client = await createClient({ cluster: c, logger: quietLogger() }).start();
  t.after(() => client.stop());
  const sessions = await client.sessions(IChatAppService);
  const error = await rejection(sessions.pushToBusiness('acme', 'x'));
  assert.equal(error.code, 'ServiceUnavailable');
  assert.match(error.message, /no host of WebSocket service IChatAppService/);
});

test('sessions() before start() is refused with ServiceUnavailable', async () => {
  const client = createClient({ logger: quietLogger() });
  const error = await rejection(client.sessions(IChatAppService));
  assert.equal(error.code, 'ServiceUnavailable');
});
