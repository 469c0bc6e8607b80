/**
 * History, positions and resume (docs/delivery.md): weft/client gets each
 * push with its position and, reconnecting to any gateway, every push it
 * missed inside the window, in order, once, then live ones; a plain
 * WebSocket client keeps getting bare payloads.
 */
import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { WebSocket } from 'ws';
import { connectSession, type ClientSession, type OpenInfo, type Position } from '../src/client/index.js';
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
  type Cluster,
  type Gateway,
  type Implementation,
  type WsHistoryOptions,
  type WsSession,
} from '../src/index.js';
import { Redis } from 'ioredis';
import { RedisHistory } from '../src/history/redis-history.js';
import { RedisConnection } from '../src/redis/redis-connection.js';
import { runInContext } from '../src/rpc/context.js';
import { historyKeys } from '../src/redis/keys.js';
import { REDIS_URL, connectWs, eventually, quietLogger, redisTest, testSecret, uniquePrefix } from './helpers/index.js';

const INewsService = defineContract({
  name: 'INewsAppService',
  methods: {
    notify: { params: [param('businessId', Type.String()), param('msg', Type.String())], returns: Type.Integer() },
    notifyConfirmed: {
      params: [param('businessId', Type.String()), param('msg', Type.String()), param('timeoutMs', Type.Integer())],
      returns: Type.Integer(),
    },
    /** Ends the businessId's sessions with 1012, as a restart would: clients reconnect. */
    restart: { params: [param('businessId', Type.String())], returns: Type.Integer() },
  },
});

class NewsService extends WsAppServiceBase implements Implementation<typeof INewsService> {
  static override history: Partial<WsHistoryOptions> | false = { maxEntries: 20, ttlMs: 60_000 };

  notify(businessId: string, msg: string): Promise<number> {
    return this.sessionManager.pushToBusiness(businessId, msg);
  }

  notifyConfirmed(businessId: string, msg: string, timeoutMs: number): Promise<number> {
    return this.sessionManager.pushToBusiness(businessId, msg, { ack: 'client', receiptTimeoutMs: timeoutMs });
  }

  restart(businessId: string): Promise<number> {
    return this.sessionManager.closeBusiness(businessId, 1012, 'restart');
  }

  /** `?openMs=` holds the open that long; `?refuse=1` refuses it once held. */
  override async onOpen(session: WsSession): Promise<void> {
    const ms = Number(session.query['openMs'] ?? 0);
    if (ms > 0) await sleep(ms);
    if (session.query['refuse'] === '1') throw new Error('refused');
  }
}

class PlainNewsService extends NewsService {
  static override history = false as const satisfies Partial<WsHistoryOptions> | false;
}

interface NewsStack {
  cluster: Cluster;
  gateways: Gateway[];
  notify(businessId: string, msg: string): Promise<number>;
  notifyConfirmed(businessId: string, msg: string, timeoutMs: number): Promise<number>;
  restart(businessId: string): Promise<number>;
  ws(gateway: number): string;
}

async function newsStack(t: TestContext, options: { gateways?: number; history?: boolean } = {}): Promise<NewsStack> {
  const cluster = memoryCluster();
  const service = options.history === false ? new PlainNewsService() : new NewsService();
  const host = createHost({ cluster, logger: quietLogger(), modules: [WebSocketModule], services: [implement(INewsService, service)] });
  await host.start();
  t.after(() => host.stop());
  const gateways: Gateway[] = [];
  for (let i = 0; i < (options.gateways ?? 2); i++) {
    const gateway = await createGateway({ cluster, logger: quietLogger(), http: { host: '127.0.0.1', port: 0 } }).start();
    t.after(() => gateway.stop());
    gateways.push(gateway);
  }
  const proxy = host.proxy(INewsService);
  return {
    cluster,
    gateways,
    notify: (b, m) => proxy.notify(b, m),
    notifyConfirmed: (b, m, ms) => proxy.notifyConfirmed(b, m, ms),
    restart: (b) => proxy.restart(b),
    ws: (i) => `${gateways[i]!.url.replace(/^http/, 'ws')}/api/news`,
  };
}

interface Received {
  data: unknown;
  position: Position | undefined;
}

interface Watched {
  session: ClientSession;
  received: Received[];
  opens: OpenInfo[];
  texts(): string[];
}

function watch(t: TestContext, url: string, businessId: string, since?: Position, query = ''): Watched {
  const received: Received[] = [];
  const opens: OpenInfo[] = [];
  const session = connectSession(`${url}${query}`, {
    businessId,
    WebSocket,
    initialDelayMs: 20,
    ...(since === undefined ? {} : { since }),
    onMessage: (data, info) => received.push({ data, position: info.position }),
    onOpen: (info) => opens.push(info),
  });
  t.after(() => session.close());
  return { session, received, opens, texts: () => received.map((r) => String(r.data)) };
}

