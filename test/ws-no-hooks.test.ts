/**
 * A WebSocket service that overrides no hook: its host keeps no state per
 * session, yet pushes, counts and closes behave the same.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  Type,
  WebSocketModule,
  WsAppServiceBase,
  createGateway,
  createHost,
  defineContract,
  implement,
  memoryCluster,
  param,
  redisCluster,
  type Implementation,
} from '../src/index.js';
import { REDIS_URL, connectWs, eventually, quietLogger, redisTest, testSecret, uniquePrefix } from './helpers/index.js';

const IFeedAppService = defineContract({
  name: 'IFeedAppService',
  methods: {
    push: { params: [param('businessId', Type.String()), param('msg', Type.String())], returns: Type.Integer() },
    count: { params: [param('businessId', Type.String())], returns: Type.Integer() },
    pushUnacknowledged: { params: [param('businessId', Type.String()), param('msg', Type.String())], returns: Type.Integer() },
  },
});

class FeedAppService extends WsAppServiceBase implements Implementation<typeof IFeedAppService> {
  push(businessId: string, msg: string): Promise<number> {
    return this.sessionManager.pushToBusiness(businessId, msg);
  }
  count(businessId: string): Promise<number> {
    return this.sessionManager.count(businessId);
  }
  pushUnacknowledged(businessId: string, msg: string): Promise<number> {
    return this.sessionManager.pushToBusiness(businessId, msg, { ack: false });
  }
}

test('a service without hooks pushes to its sessions, counts them, and forgets them when they close', async (t) => {
  const cluster = memoryCluster();
  const host = await createHost({
    cluster,
    logger: quietLogger(),
    modules: [WebSocketModule],
    services: [implement(IFeedAppService, new FeedAppService())],
  }).start();
  t.after(() => host.stop());
  const gateway = await createGateway({ cluster, logger: quietLogger(), http: { port: 0 } }).start();
  t.after(() => gateway.stop());
  const url = `${gateway.url.replace('http', 'ws')}/api/feed?businessId=f1`;
  const feed = host.proxy(IFeedAppService);

  const a = await connectWs(url);
  const b = await connectWs(url);
  assert.equal(await feed.count('f1'), 2);
  assert.equal(await feed.push('f1', 'news'), 2);
  await a.waitFor(1);
  await b.waitFor(1);
  assert.deepEqual([a.messages, b.messages], [['news'], ['news']]);

  // A session closed at once after its handshake leaves nothing behind.
  const c = await connectWs(url);
  c.ws.close();
  a.ws.close();
  await eventually(async () => (await feed.count('f1')) === 1, 5000, 'closed sessions forgotten');
  assert.equal(await feed.push('f1', 'later'), 1);
  await b.waitFor(2);
  // Without acknowledgement: the directory's count, at once; the message still arrives.
  assert.equal(await feed.pushUnacknowledged('f1', 'quick'), 1);
  assert.equal(await feed.pushUnacknowledged('nobody', 'quick'), 0);
  await b.waitFor(3);
  assert.equal(b.messages[2], 'quick');
  b.ws.close();
});

test('with Redis, sessions that close right after their handshake leave no entry on the host', await redisTest(), async (t) => {
  const prefix = uniquePrefix();
  const cluster = redisCluster({ url: REDIS_URL, prefix, secret: testSecret(), ttlMs: 3000, heartbeatMs: 1000 });
  const host = await createHost({
    cluster,
    logger: quietLogger(),
    modules: [WebSocketModule],
    services: [implement(IFeedAppService, new FeedAppService())],
  }).start();
  t.after(() => host.stop());
  const gateway = await createGateway({ cluster, logger: quietLogger(), http: { port: 0 } }).start();
  t.after(() => gateway.stop());
  const url = `${gateway.url.replace('http', 'ws')}/api/feed?businessId=quick`;
  const feed = host.proxy(IFeedAppService);
  const keep = await connectWs(url);
  t.after(() => keep.ws.close());
  for (let i = 0; i < 20; i++) (await connectWs(url)).ws.close();
  await eventually(async () => (await feed.count('quick')) === 1, 5000, 'only the open session counted');
  assert.equal(await feed.push('quick', 'one'), 1);
});

test('a session of a service without hooks outlives the host it was bound to; pushes from another host still reach it', async (t) => {
  const cluster = memoryCluster();
  const start = (name: string) =>
    createHost({
      cluster,
      name,
      logger: quietLogger(),
      directInProcess: false,
      modules: [WebSocketModule],
      services: [implement(IFeedAppService, new FeedAppService())],
    }).start();
  const first = await start('first');
  // Stopped in the test; here too, so a failed assertion cannot leave it running.
  t.after(() => first.stop());
  const second = await start('second');
  t.after(() => second.stop());
  const gateway = await createGateway({ cluster, logger: quietLogger(), directInProcess: false, http: { port: 0 } }).start();
  t.after(() => gateway.stop());
  // Sessions of 16 businessIds, so the hash ring binds some to each host (all to one: about 1 in 30,000).
  const clients = await Promise.all(
    Array.from({ length: 16 }, (_, i) => connectWs(`${gateway.url.replace('http', 'ws')}/api/feed?businessId=b${i}`)),
  );
  t.after(() => clients.forEach((c) => c.ws.close()));
  let closed = 0;
  for (const c of clients) c.ws.on('close', () => (closed += 1));
  // A client's open can come before its host has read the session's SessionOpen frame.
  const opened = (host: typeof first): number => host.stats().framesReceived['SessionOpen'] ?? 0;
  await eventually(() => opened(first) + opened(second) === clients.length, 5000, 'every session open on its host');
  assert.ok(opened(first) > 0, 'some sessions were bound to the host that stops');
  await first.stop();
  const feed = second.proxy(IFeedAppService);
  for (let i = 0; i < clients.length; i++) assert.equal(await feed.push(`b${i}`, `after ${i}`), 1, `b${i} still reached`);
  await Promise.all(clients.map((c, i) => eventually(() => c.messages.includes(`after ${i}`), 5000, `b${i} received`)));
  assert.equal(closed, 0, 'no session was closed when its host stopped');
});
