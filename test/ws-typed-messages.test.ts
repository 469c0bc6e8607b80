/**
 * Typed messages both ways: a contract's `pushes` are checked when sent and
 * reach `weft/client`'s `on(name)` handlers; its `messages` are weft.v1
 * requests routed to the service's method of that name on the bound host,
 * with params checked (ValidateError, the session kept) and the handler's
 * return value or error as the reply `call` awaits. Plain clients keep the
 * raw onMessage path. The gateway lists the WebSocket path in OpenAPI and
 * serves an AsyncAPI 3.0.0 document at /asyncapi.json. Real gateway, host
 * and sockets throughout.
 */
import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import { WebSocket } from 'ws';
import { CallError, connectSession, isCallError, type ClientSession, type WebSocketConstructor } from '../src/client/index.js';
import {
  BusinessException,
  Type,
  WebSocketModule,
  WsAppServiceBase,
  createClient,
  createGateway,
  createHost,
  defineContract,
  implement,
  memoryCluster,
  param,
  typedPush,
  type Cluster,
  type Implementation,
  type WsSession,
} from '../src/index.js';
import { connectWs, eventually, httpJson, quietLogger, rejection } from './helpers/index.js';

const WS: WebSocketConstructor = WebSocket;

export const IShopAppService = defineContract({
  name: 'IShopAppService',
  methods: {
    ship: { params: [param('businessId', Type.String()), param('orderId', Type.String())], returns: Type.Integer() },
    announce: { params: [param('businessId', Type.String()), param('order', Type.Unknown())], returns: Type.Integer() },
  },
  pushes: {
    orderShipped: Type.Object({ orderId: Type.String(), at: Type.Integer() }, { description: 'An order left the warehouse.' }),
  },
  messages: {
    typing: {
      params: Type.Object({ room: Type.String({ minLength: 1 }) }),
      returns: Type.Object({ seen: Type.String() }),
      description: 'The user is typing in a room.',
    },
    refuse: { params: Type.Object({ why: Type.String() }) },
    crash: {},
    hold: { returns: Type.Integer() },
    step: { params: Type.Object({ n: Type.Integer() }), returns: Type.Integer() },
  },
});

/** A push-only service: no hooks, no messages. */
const INewsAppService = defineContract({ name: 'INewsAppService', methods: {} });
class NewsAppService extends WsAppServiceBase {}

class ShopAppService extends WsAppServiceBase<typeof IShopAppService> implements Implementation<typeof IShopAppService> {
  /** What ran, in order: raw messages as `raw:<text>`, steps as `step:<n>`. */
  readonly ran: string[] = [];
  readonly errors: unknown[] = [];
  #active = 0;
  maxActive = 0;
  /** Set by a test: `hold` waits for it. */
  release: Promise<void> = Promise.resolve();
  holding = 0;

  ship(businessId: string, orderId: string): Promise<number> {
    return this.pushes.toBusiness(businessId, 'orderShipped', { orderId, at: 1_700_000_000 });
  }

  announce(businessId: string, order: unknown): Promise<number> {
    // What an HTTP caller sent, unchecked: the push's schema is what checks it.
    return this.pushes.toBusiness(businessId, 'orderShipped', order as { orderId: string; at: number });
  }

  typing(params: { room: string }, session: WsSession): { seen: string } {
    return { seen: `${session.businessId} in ${params.room} (${session.id.length > 0 ? 'session' : 'none'})` };
  }

  refuse(params: { why: string }): void {
    throw new BusinessException(params.why, { data: { retry: false } });
  }

  crash(): void {
    throw new Error('secret detail at /srv/shop.js:12');
  }

  async hold(): Promise<number> {
    this.holding += 1;
    await this.release;
    return 7;
  }