test('a plain WebSocket client gets the bare payload, exactly as before', async (t) => {
  const stack = await newsStack(t, { gateways: 1 });
  const client = await connectWs(`${stack.ws(0)}?businessId=100`);
  t.after(() => client.ws.close());
  await eventually(async () => (await stack.notify('100', 'message:hello')) === 1);
  assert.deepEqual(await client.waitFor(1), ['message:hello']);
  assert.equal(client.ws.protocol, '');
});

test('weft/client gets each push with its position: one epoch, offsets one apart per push to a businessId', async (t) => {
  const stack = await newsStack(t, { gateways: 1 });
  const a = watch(t, stack.ws(0), 'b1');
  await eventually(() => a.opens.length === 1);
  for (const m of ['one', 'two', 'three']) assert.equal(await stack.notify('b1', m), 1);
  await eventually(() => a.received.length === 3);
  assert.deepEqual(a.texts(), ['one', 'two', 'three']);
  const [p1, p2, p3] = a.received.map((r) => r.position!);
  assert.equal(p1!.epoch, p3!.epoch);
  assert.deepEqual([p2!.offset - p1!.offset, p3!.offset - p2!.offset], [1, 1]);
  assert.deepEqual(a.session.position, p3);
  assert.equal(a.opens[0]!.resumed, false);
});

test('resumes from its last position on another gateway: every missed push in order, once, then live ones', async (t) => {
  const stack = await newsStack(t, { gateways: 2 });
  const first = watch(t, stack.ws(0), 'b2');
  await eventually(() => first.opens.length === 1);
  await stack.notify('b2', 'p1');
  await stack.notify('b2', 'p2');
  await eventually(() => first.received.length === 2);
  const last = first.session.position!;
  first.session.close();
  await eventually(() => !first.session.isOpen);
  for (let i = 3; i <= 8; i++) await stack.notify('b2', `p${i}`);

  const second = watch(t, stack.ws(1), 'b2', last);
  await eventually(() => second.opens.length === 1);
  assert.deepEqual(second.opens[0], { sessionId: second.opens[0]!.sessionId, resumed: true, recovered: true, reason: undefined, replayed: 6 });
  await eventually(() => second.received.length === 6);
  await eventually(async () => (await stack.notify('b2', 'p9')) === 1);
  await eventually(() => second.received.length === 7);
  assert.deepEqual(second.texts(), ['p3', 'p4', 'p5', 'p6', 'p7', 'p8', 'p9']);
  const offsets = second.received.map((r) => r.position!.offset);
  assert.deepEqual(
    offsets,
    offsets.map((_, i) => last.offset + 1 + i),
  );
});

test('pushes during a reconnect reach the client after it is back, once each, in order', async (t) => {
  const stack = await newsStack(t, { gateways: 1 });
  const client = watch(t, stack.ws(0), 'b3');
  await eventually(() => client.opens.length === 1);
  let sent = 0;
  let pushing = true;
  const pusher = (async () => {
    while (pushing) {
      await stack.notify('b3', `m${++sent}`);
      await sleep(2);
    }
  })();
  await eventually(() => client.received.length >= 5);
  // The session ends under the client; it reconnects by itself with its last position while pushes go on.
  assert.equal(await stack.restart('b3'), 1);
  await eventually(() => client.opens.length === 2, 10_000, 'the client back');
  await sleep(100);
  pushing = false;
  await pusher;
  await eventually(() => client.received.length === sent, 5000, `all ${sent} pushes`);
  assert.deepEqual(
    client.texts(),
    Array.from({ length: sent }, (_, i) => `m${i + 1}`),
  );
  assert.deepEqual([client.opens[1]!.resumed, client.opens[1]!.recovered], [true, true]);
});

test('a client away longer than the window is told it did not recover, and goes on from the top', async (t) => {
  const stack = await newsStack(t, { gateways: 1 });
  const first = watch(t, stack.ws(0), 'b4');
  await eventually(() => first.opens.length === 1);
  await stack.notify('b4', 'seen');
  await eventually(() => first.received.length === 1);
  const last = first.session.position!;
  first.session.close();
  // The service keeps 20: 25 pushes later the first missed one is gone.
  for (let i = 0; i < 25; i++) await stack.notify('b4', `missed${i}`);
  const second = watch(t, stack.ws(0), 'b4', last);
  await eventually(() => second.opens.length === 1);
  assert.equal(second.opens[0]!.recovered, false);
  assert.equal(second.opens[0]!.reason, 'window-passed');
  await eventually(async () => (await stack.notify('b4', 'live')) === 1);
  await eventually(() => second.received.length === 1);
  assert.deepEqual(second.texts(), ['live']);
  assert.equal(second.received[0]!.position!.offset, last.offset + 26);
});

