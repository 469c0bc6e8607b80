/**
 * /healthz (the process answers) and /readyz (it can do its work: Redis
 * reachable when used, a host known for every service it routes, not
 * draining), against real gateways, hosts and Redis servers.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { createGateway, createHost, memoryCluster, redisCluster, type Host } from '../src/index.js';
import { testService } from './fixtures/services.js';
import { startStack } from './fixtures/stack.js';
import { startPrivateRedis } from './fixtures/node-control.js';
import { eventually, getHealth, quietLogger, redisTest, rejection, testSecret, uniquePrefix } from './helpers/index.js';

/** What a gateway's GET /readyz answers. */
interface ReadyBody {
  status: 'ready' | 'not ready';
  ready: boolean;
  nodeId: string;
  cluster: string;
  missing: string[];
  checks: {
    draining: boolean;
    backend?: { name: string; reachable: boolean; problem?: string };
    hosts: number;
    services: Record<string, number>;
  };
}

async function getReady(baseUrl: string): Promise<{ status: number; body: ReadyBody }> {
  const res = await fetch(`${baseUrl}/readyz`);
  return { status: res.status, body: (await res.json()) as ReadyBody };
}

/** Polls /readyz until it answers `status`. */
async function readyzAnswers(baseUrl: string, status: number, timeoutMs = 5000): Promise<{ status: number; body: ReadyBody }> {
  let last: { status: number; body: ReadyBody } | undefined;
  await eventually(async () => (last = await getReady(baseUrl)).status === status, timeoutMs, `/readyz ${status}`);
  return last!;
}

test('/readyz is 503 naming what is missing while no host is known, 200 once one is, 503 again when its service has no live host', async (t) => {
  const cluster = memoryCluster();
  const gateway = await createGateway({ cluster, logger: quietLogger(), http: { host: '127.0.0.1', port: 0 }, goneRouteGraceMs: 60_000 }).start();
  t.after(() => gateway.stop());

  const alone = await getReady(gateway.url);
  assert.equal(alone.status, 503);
  assert.equal(alone.body.ready, false);
  assert.equal(alone.body.status, 'not ready');
  assert.equal(alone.body.nodeId, gateway.nodeId);
  assert.equal(alone.body.checks.hosts, 0);
  assert.deepEqual(alone.body.missing, ['no host is known: no service has registered with this cluster yet']);
  // Alive all the same: /healthz says the process answers, not that it can route.
  const health = await getHealth(gateway.url);
  assert.equal(health.status, 200);
  assert.equal(health.body.status, 'ok');

  const host: Host = await createHost({ cluster, logger: quietLogger(), services: [testService(() => host.nodeId)] }).start();
  const ready = await readyzAnswers(gateway.url, 200);
  assert.equal(ready.body.ready, true);
  assert.deepEqual(ready.body.missing, []);
  assert.equal(ready.body.checks.hosts, 1);
  assert.deepEqual(ready.body.checks.services, { ITestAppService: 1 });
  assert.equal(ready.body.checks.backend, undefined, 'a memory cluster has no outside service to check');

  await host.stop();
  const gone = await readyzAnswers(gateway.url, 503);
  assert.deepEqual(gone.body.missing, [
    'no host is known: no service has registered with this cluster yet',
    'service ITestAppService has no live host (its routes answer 503)',
  ]);
  assert.equal(gone.body.checks.services['ITestAppService'], 0);
});

/** Completes a WebSocket handshake on a raw socket that will never answer a close frame. */
function rawSession(port: number, path: string): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1', () => {
      socket.write(
        `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
          `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
      );
    });
    socket.once('error', reject);
    socket.once('data', (d) => (d.toString().startsWith('HTTP/1.1 101') ? resolve(socket) : reject(new Error(d.toString()))));
  });
}