  async step(params: { n: number }): Promise<number> {
    this.#active += 1;
    this.maxActive = Math.max(this.maxActive, this.#active);
    // A turn of the event loop: room for the next step to start, were they not one at a time.
    await new Promise<void>((r) => setImmediate(r));
    this.ran.push(`step:${params.n}`);
    this.#active -= 1;
    return params.n * 10;
  }

  override async onMessage(_session: WsSession, message: string | Buffer): Promise<void> {
    this.#active += 1;
    this.maxActive = Math.max(this.maxActive, this.#active);
    await new Promise<void>((r) => setImmediate(r));
    this.ran.push(`raw:${String(message)}`);
    this.#active -= 1;
  }

  override onError(_session: WsSession, error: unknown): void {
    this.errors.push(error);
  }
}

interface Stack {
  shop: ShopAppService;
  url: string;
  ws: string;
  cluster: Cluster;
}

async function stack(t: TestContext, options: { overTcp?: boolean } = {}): Promise<Stack> {
  const cluster = memoryCluster();
  const shop = new ShopAppService();
  const direct = options.overTcp === true ? { directInProcess: false } : {};
  const host = await createHost({
    cluster,
    logger: quietLogger(),
    modules: [WebSocketModule],
    services: [implement(IShopAppService, shop), implement(INewsAppService, new NewsAppService())],
    ...direct,
  }).start();
  t.after(() => host.stop());
  const gateway = await createGateway({ cluster, logger: quietLogger(), http: { host: '127.0.0.1', port: 0 }, ...direct }).start();
  t.after(() => gateway.stop());
  return { shop, url: gateway.url, ws: gateway.url.replace(/^http/, 'ws'), cluster };
}

/** A weft/client session typed by the contract, open (welcome received). */
async function open(
  t: TestContext,
  s: Stack,
  businessId: string,
  extra: { callTimeoutMs?: number; onMessage?: (data: unknown) => void } = {},
): Promise<ClientSession<typeof IShopAppService>> {
  let opened = false;
  const session = connectSession<typeof IShopAppService>(`${s.ws}/api/shop`, {
    businessId,
    WebSocket: WS,
    onOpen: () => (opened = true),
    ...extra,
  });
  t.after(() => session.close());
  await eventually(() => opened, 5000, 'welcome');
  return session;
}

async function callError(p: Promise<unknown>): Promise<CallError> {
  try {
    const value = await p;
    return assert.fail(`expected a rejection, got ${JSON.stringify(value)}`);
  } catch (e) {
    assert.ok(isCallError(e), `a CallError, got ${String(e)}`);
    return e;
  }
}

for (const overTcp of [false, true]) {
  const over = overTcp ? ' (over a TCP link)' : '';

  test(`a typed push reaches the client's on handler with its payload; other pushes still reach onMessage${over}`, async (t) => {
    const s = await stack(t, { overTcp });
    const raw: unknown[] = [];
    const session = await open(t, s, 'b1', { onMessage: (d) => raw.push(d) });
    const shipped: { orderId: string; at: number; position: boolean }[] = [];
    session.on('orderShipped', (order, info) => shipped.push({ ...order, position: info.position !== undefined }));

    const answer = await httpJson(`${s.url}/api/shop/ship?businessId=b1&orderId=A-1`);
    assert.equal(answer.body.result, 1, JSON.stringify(answer.body));
    await eventually(() => shipped.length === 1, 5000, 'the typed push');
    assert.deepEqual(shipped, [{ orderId: 'A-1', at: 1_700_000_000, position: true }]);

    const client = await createClient({ cluster: s.cluster, logger: quietLogger() }).start();
    t.after(() => client.stop());
    assert.equal(await (await client.sessions(IShopAppService)).pushToBusiness('b1', 'plain text'), 1);
    await eventually(() => raw.length === 1, 5000, 'the raw push');
    assert.deepEqual(raw, ['plain text'], 'the typed push did not reach onMessage');
  });

  test(`call resolves with the handler's return value, run on the bound host with the session${over}`, async (t) => {
    const s = await stack(t, { overTcp });
    const session = await open(t, s, 'b2');
    const reply = await session.call('typing', { room: 'general' });
    assert.deepEqual(reply, { seen: 'b2 in general (session)' });
    assert.equal(await session.call('refuse', { why: 'x' }).catch((e: CallError) => e.code), 'BusinessError');
  });
}

test('a typed push to a room reaches the on handler of every member, with the room it came in, and no one else', async (t) => {
  const s = await stack(t);
  const got: { who: string; orderId: string; room: string | undefined }[] = [];
  const members = [await open(t, s, 'r1'), await open(t, s, 'r2')];
  const outsider = await open(t, s, 'r3');
  members.forEach((m, i) => m.on('orderShipped', (order, info) => got.push({ who: `m${i}`, orderId: order.orderId, room: info.room })));
  outsider.on('orderShipped', (order) => got.push({ who: 'outsider', orderId: order.orderId, room: undefined }));
  const client = await createClient({ cluster: s.cluster, logger: quietLogger() }).start();
  t.after(() => client.stop());
  const sessions = await client.sessions(IShopAppService);
  for (const businessId of ['r1', 'r2']) {
    const [id] = await sessions.sessionIds(businessId);
    assert.equal(await sessions.join(id!, 'dock'), true);
  }
  const pushes = typedPush(IShopAppService, sessions);
  assert.equal(await pushes.toRoom('dock', 'orderShipped', { orderId: 'R-1', at: 5 }), 2);
  await eventually(() => got.length === 2, 5000, 'both members');
  assert.deepEqual(
    got.sort((a, b) => a.who.localeCompare(b.who)),
    [
      { who: 'm0', orderId: 'R-1', room: 'dock' },
      { who: 'm1', orderId: 'R-1', room: 'dock' },
    ],
  );
  const bad = await rejection(pushes.toRoom('dock', 'orderShipped', { orderId: 'R-2' } as never));
  assert.equal(bad.code, 'BadRequest');
});

test('a push whose payload breaks its schema rejects with BadRequest naming the push and the field, and sends nothing', async (t) => {
  const s = await stack(t);
  const raw: unknown[] = [];
  const session = await open(t, s, 'b3', { onMessage: (d) => raw.push(d) });
  const shipped: string[] = [];
  session.on('orderShipped', (order) => shipped.push(order.orderId));

  // From the service (an HTTP caller's bad order), then from a worker with typedPush.
  const bad = await httpJson(`${s.url}/api/shop/announce?businessId=b3`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ orderId: 42, at: 1 }),
  });
  assert.equal(bad.status, 400);
  assert.equal(bad.body.code, 'BadRequest');
  assert.match(bad.body.errorMessage ?? '', /push orderShipped of IShopAppService/);
  assert.match(bad.body.errorMessage ?? '', /orderId: Expected string/);

