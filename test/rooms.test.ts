/**
 * Rooms: sessions join and leave named rooms from the service (on the bound
 * host, or from any process through createClient); a room push reaches every
 * member on every gateway with one frame per gateway that holds members and
 * none to the others; a session leaves its rooms when it closes, and the
 * rooms of a gateway that dies go with it; limits refuse with BadRequest;
 * weft/client resumes a room from its position when the service joins it
 * again. In memory mode and, across processes, in Redis mode.
 */
import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import { WebSocket } from 'ws';
import { connectSession, type RoomInfo } from '../src/client/index.js';
import {
  BusinessException,
  WebSocketModule,
  WsAppServiceBase,
  createClient,
  createGateway,
  createHost,
  defineContract,
  implement,
  memoryCluster,
  redisCluster,
  type Cluster,
  type Gateway,
  type SessionManager,
  type WsSession,
} from '../src/index.js';
import { decodePush, encodePush } from '../src/protocol/weft-v1.js';
import { directoryUnit, serviceKeys } from '../src/redis/keys.js';
import { shardOf } from '../src/util/hash-ring.js';
import { dropPrefix, rawClient } from './fixtures/node-control.js';
import { ENGINE_KINDS, engineLabel, engineTest, engines } from './fixtures/redis-engines.js';
import { PROCESS_SECRET, connectWs, eventually, quietLogger, rejection, spawnNode, uniquePrefix, type OpenedClient } from './helpers/index.js';

const IRoomsAppService = defineContract({ name: 'IRoomsAppService', methods: {} }); // ws://.../api/rooms

/** Joins each session to the rooms named in its `join` query parameter, in onOpen. */
class RoomsAppService extends WsAppServiceBase {
  readonly opened: WsSession[] = [];
  /** When set, onOpen waits for it before joining (a test holds a reconnect there). */
  gate: Promise<void> | undefined;
  /** When set, onOpen waits for it after joining (the session is still opening). */
  holdAfterJoin: Promise<void> | undefined;
  refuseAfterJoin = false;

  override async onOpen(session: WsSession): Promise<void> {
    this.opened.push(session);
    if (this.gate !== undefined) await this.gate;
    for (const room of (session.query['join'] ?? '').split(',').filter((r) => r !== '')) await session.join(room);
    if (this.holdAfterJoin !== undefined) await this.holdAfterJoin;
    if (this.refuseAfterJoin) throw new BusinessException('refused after joining');
  }

  get rooms(): SessionManager {
    return this.sessionManager;
  }

  idOf(businessId: string): string {
    const found = this.opened.filter((s) => s.businessId === businessId);
    assert.ok(found.length > 0, `a session of ${businessId} opened`);
    return found[found.length - 1]!.id;
  }
}

interface Stack {
  cluster: Cluster;
  service: RoomsAppService;
  gateways: Gateway[];
  connect(gateway: number, businessId: string, join?: string): Promise<OpenedClient>;
  wsUrl(gateway: number): string;
}

async function memoryStack(t: TestContext, gatewayCount: number, websocket: Record<string, number> = {}): Promise<Stack> {
  const cluster = memoryCluster();
  const service = new RoomsAppService();
  const host = await createHost({
    cluster,
    logger: quietLogger(),
    modules: [WebSocketModule],
    services: [implement(IRoomsAppService, service)],
  }).start();
  const gateways: Gateway[] = [];
  for (let i = 0; i < gatewayCount; i++) {
    gateways.push(await createGateway({ cluster, logger: quietLogger(), http: { host: '127.0.0.1', port: 0 }, websocket }).start());
  }
  const clients: OpenedClient[] = [];
  t.after(async () => {
    for (const c of clients) c.ws.terminate();
    await Promise.all(gateways.map((g) => g.stop()));
    await host.stop();
  });
  const wsUrl = (i: number): string => `${gateways[i]!.url.replace(/^http/, 'ws')}/api/rooms`;
  return {
    cluster,
    service,
    gateways,
    wsUrl,
    async connect(gateway, businessId, join = '') {
      const client = await connectWs(`${wsUrl(gateway)}?businessId=${businessId}&join=${encodeURIComponent(join)}`);
      clients.push(client);
      return client;
    },
  };
}

/** PushRoom frames a gateway has received. */
function pushRoomFrames(gateway: Gateway): number {
  return gateway.stats().framesReceived['PushRoom'] ?? 0;
}

