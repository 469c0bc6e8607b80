/**
 * The Redis directory and registry through the bad moments: a node whose
 * record lapsed, a connection blip during which sessions closed, and a
 * Redis that stops answering.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { test, type TestContext } from 'node:test';
import { Redis } from 'ioredis';
import { WebSocketModule, createGateway, createHost, implement, redisCluster } from '../src/index.js';
import { directoryUnit, registryKeys, serviceKeys } from '../src/redis/keys.js';
import { shardOf } from '../src/util/hash-ring.js';
import { ChatAppService, IChatAppService } from './fixtures/services.js';
import { startPrivateRedis } from './fixtures/node-control.js';
import { REDIS_URL, connectWs, eventually, quietLogger, redisTest, testSecret, uniquePrefix } from './helpers/index.js';

async function stackOn(t: TestContext, url: string, prefix: string) {
  // One secret for every node of the cluster; each node gets a cluster object of its own.
  const secret = testSecret();
  const cluster = () => redisCluster({ url, secret, prefix, ttlMs: 1000, heartbeatMs: 300 });
  const host = await createHost({
    cluster: cluster(),
    logger: quietLogger(),
    modules: [WebSocketModule],
    services: [implement(IChatAppService, new ChatAppService())],
  }).start();
  t.after(() => host.stop());
  const gateway = await createGateway({ cluster: cluster(), logger: quietLogger(), http: { port: 0 } }).start();
  t.after(() => gateway.stop());
  return { host, gateway, chat: host.proxy(IChatAppService), wsUrl: gateway.url.replace('http', 'ws') };
}

test('a gateway whose registry record lapsed registers again and writes its sessions again', await redisTest(), async (t) => {
  const prefix = uniquePrefix();
  const { gateway, chat, wsUrl } = await stackOn(t, REDIS_URL, prefix);
  const client = await connectWs(`${wsUrl}/api/chat?businessId=lapse`);
  t.after(() => client.ws.close());
  await eventually(async () => (await chat.push('lapse', 'before')) === 1, 5000, 'the first push');
  // As after a stall longer than the TTL: the record is gone and a peer has reaped the
  // gateway's sessions (done here directly, so the test does not race the peer's reload).
  const redis = new Redis(REDIS_URL);
  t.after(() => redis.disconnect());
  const nodeKey = registryKeys(prefix).node(gateway.nodeId);
  const sessionsKey = serviceKeys(prefix, directoryUnit('IChatAppService', shardOf('lapse'))).sessions;
  await redis.multi().del(nodeKey).del(sessionsKey).exec();
  await eventually(async () => (await redis.exists(nodeKey)) === 1, 10_000, 'the gateway registered again');
  await eventually(async () => (await redis.hlen(sessionsKey)) === 1, 10_000, 'its session written again');
  await eventually(async () => (await chat.push('lapse', 'after')) === 1, 10_000, 'a push after the lapse');
  await client.waitFor(2);
});

test('a session that closed while Redis was unreachable leaves the directory once Redis is back', await redisTest(), async (t) => {
  // A TCP relay in front of Redis that can be cut, as a network blip would.
  const sockets = new Set<net.Socket>();
  const redisPort = Number(new URL(REDIS_URL).port || 6379);
  let relay: net.Server;
  let port = 0;
  const up = () =>
    new Promise<void>((resolve) => {
      relay = net.createServer((c) => {
        const s = net.connect(redisPort, new URL(REDIS_URL).hostname);
        for (const x of [c, s]) {
          sockets.add(x);
          x.on('error', () => {});
        }
        c.pipe(s).pipe(c);
      });
      relay.listen(port, '127.0.0.1', () => {
        port = (relay.address() as net.AddressInfo).port;
        resolve();
      });
    });
  const down = () => {
    relay.close();
    for (const s of sockets) s.destroy();
    sockets.clear();
  };
  await up();
  t.after(down);
  const { chat, wsUrl } = await stackOn(t, `redis://127.0.0.1:${port}`, uniquePrefix());
  const client = await connectWs(`${wsUrl}/api/chat?businessId=blip`);
  await eventually(async () => (await chat.count('blip')) === 1, 5000, 'the session listed');
  down();
  client.ws.close();
  await client.closed;
  await new Promise((r) => setTimeout(r, 1000));
  await up();
  await eventually(async () => (await chat.count('blip')) === 0, 10_000, 'the closed session gone from the directory');
});

test(
  'a Redis that stops answering fails a kept push with ServiceUnavailable, not forever, and pushes work again once it answers',
  await redisTest(),
  async (t) => {
    const redis = await startPrivateRedis();
    t.after(async () => {
      redis.signal('SIGCONT');
      await redis.kill();
      redis.remove();
    });
    const cluster = redisCluster({ url: redis.url, prefix: uniquePrefix(), secret: testSecret() });
    const host = await createHost({
      cluster,
      logger: quietLogger(),
      modules: [WebSocketModule],
      services: [implement(IChatAppService, new ChatAppService())],
    }).start();
    t.after(() => host.stop());
    const gateway = await createGateway({ cluster, logger: quietLogger(), http: { host: '127.0.0.1', port: 0 } }).start();
    t.after(() => gateway.stop());
    const client = await connectWs(`ws://127.0.0.1:${gateway.port}/api/chat?businessId=stuck`);
    t.after(() => client.ws.terminate());
    // Longer than the Redis command timeout, so the answer is the push's own, not the call's deadline.
    const chat = host.proxy(IChatAppService, { timeoutMs: 30_000 });
    await eventually(async () => (await chat.push('stuck', 'before')) === 1, 10_000, 'a push reaching the session');

    // The chat service keeps history: each push is first written to Redis, which now holds every command.
    redis.signal('SIGSTOP');
    const error = await chat.push('stuck', 'while stopped').then(
      (n) => assert.fail(`the push answered ${n} while Redis was stopped`),
      (e: unknown) => e as { code?: string; message?: string },
    );
    assert.equal(error.code, 'ServiceUnavailable', String(error.message));
    assert.match(String(error.message), /history could not be kept/);

    redis.signal('SIGCONT');
    await eventually(async () => (await chat.push('stuck', 'after')) === 1, 15_000, 'pushes again once Redis answers');
    await eventually(() => client.messages.includes('after'), 5000, 'the push after');
    assert.ok(!client.messages.includes('while stopped'), 'the failed push was not sent');
  },
);