test('/readyz is 503 "draining" once the gateway stops, while /healthz still answers 200', async (t) => {
  const stack = await startStack(t, { gateway: { stopTimeoutMs: 3000 } });
  assert.equal((await getReady(stack.url)).status, 200);
  // A session that never answers the close frame holds the drain open, so the gateway still answers meanwhile.
  const socket = await rawSession(stack.gateway.port, '/api/chat?businessId=7');
  t.after(() => socket.destroy());
  const stopped = stack.gateway.stop();
  const draining = await getReady(stack.url);
  assert.equal(draining.status, 503);
  assert.equal(draining.body.checks.draining, true);
  assert.ok(draining.body.missing.includes('the gateway is draining (shutting down)'), JSON.stringify(draining.body.missing));
  const health = await getHealth(stack.url);
  assert.equal(health.status, 200);
  assert.equal(health.body.status, 'draining');
  socket.destroy();
  await stopped;
});

test('/readyz names Redis when the cluster cannot reach it, and is ready again when it is back', await redisTest(), async (t) => {
  const redis = await startPrivateRedis();
  t.after(async () => {
    await redis.kill();
    redis.remove();
  });
  const prefix = uniquePrefix();
  const plain = redis.url;
  const secret = testSecret();
  const cluster = () => redisCluster({ url: plain, secret, prefix, ttlMs: 3000, heartbeatMs: 500 });
  const host: Host = await createHost({ cluster: cluster(), logger: quietLogger(), services: [testService(() => host.nodeId)] }).start();
  t.after(() => host.stop());
  const gateway = await createGateway({ cluster: cluster(), logger: quietLogger(), http: { host: '127.0.0.1', port: 0 } }).start();
  t.after(() => gateway.stop());
  const ready = await readyzAnswers(gateway.url, 200);
  assert.deepEqual(ready.body.checks.backend, { name: `Redis at ${plain}`, reachable: true });
  assert.equal(ready.body.cluster, 'redis');

  await redis.kill();
  const down = await readyzAnswers(gateway.url, 503);
  assert.equal(down.body.checks.backend?.reachable, false);
  assert.match(down.body.missing[0] ?? '', new RegExp(`^Redis at redis://127\\.0\\.0\\.1:${redis.port} is not reachable: `));
  assert.equal((await getHealth(gateway.url)).status, 200, 'alive all the same');

  await redis.start();
  await readyzAnswers(gateway.url, 200, 15000);
});

test('a gateway whose cluster cannot reach Redis at start says where and why, never the password', async () => {
  const closed = net.createServer();
  await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
  const port = (closed.address() as net.AddressInfo).port;
  await new Promise<void>((r) => closed.close(() => r()));
  const prefix = uniquePrefix();
  const cluster = redisCluster({ url: `redis://ops:hunter2-not-printed@127.0.0.1:${port}`, secret: testSecret(), prefix });
  const err = await createGateway({ cluster, logger: quietLogger(), http: { host: '127.0.0.1', port: 0 } })
    .start()
    .then(
      () => assert.fail('started without Redis'),
      (e: unknown) => e as Error & { code?: string },
    );
  assert.equal(err.code, 'CommunicationError');
  assert.match(err.message, new RegExp(`cannot reach Redis at redis://ops:\\*\\*\\*@127\\.0\\.0\\.1:${port}: connect ECONNREFUSED`));
  assert.match(err.message, /is the cluster's "url" right\?/);
  assert.doesNotMatch(err.message, /hunter2/);
  assert.doesNotMatch(err.message, /Connection is closed/);
  // A host starts the same way and says the same.
  const hostErr = await rejection(createHost({ cluster, logger: quietLogger() }).start());
  assert.equal(hostErr.code, 'CommunicationError');
  assert.match(hostErr.message, /cannot reach Redis at redis:\/\/ops:\*\*\*@127\.0\.0\.1:\d+: connect ECONNREFUSED/);
  assert.deepEqual(hostErr.data, { option: 'url' });
});