test('a room push reaches the members on two gateways, one frame per gateway that holds members, none to the others', async (t) => {
  const s = await memoryStack(t, 3);
  const a = await s.connect(0, 'a', 'lobby'); // joined on its host, in onOpen
  const b = await s.connect(1, 'b'); // joined later, from a process that hosts nothing
  const c = await s.connect(2, 'c'); // a session of the service on a third gateway, in no room
  const client = await createClient({ cluster: s.cluster, logger: quietLogger() }).start();
  t.after(() => client.stop());
  const fromClient = await client.sessions(IRoomsAppService);
  assert.equal(await fromClient.join(s.service.idOf('b'), 'lobby'), true);
  assert.equal(await fromClient.join(s.service.idOf('b'), 'lobby'), true, 'joining a room it is in is a no-op');

  const before = s.gateways.map(pushRoomFrames);
  assert.equal(await s.service.rooms.pushToRoom('lobby', 'from the host'), 2);
  assert.equal(await fromClient.pushToRoom('lobby', 'from a client'), 2);
  const after = s.gateways.map(pushRoomFrames);
  assert.deepEqual(
    after.map((n, i) => n - before[i]!),
    [2, 2, 0],
    'one PushRoom per push to each gateway holding members, none to the gateway without',
  );
  assert.deepEqual(await a.waitFor(2), ['from the host', 'from a client']);
  assert.deepEqual(await b.waitFor(2), ['from the host', 'from a client']);
  assert.equal(await s.service.rooms.roomSize('lobby'), 2);
  assert.equal(await fromClient.roomSize('lobby'), 2);
  // c got nothing: a push to its own businessId is its first message.
  assert.equal(await s.service.rooms.pushToBusiness('c', 'only c'), 1);
  assert.deepEqual(await c.waitFor(1), ['only c']);

  // A room nobody is in: no frame anywhere, and 0.
  assert.equal(await s.service.rooms.pushToRoom('empty', 'x'), 0);
  assert.deepEqual(s.gateways.map(pushRoomFrames), after);
  assert.equal(await s.service.rooms.roomSize('empty'), 0);
  // A session no gateway holds is in no room.
  assert.equal(await s.service.rooms.join(`${s.gateways[0]!.nodeId}.999999`, 'lobby'), false);
});

test('a session leaves a room, and leaves all its rooms when it closes; the last member takes the room off its gateway', async (t) => {
  const s = await memoryStack(t, 2);
  const a = await s.connect(0, 'a', 'lobby,news');
  const b = await s.connect(1, 'b', 'lobby');
  const rooms = s.service.rooms;
  assert.equal(await rooms.roomSize('lobby'), 2);

  assert.equal(await rooms.leave(s.service.idOf('a'), 'lobby'), true);
  assert.equal(await rooms.leave(s.service.idOf('a'), 'lobby'), false, 'it is no longer in it');
  assert.equal(await rooms.pushToRoom('lobby', 'l1'), 1);
  assert.deepEqual(await b.waitFor(1), ['l1']);
  assert.equal(await rooms.roomSize('lobby'), 1);
  assert.equal(await rooms.pushToRoom('news', 'n1'), 1);
  assert.deepEqual(await a.waitFor(1), ['n1']);

  a.ws.close();
  await a.closed;
  await eventually(async () => (await rooms.roomSize('news')) === 0, 5000, 'the closed session left news');
  const framesBefore = pushRoomFrames(s.gateways[0]!);
  assert.equal(await rooms.pushToRoom('news', 'n2'), 0);
  assert.equal(pushRoomFrames(s.gateways[0]!), framesBefore, 'its gateway holds no member of news: no frame');

  b.ws.close();
  await b.closed;
  await eventually(async () => (await rooms.roomSize('lobby')) === 0, 5000, 'the closed session left lobby');
  const frames1 = pushRoomFrames(s.gateways[1]!);
  assert.equal(await rooms.pushToRoom('lobby', 'l2'), 0);
  assert.equal(pushRoomFrames(s.gateways[1]!), frames1);
});

