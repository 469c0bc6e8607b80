/**
 * WebSocket services whose route template has `{param}` segments: the path
 * reaches them, its values reach the session, its hooks and the gateway's
 * authenticate hook, and a `{businessId}` segment binds the businessId as an
 * HTTP route's does.
 */
import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
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
  type AuthRequest,
  type GatewayOptions,
  type Implementation,
  type WsSession,
} from '../src/index.js';
import { connectWs, eventually, httpJson, quietLogger, refusedWs } from './helpers/index.js';
import { SECRET, tokenFor } from './helpers/tokens.js';

const IRoomAppService = defineContract({
  name: 'IRoomAppService',
  route: 'api/{tenant}/{appservice}',
  methods: {
    count: { params: [param('tenant', Type.String()), param('businessId', Type.String())], returns: Type.Integer() },
  },
});

const IInboxAppService = defineContract({
  name: 'IInboxAppService',
  route: 'api/{businessId}/{appservice}',
  methods: {
    count: { params: [param('businessId', Type.String())], returns: Type.Integer() },
  },
});

class RoomAppService extends WsAppServiceBase implements Implementation<typeof IRoomAppService> {
  readonly opened: { params: Record<string, string>; businessId: string }[] = [];

  count(_tenant: string, businessId: string): Promise<number> {
    return this.sessionManager.count(businessId);
  }

  override onOpen(session: WsSession): void {
    this.opened.push({ params: { ...session.params }, businessId: session.businessId });
  }

  override async onMessage(session: WsSession, message: string | Buffer): Promise<void> {
    await session.send(`${session.params['tenant']}:${String(message)}`);
  }
}

class InboxAppService extends WsAppServiceBase implements Implementation<typeof IInboxAppService> {
  readonly opened: string[] = [];

  count(businessId: string): Promise<number> {
    return this.sessionManager.count(businessId);
  }

  override onOpen(session: WsSession): void {
    this.opened.push(`${session.businessId} ${session.params['businessId']}`);
  }
}

async function stack(t: TestContext, gateway: Partial<GatewayOptions> = {}) {
  const cluster = memoryCluster();
  const room = new RoomAppService();
  const inbox = new InboxAppService();
  const host = createHost({
    cluster,
    logger: quietLogger(),
    modules: [WebSocketModule],
    services: [implement(IRoomAppService, room), implement(IInboxAppService, inbox)],
  });
  await host.start();
  t.after(() => host.stop());
  const g = await createGateway({ cluster, logger: quietLogger(), http: { host: '127.0.0.1', port: 0 }, ...gateway }).start();
  t.after(() => g.stop());
  return { room, inbox, url: g.url, ws: g.url.replace(/^http/, 'ws') };
}

test('api/{tenant}/room takes WebSocket sessions; params.tenant reaches authenticate, onOpen and onMessage', async (t) => {
  const seen: AuthRequest[] = [];
  const s = await stack(t, { authenticate: (request) => void seen.push(request) });
  const client = await connectWs(`${s.ws}/api/acme/room?businessId=7`);
  t.after(() => client.ws.terminate());
  assert.deepEqual(s.room.opened, [{ params: { tenant: 'acme' }, businessId: '7' }]);
  const handshake = seen.find((r) => r.kind === 'websocket');
  assert.deepEqual(handshake?.params, { tenant: 'acme' });
  client.ws.send('hello');
  assert.deepEqual(await client.waitFor(1), ['acme:hello']);
  // Its HTTP routes work as before, and see the same session.
  const counted = await httpJson(`${s.url}/api/acme/room/count?businessId=7`);
  assert.equal(counted.body.result, 1);
  assert.deepEqual(seen.find((r) => r.kind === 'http')?.params, { tenant: 'acme' });
});

test('literal segments match in any case, a parameter keeps its case and is URL-decoded', async (t) => {
  const s = await stack(t);
  const upper = await connectWs(`${s.ws}/API/AcMe/ROOM?businessId=1`);
  t.after(() => upper.ws.terminate());
  const spaced = await connectWs(`${s.ws}/api/a%20b/room?businessId=2`);
  t.after(() => spaced.ws.terminate());
  assert.deepEqual(
    s.room.opened.map((o) => o.params),
    [{ tenant: 'AcMe' }, { tenant: 'a b' }],
  );
  const bad = await refusedWs(`${s.ws}/api/%E0%A4%A/room?businessId=1`);
  assert.equal(bad.status, 400);
  assert.equal(bad.body.code, 'BadRequest');
});

test('a path that no template matches still answers 404', async (t) => {
  const s = await stack(t);
  for (const path of ['/api/acme/nowhere', '/api/acme/room/extra', '/api/room', '/api/acme']) {
    const refused = await refusedWs(`${s.ws}${path}?businessId=1`);
    assert.equal(refused.status, 404, path);
    assert.equal(refused.body.code, 'NotFound', path);
  }
  // A plain GET of the template's path is told to upgrade (426), as for a service without parameters.
  const plain = await fetch(`${s.url}/api/acme/room`);
  assert.equal(plain.status, 426);
});

test('a {businessId} segment names the session’s businessId, and with tokens must be the token’s', async (t) => {
  const s = await stack(t);
  const client = await connectWs(`${s.ws}/api/u7/inbox`);
  t.after(() => client.ws.terminate());
  assert.deepEqual(s.inbox.opened, ['u7 u7']);
  await eventually(async () => (await httpJson(`${s.url}/api/u7/inbox/count`)).body.result === 1, 5000, 'the session counted under u7');

  const secured = await stack(t, { auth: { jwt: { secret: SECRET } } });
  const token = await tokenFor('u8');
  const own = await connectWs(`${secured.ws}/api/u8/inbox?token=${token}`);
  t.after(() => own.ws.terminate());
  assert.deepEqual(secured.inbox.opened, ['u8 u8']);
  const other = await refusedWs(`${secured.ws}/api/u9/inbox?token=${token}`);
  assert.equal(other.status, 403);
  assert.equal(other.body.code, 'Unauthorized');
});