test('a position of another epoch is not recovered (the history it came from is gone)', async (t) => {
  const stack = await newsStack(t, { gateways: 1 });
  const client = watch(t, stack.ws(0), 'b5', { epoch: 'gone', offset: 3 });
  await eventually(() => client.opens.length === 1);
  assert.deepEqual([client.opens[0]!.resumed, client.opens[0]!.recovered, client.opens[0]!.reason], [true, false, 'epoch-changed']);
});

test('a service without history: positions are absent and a resuming client hears no-history', async (t) => {
  const stack = await newsStack(t, { gateways: 1, history: false });
  const client = watch(t, stack.ws(0), 'b6', { epoch: 'x', offset: 1 });
  await eventually(() => client.opens.length === 1);
  assert.equal(client.opens[0]!.reason, 'no-history');
  await eventually(async () => (await stack.notify('b6', 'hi')) === 1);
  await eventually(() => client.received.length === 1);
  assert.equal(client.received[0]!.position, undefined);
});

test('a push while a session opens is delivered when it opens and counted then; one for a session refused in onOpen is not counted', async (t) => {
  const stack = await newsStack(t, { gateways: 1 });
  const opening = connectWs(`${stack.ws(0)}?businessId=b7&openMs=400`);
  const refused = connectWs(`${stack.ws(0)}?businessId=b7&openMs=400&refuse=1`).catch((e: Error) => e);
  await sleep(150); // both are in onOpen now
  const reached = await stack.notify('b7', 'early');
  const client = await opening;
  t.after(() => client.ws.close());
  assert.deepEqual(await client.waitFor(1), ['early']);
  assert.ok((await refused) instanceof Error);
  assert.equal(reached, 1);
});

test("ack: 'client' counts the sessions whose weft/client confirmed receipt, not bare clients", async (t) => {
  const stack = await newsStack(t, { gateways: 2 });
  const confirming = watch(t, stack.ws(0), 'b8');
  const other = watch(t, stack.ws(1), 'b8');
  const bare = await connectWs(`${stack.ws(1)}?businessId=b8`);
  t.after(() => bare.ws.close());
  await eventually(() => confirming.opens.length === 1 && other.opens.length === 1);
  await eventually(async () => (await stack.notify('b8', 'warm-up')) === 3);
  assert.equal(await stack.notifyConfirmed('b8', 'important', 2000), 2);
  await eventually(() => confirming.texts().includes('important') && other.texts().includes('important'));
  assert.deepEqual(await bare.waitFor(2), ['warm-up', 'important']);
});

test('a since without weft.v1, or one that is not a position, is refused with 400', async (t) => {
  const stack = await newsStack(t, { gateways: 1 });
  const bare = await connectWs(`${stack.ws(0)}?businessId=b9&since=abc:1`).catch((e: { status: number; body: string }) => e);
  assert.equal((bare as { status: number }).status, 400);
  assert.match((bare as { body: string }).body, /weft\.v1/);
  const malformed = await connectWs(`${stack.ws(0)}?businessId=b9&since=nope`, { protocols: ['weft.v1'] }).catch(
    (e: { status: number; body: string }) => e,
  );
  assert.equal((malformed as { status: number }).status, 400);
});

test('pushes from two hosts at once reach a weft/client in offset order, every one, once', async (t) => {
  const cluster = memoryCluster();
  const services = [new NewsService(), new NewsService()];
  for (const [i, service] of services.entries()) {
    const host = createHost({
      cluster,
      name: `news${i}`,
      logger: quietLogger(),
      modules: [WebSocketModule],
      services: [implement(INewsService, service)],
    });
    await host.start();
    t.after(() => host.stop());
  }
  const gateway = await createGateway({ cluster, logger: quietLogger(), http: { host: '127.0.0.1', port: 0 } }).start();
  t.after(() => gateway.stop());
  const client = watch(t, `${gateway.url.replace(/^http/, 'ws')}/api/news`, 'both');
  await eventually(() => client.opens.length === 1);
  await eventually(async () => (await services[0]!.notify('both', 'warm-up')) === 1 && (await services[1]!.notify('both', 'warm-up')) === 1);
  await eventually(() => client.received.length === 2);
  // Both hosts push at once, 150 each, with up to 20 of each in flight: their frames cross on the way.
  const perHost = 150;
  await Promise.all(
    services.map(async (service, h) => {
      for (let i = 0; i < perHost; i += 20) {
        await Promise.all(Array.from({ length: Math.min(20, perHost - i) }, (_, j) => service.notify('both', `h${h}-${i + j}`)));
      }
    }),
  );
  await eventually(() => client.received.length === 2 + 2 * perHost, 10_000, 'every push');
  const offsets = client.received.map((r) => r.position!.offset);
  assert.deepEqual(
    offsets,
    offsets.map((_, i) => offsets[0]! + i),
  );
  assert.equal(new Set(client.texts()).size, 1 + 2 * perHost);
});