test('a room push to a member whose session is still opening waits for it and counts once written; one that never opens leaves its rooms', async (t) => {
  const s = await memoryStack(t, 1);
  const rooms = s.service.rooms;
  let release: () => void = () => {};
  s.service.holdAfterJoin = new Promise((r) => (release = r));
  const opening = s.connect(0, 'a', 'lobby');
  await eventually(async () => (await rooms.roomSize('lobby')) === 1, 5000, 'the opening session in lobby');
  const metrics = async (): Promise<number> => {
    const text = await (await fetch(`${s.gateways[0]!.url}/metrics`)).text();
    return Number(/^weft_pushes_total\{kind="room"\} (\d+)/m.exec(text)?.[1] ?? 0);
  };
  const pushesBefore = await metrics();
  let settled = false;
  const pushed = rooms.pushToRoom('lobby', 'early').finally(() => (settled = true));
  // The gateway has it (its frame arrived) but holds the answer until the session opens.
  await eventually(() => (s.gateways[0]!.stats().framesReceived['PushRoom'] ?? 0) === 1, 5000, 'the push at the gateway');
  assert.equal(settled, false);
  s.service.holdAfterJoin = undefined;
  release();
  assert.equal(await pushed, 1, 'counted once the session opened and the push was written');
  const a = await opening;
  assert.deepEqual(await a.waitFor(1), ['early']);
  assert.equal((await metrics()) - pushesBefore, 1, 'weft_pushes_total{kind="room"}');

  // onOpen joins, then refuses the session: it leaves the room.
  s.service.refuseAfterJoin = true;
  await assert.rejects(s.connect(0, 'b', 'news'));
  await eventually(async () => (await rooms.roomSize('news')) === 0, 5000, 'the refused session left news');
  const frames = pushRoomFrames(s.gateways[0]!);
  assert.equal(await rooms.pushToRoom('news', 'x'), 0);
  assert.equal(pushRoomFrames(s.gateways[0]!), frames, 'news left the directory with it: no frame');
});

test('a join past websocket.maxRoomsPerSession or websocket.maxRoomNameLength, or with a bad name, is refused with BadRequest', async (t) => {
  const s = await memoryStack(t, 1, { maxRoomsPerSession: 2, maxRoomNameLength: 8 });
  const a = await s.connect(0, 'a');
  const id = s.service.idOf('a');
  const rooms = s.service.rooms;
  assert.equal(await rooms.join(id, 'r1'), true);
  assert.equal(await rooms.join(id, 'r2'), true);
  const tooMany = await rejection(rooms.join(id, 'r3'));
  assert.equal(tooMany.code, 'BadRequest');
  assert.match(tooMany.message, /in 2 rooms, the most it may \(websocket\.maxRoomsPerSession\)/);
  assert.equal(await rooms.join(id, 'r1'), true, 'a room it is in does not count again');

  const tooLong = await rejection(rooms.join(id, 'x'.repeat(9)));
  assert.equal(tooLong.code, 'BadRequest');
  assert.match(tooLong.message, /over the limit of 8 \(websocket\.maxRoomNameLength\)/);
  for (const bad of ['', 'a\nb']) assert.equal((await rejection(rooms.join(id, bad))).code, 'BadRequest');
  assert.equal((await rejection(rooms.pushToRoom('x'.repeat(2000), 'm'))).code, 'BadRequest');
  assert.equal((await rejection(rooms.pushToRoom('r1', 'm', { ack: 'client' }))).code, 'BadRequest');
  assert.equal((await rejection(rooms.roomSize('a\u0000b'))).code, 'BadRequest');

  // The process keeps serving.
  assert.equal(await rooms.pushToRoom('r1', 'still here'), 1);
  assert.deepEqual(await a.waitFor(1), ['still here']);
  assert.throws(
    () => createGateway({ cluster: s.cluster, logger: quietLogger(), websocket: { maxRoomNameLength: 5000 } }),
    /websocket\.maxRoomNameLength/,
  );
});