  const client = await createClient({ cluster: s.cluster, logger: quietLogger() }).start();
  t.after(() => client.stop());
  const pushes = typedPush(IShopAppService, await client.sessions(IShopAppService));
  const error = await rejection(pushes.toBusiness('b3', 'orderShipped', { orderId: 'A-2' } as never));
  assert.equal(error.code, 'BadRequest');
  assert.match(error.message, /orderShipped/);
  assert.deepEqual([...new Set(error.validErrors?.flatMap((v) => v.memberNames))], ['at']);
  const unknown = await rejection(pushes.toBusiness('b3', 'orderLost' as never, {} as never));
  assert.equal(unknown.code, 'BadRequest');
  assert.match(unknown.message, /declares no push "orderLost"/);

  // A good one after them is the first and only thing the client got.
  assert.equal(await pushes.toBusiness('b3', 'orderShipped', { orderId: 'A-3', at: 3 }), 1);
  await eventually(() => shipped.length === 1, 5000, 'the good push');
  assert.deepEqual(shipped, ['A-3']);
  assert.deepEqual(raw, []);
});

test('typedPush reaches one session (toSession), every session (broadcast), and its checked JSON goes with any raw push (encode)', async (t) => {
  const s = await stack(t);
  const first = await open(t, s, 'e1');
  const second = await open(t, s, 'e2');
  const got: string[] = [];
  first.on('orderShipped', (order) => got.push(`first ${order.orderId}`));
  second.on('orderShipped', (order) => got.push(`second ${order.orderId}`));
  const client = await createClient({ cluster: s.cluster, logger: quietLogger() }).start();
  t.after(() => client.stop());
  const sessions = await client.sessions(IShopAppService);
  const pushes = typedPush(IShopAppService, sessions);
  const [firstId] = await sessions.sessionIds('e1');
  assert.equal(await pushes.toSession(firstId!, 'orderShipped', { orderId: 'one', at: 1 }), true);
  await eventually(() => got.length === 1, 5000, 'the push to one session');
  assert.equal(await pushes.broadcast('orderShipped', { orderId: 'all', at: 2 }), 2);
  await eventually(() => got.length === 3, 5000, 'the broadcast');
  const text = pushes.encode('orderShipped', { orderId: 'raw', at: 3 });
  assert.equal(text, '{"push":"orderShipped","data":{"orderId":"raw","at":3}}');
  assert.equal(await sessions.pushToBusiness('e2', text), 1);
  await eventually(() => got.length === 4, 5000, 'the raw push of the encoded text');
  assert.deepEqual(got.sort(), ['first all', 'first one', 'second all', 'second raw']);
  assert.throws(
    () => pushes.encode('orderShipped', { orderId: 'x' } as never),
    (e: unknown) => (e as { code?: string }).code === 'BadRequest',
  );
});