test('a service whose static history is not { maxEntries, ttlMs } or false is refused at createHost, naming the option', () => {
  class Bad extends NewsService {
    static override history = { maxEntries: 0 };
  }
  assert.throws(
    () => createHost({ logger: quietLogger(), modules: [WebSocketModule], services: [implement(INewsService, new Bad())] }),
    (e: Error & { code?: string }) => e.code === 'InvalidOption' && /INewsAppService\.history/.test(e.message) && /maxEntries/.test(e.message),
  );
});

test(
  'history lost while a client is connected: pushes of the new epoch it did not get live are read from history, in order',
  await redisTest(),
  async (t) => {
    // Found by the chaos test: after Redis restarted empty, a push of the new epoch reached only the
    // gateways whose sessions were already back in the directory; a session elsewhere then got the
    // next push, jumped to its offset, and never got the one before, nor was it told.
    const prefix = uniquePrefix();
    const cluster = redisCluster({ url: REDIS_URL, secret: testSecret(), prefix });
    const host = createHost({ cluster, logger: quietLogger(), modules: [WebSocketModule], services: [implement(INewsService, new NewsService())] });
    await host.start();
    t.after(() => host.stop());
    const gateway = await createGateway({ cluster, logger: quietLogger(), http: { host: '127.0.0.1', port: 0 } }).start();
    t.after(() => gateway.stop());
    const news = host.proxy(INewsService);
    const client = watch(t, `${gateway.url.replace(/^http/, 'ws')}/api/news`, 'lost');
    await eventually(() => client.opens.length === 1);
    await eventually(async () => (await news.notify('lost', 'old-1')) === 1);
    await eventually(() => client.received.length === 1);
    const oldEpoch = client.received[0]!.position!.epoch;
    // The history is lost (as when Redis restarts empty) ...
    const redis = new Redis(REDIS_URL);
    t.after(() => redis.disconnect());
    const keys = historyKeys(prefix, 'INewsAppService', 'lost');
    await redis.del(keys.meta, keys.stream);
    // ... a push of the new epoch is kept but does not reach this gateway live ...
    const connection = new RedisConnection({ target: REDIS_URL, logger: quietLogger() });
    const history = new RedisHistory(connection, { prefix });
    t.after(() => history.close());
    const missed = await history.append('INewsAppService', 'lost', Buffer.from('new-1'), true, { maxEntries: 20, ttlMs: 60_000 });
    assert.equal(missed.offset, 1);
    assert.notEqual(missed.epoch, oldEpoch);
    // ... and the next one does: the client gets both, in order.
    assert.equal(await news.notify('lost', 'new-2'), 1);
    await eventually(() => client.received.length === 3, 5000, 'the push the gateway missed, from history');
    assert.deepEqual(client.texts(), ['old-1', 'new-1', 'new-2']);
    assert.deepEqual(
      client.received.slice(1).map((r) => r.position),
      [
        { epoch: missed.epoch, offset: 1 },
        { epoch: missed.epoch, offset: 2 },
      ],
    );
    assert.equal(client.opens.length, 1);
  },
);

test('a push method run again for the same call (a failover) is kept once: the client gets it once, at one position', async (t) => {
  const stack = await newsStack(t, { gateways: 1 });
  const client = watch(t, stack.ws(0), 'dup');
  await eventually(() => client.opens.length === 1);
  const service = new NewsService();
  // The service instance the stack's host runs is not reachable here; one started on the same cluster is.
  const host = createHost({
    cluster: stack.cluster,
    logger: quietLogger(),
    modules: [WebSocketModule],
    services: [implement(INewsService, service)],
  });
  await host.start();
  t.after(() => host.stop());
  // The same call context on both runs, as a caller failing over sends the same call key to the next host.
  const ctx = { traceId: 't', callerNodeId: 'caller', headers: {}, deadline: Date.now() + 5000, callKey: 'k-failover' };
  // A fresh context per run, as each host builds its own from the same call.
  const run = (): Promise<unknown> => runInContext({ ...ctx }, () => service.notify('dup', 'exactly once'), service, []) as Promise<unknown>;
  await eventually(async () => (await run()) === 1);
  await run();
  await sleep(200);
  assert.deepEqual(client.texts(), ['exactly once']);
});