test('weft/client gets room pushes with the room and their position, and after a reconnect the service rejoining the room replays what it missed', async (t) => {
  const s = await memoryStack(t, 2);
  const rooms = s.service.rooms;
  const got: { data: string; room: string | undefined; offset: number | undefined }[] = [];
  const roomEvents: RoomInfo[] = [];
  const session = connectSession(`${s.wsUrl(0)}?join=lobby`, {
    businessId: 'ann',
    WebSocket,
    initialDelayMs: 10,
    onMessage: (data, info) => got.push({ data: String(data), room: info.room, offset: info.position?.offset }),
    onRoom: (info) => roomEvents.push(info),
  });
  t.after(() => session.close());
  await eventually(() => roomEvents.length === 1, 5000, 'joined lobby');
  assert.equal(roomEvents[0]!.room, 'lobby');
  assert.equal(roomEvents[0]!.joined, true);
  assert.equal(roomEvents[0]!.position?.offset, 0, 'a room nobody pushed to yet stands at 0');

  assert.equal(await rooms.pushToRoom('lobby', 'm1'), 1);
  assert.equal(await rooms.pushToRoom('lobby', 'm2'), 1);
  // A businessId push has its own stream: its position is not the room's.
  assert.equal(await rooms.pushToBusiness('ann', 'b1'), 1);
  await eventually(() => got.length === 3, 5000, 'three pushes');
  assert.deepEqual(got, [
    { data: 'm1', room: 'lobby', offset: 1 },
    { data: 'm2', room: 'lobby', offset: 2 },
    { data: 'b1', room: undefined, offset: 1 },
  ]);
  assert.equal(session.rooms['lobby']?.offset, 2);

  // The next onOpen waits before it joins: the pushes meanwhile reach no member.
  let release: () => void = () => {};
  s.service.gate = new Promise((r) => (release = r));
  session.reconnect(0);
  await eventually(async () => (await rooms.roomSize('lobby')) === 0, 5000, 'the old session left lobby');
  assert.equal(await rooms.pushToRoom('lobby', 'm3'), 0);
  assert.equal(await rooms.pushToRoom('lobby', 'm4'), 0);
  s.service.gate = undefined;
  release();
  await eventually(() => roomEvents.length === 2, 5000, 'joined lobby again');
  assert.deepEqual(
    { ...roomEvents[1]!, position: roomEvents[1]!.position?.offset },
    { room: 'lobby', joined: true, position: 2, recovered: true, reason: undefined, replayed: 2 },
  );
  assert.equal(await rooms.pushToRoom('lobby', 'm5'), 1);
  await eventually(() => got.length === 6, 5000, 'the replay and the live push');
  assert.deepEqual(
    got.slice(3).map((g) => [g.data, g.offset]),
    [
      ['m3', 3],
      ['m4', 4],
      ['m5', 5],
    ],
    'what it missed, in order and once, then live',
  );

  // A stored position resumes a room in a new session too (roomSince), on another gateway.
  const stored = session.rooms;
  session.close();
  await eventually(async () => (await rooms.roomSize('lobby')) === 0, 5000, 'the session left lobby');
  assert.equal(await rooms.pushToRoom('lobby', 'm6'), 0);
  const later: string[] = [];
  const again = connectSession(`${s.wsUrl(1)}?join=lobby`, {
    businessId: 'ann',
    WebSocket,
    roomSince: stored,
    onMessage: (data, info) => later.push(`${String(data)}@${info.room}:${info.position?.offset}`),
  });
  t.after(() => again.close());
  await eventually(() => later.length === 1, 5000, 'the replay of m6');
  assert.deepEqual(later, ['m6@lobby:6']);
  assert.equal(await rooms.leave(s.service.idOf('ann'), 'lobby'), true);
  await eventually(() => again.rooms['lobby'] === undefined, 5000, 'the client forgets a room it left');

  // A room the service does not put a reconnected session in again: its position goes when that connection closes.
  const third = connectSession(`${s.wsUrl(0)}?join=news`, {
    businessId: 'ann',
    WebSocket,
    initialDelayMs: 10,
    roomSince: { news: { epoch: stored['lobby']!.epoch, offset: 0 }, ghost: { epoch: 'e', offset: 3 } },
  });
  t.after(() => third.close());
  await eventually(async () => (await rooms.roomSize('news')) === 1, 5000, 'in news');
  assert.deepEqual(Object.keys(third.rooms).sort(), ['ghost', 'news']);
  third.reconnect(0);
  await eventually(() => third.rooms['ghost'] === undefined && third.rooms['news'] !== undefined, 5000, 'ghost dropped, news kept');
});

const redisEngines = engines();