test('params that break the schema reject with ValidateError naming the field, and the session keeps working', async (t) => {
  const s = await stack(t);
  let opens = 0;
  const session = connectSession<typeof IShopAppService>(`${s.ws}/api/shop`, { businessId: 'b4', WebSocket: WS, onOpen: () => (opens += 1) });
  t.after(() => session.close());
  await eventually(() => opens === 1, 5000, 'welcome');

  const error = await callError(session.call('typing', { room: '' }));
  assert.equal(error.code, 'ValidateError');
  assert.match(error.message, /typing/);
  assert.deepEqual(
    error.validErrors?.map((v) => v.memberNames),
    [['room']],
  );
  const missing = await callError(session.call('typing', undefined as never));
  assert.equal(missing.code, 'ValidateError');
  assert.deepEqual(missing.validErrors?.[0]?.memberNames, ['params']);

  assert.deepEqual(await session.call('typing', { room: 'after' }), { seen: 'b4 in after (session)' });
  assert.equal(session.isOpen, true);
  assert.equal(opens, 1, 'the same connection');
});

test('a handler that throws BusinessException gives the caller its code, message and data; anything else is a ServerError that tells nothing', async (t) => {
  const s = await stack(t);
  const session = await open(t, s, 'b5');
  const refused = await callError(session.call('refuse', { why: 'out of stock' }));
  assert.equal(refused.code, 'BusinessError');
  assert.equal(refused.message, 'out of stock');
  assert.deepEqual(refused.data, { retry: false });

  const crashed = await callError(session.call('crash'));
  assert.equal(crashed.code, 'ServerError');
  assert.doesNotMatch(crashed.message, /secret/);
  assert.equal(s.shop.errors.length, 1, 'onError heard of the unexpected one');
  assert.equal(await session.call('step', { n: 1 }), 10, 'the session goes on');
});

test('an unknown message name rejects with NotFound and the session stays open', async (t) => {
  const s = await stack(t);
  const session = await open(t, s, 'b6');
  const error = await callError(session.call('nosuch' as never, {}));
  assert.equal(error.code, 'NotFound');
  assert.match(error.message, /IShopAppService has no message "nosuch"/);
  assert.equal(await session.call('step', { n: 2 }), 20);
});

test("a session's calls run one at a time, in the order they were made, behind its raw messages", async (t) => {
  const s = await stack(t);
  const session = await open(t, s, 'b7');
  assert.equal(session.send('first'), true);
  const results = await Promise.all([1, 2, 3, 4, 5].map((n) => session.call('step', { n })));
  assert.equal(session.send('last'), true);
  assert.deepEqual(results, [10, 20, 30, 40, 50]);
  await eventually(() => s.shop.ran.length === 7, 5000, 'the last raw message');
  assert.deepEqual(s.shop.ran, ['raw:first', 'step:1', 'step:2', 'step:3', 'step:4', 'step:5', 'raw:last']);
  assert.equal(s.shop.maxActive, 1);
});

