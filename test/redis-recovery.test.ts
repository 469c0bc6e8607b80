/**
 * The Redis directory and registry through the bad moments: a node whose
 * record lapsed, and a connection blip during which sessions closed.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { test, type TestContext } from 'node:test';
import { Redis } from 'ioredis';
import { WebSocket } from 'ws';
import { connectSession } from '../src/client/index.js';
import {
  Type,
  WebSocketModule,
  WsAppServiceBase,
  createGateway,
  createHost,
  defineContract,
  implement,
  param,
  redisCluster,
  type Implementation,
} from '../src/index.js';
import { directoryUnit, registryKeys, serviceKeys } from '../src/redis/keys.js';
import { shardOf } from '../src/util/hash-ring.js';
import { ChatAppService, IChatAppService } from './fixtures/services.js';
import { PROCESS_SECRET, REDIS_URL, connectWs, eventually, quietLogger, redisTest, spawnNode, testSecret, uniquePrefix } from './helpers/index.js';

async function stackOn(t: TestContext, url: string, prefix: string, secret = testSecret()) {
  // One secret for every node of the cluster; each node gets a cluster object of its own.
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

/** A WebSocket service without session hooks: its sessions outlive their host's link, as in the cluster bench. */
const IFeedAppService = defineContract({
  name: 'IFeedAppService',
  methods: { push: { params: [param('businessId', Type.String()), param('msg', Type.String())], returns: Type.Integer() } },
});
class FeedAppService extends WsAppServiceBase implements Implementation<typeof IFeedAppService> {
  push(businessId: string, msg: string): Promise<number> {
    return this.sessionManager.pushToBusiness(businessId, msg);
  }
}

test('a gateway that stalled out of the registry gives its open sessions the pushes sent to the others meanwhile', await redisTest(), async (t) => {
  const prefix = uniquePrefix();
  const cluster = () => redisCluster({ url: REDIS_URL, secret: PROCESS_SECRET, prefix, ttlMs: 1000, heartbeatMs: 300 });
  const host = await createHost({
    cluster: cluster(),
    logger: quietLogger(),
    modules: [WebSocketModule],
    services: [implement(IFeedAppService, new FeedAppService())],
  }).start();
  t.after(() => host.stop());
  const gateway = await createGateway({ cluster: cluster(), logger: quietLogger(), http: { port: 0 } }).start();
  t.after(() => gateway.stop());
  const feed = host.proxy(IFeedAppService);
  // The second gateway in a process of its own, so it can really stall (SIGSTOP) past its TTL.
  const stalled = await spawnNode({
    WEFT_ROLE: 'gateway',
    WEFT_PREFIX: prefix,
    WEFT_TTL_MS: '1000',
    WEFT_HEARTBEAT_MS: '300',
    WEFT_NAME: 'gw-stall',
  });
  t.after(() => stalled.kill());
  const got = { here: [] as string[], there: [] as string[] };
  const closedThere: number[] = [];
  const open = (url: string, into: string[], onClose: (code: number) => void) =>
    connectSession(`${url}/api/feed`, {
      businessId: 'stall',
      WebSocket,
      onMessage: (data) => into.push(String(data)),
      onClose: (code) => onClose(code),
    });
  const here = open(gateway.url.replace('http', 'ws'), got.here, () => {});
  t.after(() => here.close());
  const there = open(`ws://127.0.0.1:${stalled.info['httpPort'] as number}`, got.there, (code) => closedThere.push(code));
  t.after(() => there.close());
  await eventually(async () => (await feed.push('stall', 'before')) === 2, 10_000, 'a push reaching both sessions');
  await eventually(() => got.there.includes('before'), 5000, 'the first push on the second gateway');

  stalled.child.kill('SIGSTOP');
  // Reaped by its peers: the push reaches the session on the first gateway only, and is acknowledged.
  // Its peers reap it: its session leaves the directory (the host's view went first), and a push
  // reaches the session on the first gateway only, acknowledged; no frame of it goes to the stalled one.
  const redis = new Redis(REDIS_URL);
  t.after(() => redis.disconnect());
  const sessionsKey = serviceKeys(prefix, directoryUnit('IFeedAppService', shardOf('stall'))).sessions;
  await eventually(async () => (await redis.hlen(sessionsKey)) === 1, 10_000, 'the stalled gateway reaped');
  assert.equal(await feed.push('stall', 'while stalled'), 1);
  stalled.child.kill('SIGCONT');
  // No later push comes to show the gap: the gateway reads it from history once it is listed again.
  await eventually(() => got.there.includes('while stalled'), 10_000, 'the push sent while stalled, at the stalled gateway');
  assert.deepEqual(closedThere, [], 'the session stayed open (it did not resume)');
  assert.equal(got.there.filter((m) => m === 'while stalled').length, 1);
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