for (const kind of ENGINE_KINDS) {
  test(
    `in Redis mode a room spans processes, and the rooms of a killed gateway vanish with it ${engineLabel(kind)}`,
    await engineTest(kind),
    async (t) => {
      const { url } = await redisEngines.get(kind);
      const prefix = uniquePrefix();
      const cluster = redisCluster({ url, secret: PROCESS_SECRET, prefix, ttlMs: 2000, heartbeatMs: 500 });
      const service = new RoomsAppService();
      const host = await createHost({
        cluster,
        logger: quietLogger(),
        modules: [WebSocketModule],
        services: [implement(IRoomsAppService, service)],
      }).start();
      const gw1 = await createGateway({ cluster, logger: quietLogger(), http: { host: '127.0.0.1', port: 0 } }).start();
      // The second gateway is a process of its own, killed below with SIGKILL.
      const gw2 = await spawnNode({
        WEFT_ROLE: 'gateway',
        WEFT_PREFIX: prefix,
        WEFT_REDIS_URL: url,
        WEFT_TTL_MS: '2000',
        WEFT_HEARTBEAT_MS: '500',
      });
      const client = await createClient({ cluster, logger: quietLogger() }).start();
      const redis = rawClient(url);
      const clients: OpenedClient[] = [];
      t.after(async () => {
        for (const c of clients) c.ws.terminate();
        await client.stop();
        await gw2.kill();
        await gw1.stop();
        await host.stop();
        redis.disconnect();
        await dropPrefix(prefix, url);
      });
      const ws1 = `${gw1.url.replace(/^http/, 'ws')}/api/rooms`;
      const ws2 = `ws://127.0.0.1:${gw2.info.httpPort}/api/rooms`;
      const open = async (url: string, businessId: string, join: string): Promise<OpenedClient> => {
        const c = await eventually(() => connectWs(`${url}?businessId=${businessId}&join=${join}`), 10000, 'a session');
        clients.push(c);
        return c;
      };
      const a = await open(ws1, 'a', 'lobby');
      const b = await open(ws2, 'b', 'lobby,solo');
      const fromClient = await client.sessions(IRoomsAppService);

      assert.equal(await fromClient.pushToRoom('lobby', 'hello'), 2);
      assert.deepEqual(await a.waitFor(1), ['hello']);
      assert.deepEqual(await b.waitFor(1), ['hello']);
      assert.equal(await fromClient.roomSize('lobby'), 2);
      assert.equal(await service.rooms.roomSize('solo'), 1);

      const roomsKey = (room: string): string => serviceKeys(prefix, directoryUnit('IRoomsAppService', shardOf(room))).rooms;
      const listed = async (room: string): Promise<string[]> =>
        (await redis.zrange(roomsKey(room), 0, -1)).filter((m) => m.startsWith(`${room}\n`)).map((m) => m.slice(room.length + 1));
      assert.deepEqual((await listed('lobby')).sort(), [gw1.nodeId, gw2.info.nodeId].sort());
      assert.deepEqual(await listed('solo'), [gw2.info.nodeId]);

      // Redis forgets the directory: the gateways write their rooms again.
      await dropPrefix(prefix, url);
      await eventually(async () => (await listed('lobby')).length === 2 && (await listed('solo')).length === 1, 10000, 'rooms written again');
      assert.equal(await fromClient.pushToRoom('lobby', 'after the flush'), 2);

      await gw2.kill();
      await eventually(
        async () => (await listed('lobby')).join() === gw1.nodeId && (await listed('solo')).length === 0,
        15000,
        'the killed gateway’s rooms removed',
      );
      assert.equal(await fromClient.pushToRoom('lobby', 'after the kill'), 1);
      assert.equal(await fromClient.roomSize('lobby'), 1);
      assert.equal(await service.rooms.roomSize('solo'), 0);
      assert.deepEqual(await a.waitFor(3), ['hello', 'after the flush', 'after the kill']);

      // The last member closes: the room leaves Redis.
      a.ws.close();
      await eventually(async () => (await listed('lobby')).length === 0, 10000, 'lobby removed with its last member');
      assert.equal(await fromClient.pushToRoom('lobby', 'nobody'), 0);
    },
  );
}

test('a room push envelope carries the room name beside its position, and other envelopes carry none', () => {
  const room = encodePush(Buffer.from('hi'), true, { epoch: 'e1', offset: 7 }, 0, 'salle ✓');
  assert.deepEqual(
    { ...decodePush(room), payload: undefined },
    { payload: undefined, text: true, position: { epoch: 'e1', offset: 7 }, receiptId: 0, room: 'salle ✓' },
  );
  assert.equal(Buffer.from(decodePush(room)!.payload).toString(), 'hi');
  assert.equal(decodePush(encodePush(Buffer.from('x'), false, { epoch: 'e1', offset: 1 }))!.room, undefined);
  assert.equal(decodePush(room.subarray(0, room.length - 4)), undefined, 'a cut room name is no envelope');
});