test('a call with no reply in time rejects with Timeout; the late reply is ignored and the session goes on', async (t) => {
  const s = await stack(t);
  let release!: () => void;
  s.shop.release = new Promise<void>((r) => (release = r));
  const session = await open(t, s, 'b8', { callTimeoutMs: 200 });
  const error = await callError(session.call('hold'));
  assert.equal(error.code, 'Timeout');
  assert.match(error.message, /hold within 200 ms/);
  assert.equal(s.shop.holding, 1, 'the handler was running');
  release();
  assert.deepEqual(await session.call('typing', { room: 'r' }, { timeoutMs: 5000 }), { seen: 'b8 in r (session)' });
});

test('calls still waiting when the session closes reject with OutcomeUnknown; calls while not connected with CommunicationError', async (t) => {
  const s = await stack(t);
  s.shop.release = new Promise<void>(() => {});
  const session = await open(t, s, 'b9');
  const waiting = session.call('hold');
  await eventually(() => s.shop.holding === 1, 5000, 'the handler running');
  session.close();
  assert.equal((await callError(waiting)).code, 'OutcomeUnknown');
  assert.equal((await callError(session.call('step', { n: 1 }))).code, 'CommunicationError');
});

test('a plain WebSocket client keeps the raw onMessage path, and gets a typed push as its JSON text', async (t) => {
  const s = await stack(t);
  const plain = await connectWs(`${s.ws}/api/shop?businessId=b10`);
  t.after(() => plain.ws.close());
  // A text that looks like a weft.v1 request is just a message to a plain client's onMessage.
  const lookalike = JSON.stringify({ type: 'request', id: 1, name: 'step', params: { n: 9 } });
  plain.ws.send('hello');
  plain.ws.send(lookalike);
  await eventually(() => s.shop.ran.length === 2, 5000, 'both raw messages');
  assert.deepEqual(s.shop.ran, ['raw:hello', `raw:${lookalike}`]);

  assert.equal((await httpJson(`${s.url}/api/shop/ship?businessId=b10&orderId=A-9`)).body.result, 1);
  const [text] = await plain.waitFor(1);
  assert.deepEqual(JSON.parse(text!), { push: 'orderShipped', data: { orderId: 'A-9', at: 1_700_000_000 } });
});

test('a call to a service that takes no messages is answered NotFound by the gateway', async (t) => {
  const s = await stack(t);
  let opened = false;
  const news = connectSession(`${s.ws}/api/news`, { businessId: 'n1', WebSocket: WS, onOpen: () => (opened = true) });
  t.after(() => news.close());
  await eventually(() => opened, 5000, 'welcome');
  const error = await callError(news.call('typing', { room: 'a' }));
  assert.equal(error.code, 'NotFound');
  assert.match(error.message, /INewsAppService takes no messages/);
  assert.equal(news.isOpen, true);
});

test('a malformed weft.v1 request is answered with BadRequest, and the session goes on', async (t) => {
  const s = await stack(t);
  const v1 = await connectWs(`${s.ws}/api/shop?businessId=b11`, { protocols: ['weft.v1'] });
  t.after(() => v1.ws.close());
  await v1.waitFor(1); // welcome
  v1.ws.send(JSON.stringify({ type: 'request', id: 5 }));
  v1.ws.send(JSON.stringify({ type: 'request', name: 'step' }));
  v1.ws.send(JSON.stringify({ type: 'request', id: 6, name: 'step', params: { n: 4 } }));
  const [, noName, noId, reply] = await v1.waitFor(4);
  const refused = JSON.parse(noName!) as { id: number; error: { code: string } };
  assert.equal(refused.error.code, 'BadRequest');
  assert.equal(refused.id, 5);
  assert.equal((JSON.parse(noId!) as { type: string }).type, 'error', 'no id to answer: an error control message');
  assert.deepEqual(JSON.parse(reply!), { type: 'reply', id: 6, result: 40 });
});

test('the gateway serves an AsyncAPI 3.0.0 document of the pushes and messages, and OpenAPI lists the WebSocket path', async (t) => {
  const s = await stack(t);
  const res = await fetch(`${s.url}/asyncapi.json`);
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /application\/json/);
  const doc = (await res.json()) as {
    asyncapi: string;
    channels: Record<string, { address: string; messages: Record<string, unknown> }>;
    operations: Record<string, { action: string; channel: { $ref: string }; messages: { $ref: string }[]; reply?: { messages: { $ref: string }[] } }>;
    components: { messages: Record<string, { payload: { properties: Record<string, unknown> } }> };
  };
  assert.equal(doc.asyncapi, '3.0.0');
  assert.equal(doc.channels['IShopAppService']?.address, '/api/shop');
  const ops = Object.entries(doc.operations).map(([id, op]) => `${op.action} ${id}`);
  assert.deepEqual(ops.sort(), [
    'receive IShopAppService_message_crash',
    'receive IShopAppService_message_hold',
    'receive IShopAppService_message_refuse',
    'receive IShopAppService_message_step',
    'receive IShopAppService_message_typing',
    'send IShopAppService_push_orderShipped',
  ]);
  // Every reference resolves, and payloads carry the contract's schemas.
  const resolve = (ref: string): unknown =>
    ref
      .slice(2)
      .split('/')
      .reduce<unknown>((at, part) => (at as Record<string, unknown> | undefined)?.[part], doc);
  for (const op of Object.values(doc.operations)) {
    assert.ok(resolve(op.channel.$ref) !== undefined, op.channel.$ref);
    for (const m of [...op.messages, ...(op.reply?.messages ?? [])]) {
      const inChannel = resolve(m.$ref) as { $ref: string } | undefined;
      assert.ok(inChannel !== undefined && resolve(inChannel.$ref) !== undefined, m.$ref);
    }
  }
  const push = doc.components.messages['IShopAppService_push_orderShipped']!;
  assert.deepEqual((push.payload.properties['data'] as { required: string[] }).required, ['orderId', 'at']);
  const typing = doc.components.messages['IShopAppService_message_typing']!;
  assert.deepEqual(Object.keys((typing.payload.properties['params'] as { properties: object }).properties), ['room']);
  const typingReply = doc.components.messages['IShopAppService_reply_typing']!;
  assert.deepEqual(Object.keys((typingReply.payload.properties['result'] as { properties: object }).properties), ['seen']);

  const openapi = (await (await fetch(`${s.url}/swagger.json`)).json()) as {
    paths: Record<string, Record<string, { responses: object; description: string }>>;
  };
  const handshake = openapi.paths['/api/shop']?.['get'];
  assert.ok(handshake !== undefined, 'GET /api/shop is listed');
  assert.ok('101' in handshake.responses);
  assert.match(handshake.description, /asyncapi\.json/);
  assert.match(handshake.description, /typing/);
});

test('a message named like a method or a reserved member, or a push that is not a schema, is refused by defineContract', () => {
  const refused = (spec: Parameters<typeof defineContract>[0], fragment: RegExp): void =>
    assert.throws(
      () => defineContract(spec),
      (e: unknown) => (e as { code?: string }).code === 'InvalidContract' && fragment.test((e as Error).message),
    );
  refused({ name: 'IAAppService', methods: { typing: { params: [] } }, messages: { typing: {} } }, /message typing: a method has the same name/);
  refused({ name: 'IAAppService', methods: {}, messages: { onMessage: {} } }, /message onMessage: the name is taken/);
  refused({ name: 'IAAppService', methods: {}, messages: { toString: {} } }, /message toString: the name is taken/);
  refused({ name: 'IAAppService', methods: {}, pushes: { shipped: 'object' as never } }, /push shipped: the payload must be a schema/);
});

test('a host whose service lacks the handler of a message does not start, and says which', () => {
  const IChat = defineContract({ name: 'IChatAppService', methods: {}, messages: { typing: {} } });
  class Chat extends WsAppServiceBase {}
  assert.throws(
    () =>
      createHost({ cluster: memoryCluster(), logger: quietLogger(), modules: [WebSocketModule], services: [implement(IChat, new Chat() as never)] }),
    (e: unknown) =>
      (e as { code?: string }).code === 'InvalidContract' && /message typing has no handler: give Chat a method typing/.test((e as Error).message),
  );
});
