/**
 * Presence: the metadata a service's onOpen attaches to a session, listed
 * cluster-wide by `sessions(businessId)`; join, leave, online and offline
 * events on another node; `isOnline`, `count` and `disconnect`. Real
 * gateways and a host over sockets, in memory mode and on Redis (one
 * server, and a Redis Cluster for its sharded pub/sub), with a gateway in
 * a process of its own that is killed.
 */
import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import {
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
  type PresenceEvent,
  type SessionManager,
  type WsSession,
} from '../src/index.js';
import { dropPrefix } from './fixtures/node-control.js';
import { engineLabel, engineTest, engines, type EngineKind } from './fixtures/redis-engines.js';
import {
  PROCESS_SECRET,
  connectWs,
  eventually,
  quietLogger,
  refusedWs,
  rejection,
  spawnNode,
  uniquePrefix,
  type OpenedClient,
} from './helpers/index.js';

const IPresenceAppService = defineContract({ name: 'IPresenceAppService', methods: {} });

/** Attaches `{ user, device }` from the query; `big=<n>` attaches n bytes instead, `tolerate` catches the refusal. */
class PresenceAppService extends WsAppServiceBase {
  /** The error each session's late setMetadata (after onOpen) threw, by session id. */
  readonly late = new Map<string, string>();

  override onOpen(session: WsSession): void {
    const q = session.query;
    if (q['big'] !== undefined) {
      const attach = (): void => session.setMetadata({ blob: 'x'.repeat(Number(q['big'])) });
      if (q['tolerate'] === undefined) return attach();
      try {
        attach();
      } catch (e) {
        session.state = (e as Error).message;
      }
      return;
    }
    session.setMetadata({ user: q['user'] ?? 'anon', device: q['device'] ?? 'web' });
  }

  override onMessage(session: WsSession): void {
    try {
      session.setMetadata({ late: true });
    } catch (e) {
      this.late.set(session.id, (e as Error).message);
    }
  }
}

const METADATA_LIMIT = 256;
/** Short TTLs keep a killed gateway's stay in the views short. */
const FAST = { ttlMs: 2000, heartbeatMs: 500 };

interface Stack {
  cluster: Cluster;
  gateways: Gateway[];
  service: PresenceAppService;
  /** A SessionManager in a createClient process: another node than the gateways and the host. */
  sessions: SessionManager;
  connect(gateway: number | string, query: Record<string, string>): Promise<OpenedClient>;
}

async function stack(t: TestContext, cluster: Cluster): Promise<Stack> {
  const service = new PresenceAppService();
  const host = createHost({
    cluster,
    logger: quietLogger(),
    modules: [WebSocketModule],
    services: [implement(IPresenceAppService, service)],
    websocket: { maxSessionMetadataBytes: METADATA_LIMIT },
  });
  await host.start();
  t.after(() => host.stop());
  const gateways = await Promise.all(
    [0, 1].map(() => createGateway({ cluster, logger: quietLogger(), http: { host: '127.0.0.1', port: 0 } }).start()),
  );
  t.after(() => Promise.all(gateways.map((g) => g.stop())));
  const client = await createClient({ cluster, logger: quietLogger() }).start();
  t.after(() => client.stop());
  const sessions = await client.sessions(IPresenceAppService);
  const opened: OpenedClient[] = [];
  t.after(() => opened.forEach((c) => c.ws.terminate()));
  return {
    cluster,
    gateways,
    service,
    sessions,
    async connect(gateway, query) {
      const base = typeof gateway === 'string' ? gateway : gateways[gateway]!.url;
      const c = await connectWs(`${base.replace(/^http/, 'ws')}/api/presence?${new URLSearchParams(query).toString()}`);
      opened.push(c);
      return c;
    },
  };
}

function redisOf(t: TestContext, url: string, extra: Partial<typeof FAST> = {}): Cluster {
  const prefix = uniquePrefix();
  t.after(() => dropPrefix(prefix, url));
  return redisCluster({ url, secret: PROCESS_SECRET, prefix, ...extra });
}

/** The events of one businessId, as `type:gatewayIndex` words, for comparing sequences. */
function kinds(events: PresenceEvent[], businessId: string): string[] {
  return events.filter((e) => e.businessId === businessId).map((e) => e.type);
}

async function metadataAndEvents(t: TestContext, s: Stack): Promise<void> {
  const events: PresenceEvent[] = [];
  const stop = await s.sessions.onPresence((e) => events.push(e));
  t.after(stop);

  const ios = await s.connect(0, { businessId: 'ann', user: 'ann', device: 'ios' });
  const web = await s.connect(1, { businessId: 'ann', user: 'ann', device: 'web' });
  const listed = (await eventually(
    async () => {
      const found = await s.sessions.sessions('ann');
      return found.length === 2 ? found : undefined;
    },
    10000,
    'both sessions listed with their records',
  ))!;
  const byDevice = new Map(listed.map((d) => [(d.metadata as { device: string }).device, d]));
  assert.deepEqual(byDevice.get('ios')?.metadata, { user: 'ann', device: 'ios' });
  assert.deepEqual(byDevice.get('web')?.metadata, { user: 'ann', device: 'web' });
  assert.equal(byDevice.get('ios')?.gatewayNodeId, s.gateways[0]!.nodeId);
  assert.equal(byDevice.get('web')?.gatewayNodeId, s.gateways[1]!.nodeId);
  for (const d of listed) {
    assert.equal(d.businessId, 'ann');
    assert.ok(d.openedAt > 0 && d.openedAt <= Date.now(), 'openedAt is when the gateway opened it');
  }
  assert.equal(await s.sessions.isOnline('ann'), true);
  assert.equal(await s.sessions.count('ann'), 2);
  assert.equal(await s.sessions.isOnline('nobody'), false);
  assert.deepEqual(await s.sessions.sessions('nobody'), []);

  await eventually(() => kinds(events, 'ann').filter((k) => k === 'join').length === 2, 10000, 'two join events');
  const joins = events.filter((e) => e.type === 'join');
  assert.deepEqual(new Set(joins.map((e) => (e.type === 'join' ? e.gatewayNodeId : ''))), new Set(s.gateways.map((g) => g.nodeId)));
  assert.deepEqual(
    new Set(joins.map((e) => JSON.stringify(e.type === 'join' ? e.metadata : null))),
    new Set([JSON.stringify({ user: 'ann', device: 'ios' }), JSON.stringify({ user: 'ann', device: 'web' })]),
  );
  for (const e of joins) assert.equal(e.service, 'IPresenceAppService');
  assert.equal(kinds(events, 'ann').filter((k) => k === 'online').length, 1, 'one online: the businessId’s first session');

  ios.ws.close(1000, 'bye');
  await eventually(() => kinds(events, 'ann').includes('leave'), 10000, 'a leave event');
  const leave = events.find((e) => e.type === 'leave');
  assert.ok(leave?.type === 'leave');
  assert.equal(leave.gatewayNodeId, s.gateways[0]!.nodeId);
  assert.deepEqual(leave.metadata, { user: 'ann', device: 'ios' });
  assert.equal(kinds(events, 'ann').includes('offline'), false, 'not offline while one session is left');
  assert.equal(await s.sessions.isOnline('ann'), true);

  web.ws.close(1000, 'bye');
  await eventually(() => kinds(events, 'ann').includes('offline'), 10000, 'an offline event after the last leave');
  assert.deepEqual(kinds(events, 'ann').slice(-2), ['leave', 'offline']);
  await eventually(async () => !(await s.sessions.isOnline('ann')), 10000, 'isOnline false after the last leave');
  assert.deepEqual(await s.sessions.sessions('ann'), []);
  assert.equal(await s.sessions.count('ann'), 0);
}

async function disconnectEverywhere(s: Stack): Promise<void> {
  const one = await s.connect(0, { businessId: 'bob', user: 'bob' });
  const two = await s.connect(1, { businessId: 'bob', user: 'bob' });
  const other = await s.connect(1, { businessId: 'carol', user: 'carol' });
  await eventually(async () => (await s.sessions.count('bob')) === 2 && (await s.sessions.count('carol')) === 1, 10000, 'the sessions listed');

  assert.equal((await rejection(s.sessions.disconnect('bob', 1005, 'no'))).code, 'BadRequest', 'a close code that may not be sent is refused');
  assert.equal(await s.sessions.disconnect('bob', 4003, 'access revoked'), 2);
  assert.deepEqual(await one.closed, { code: 4003, reason: 'access revoked' });
  assert.deepEqual(await two.closed, { code: 4003, reason: 'access revoked' });
  await eventually(async () => !(await s.sessions.isOnline('bob')), 10000, 'bob offline');
  assert.equal(other.ws.readyState, other.ws.OPEN, 'another businessId keeps its session');
  assert.equal(await s.sessions.isOnline('carol'), true);
}

test('in memory mode, onOpen metadata is listed by sessions() on another node, and join, leave, online and offline reach a subscriber', async (t) => {
  await metadataAndEvents(t, await stack(t, memoryCluster()));
});

test('in memory mode, disconnect closes every session of a businessId on both gateways with the code and reason the clients see', async (t) => {
  await disconnectEverywhere(await stack(t, memoryCluster()));
});

test('metadata over websocket.maxSessionMetadataBytes refuses the handshake with 400 naming the limit, unless onOpen catches it', async (t) => {
  const s = await stack(t, memoryCluster());
  const refused = await refusedWs(`${s.gateways[0]!.url.replace(/^http/, 'ws')}/api/presence?businessId=big&big=1000`);
  assert.equal(refused.status, 400);
  assert.equal(refused.body.code, 'BadRequest');
  assert.match(refused.body.errorMessage ?? '', /over websocket\.maxSessionMetadataBytes \(256\)/);
  assert.equal(await s.sessions.isOnline('big'), false);

  // A service that catches it opens the session without metadata.
  await s.connect(0, { businessId: 'big', big: '1000', tolerate: '1' });
  const [listed] = (await eventually(async () => {
    const found = await s.sessions.sessions('big');
    return found.length === 1 ? found : undefined;
  }))!;
  assert.equal(listed?.metadata, undefined);
  // Metadata just under the limit is taken.
  await s.connect(1, { businessId: 'small', big: String(METADATA_LIMIT - 20) });
  await eventually(async () => (await s.sessions.sessions('small'))[0]?.metadata !== undefined);
});

test('setMetadata after onOpen returned is refused with BadRequest; the session stays open', async (t) => {
  const s = await stack(t, memoryCluster());
  const c = await s.connect(0, { businessId: 'late', user: 'lee' });
  c.ws.send('hello');
  const refusal = await eventually(() => [...s.service.late.values()][0]);
  assert.match(refusal ?? '', /only inside onOpen/);
  assert.equal(c.ws.readyState, c.ws.OPEN);
  assert.deepEqual((await s.sessions.sessions('late'))[0]?.metadata, { user: 'lee', device: 'web' });
});

test('a draining gateway’s sessions leave with it: leave and offline events, and isOnline false', async (t) => {
  const s = await stack(t, memoryCluster());
  const events: PresenceEvent[] = [];
  t.after(await s.sessions.onPresence((e) => events.push(e)));
  const c = await s.connect(1, { businessId: 'fay', user: 'fay' });
  await eventually(() => kinds(events, 'fay').includes('online'));
  await s.gateways[1]!.stop();
  assert.equal((await c.closed).code, 1001);
  await eventually(() => kinds(events, 'fay').includes('offline'), 10000, 'offline after the gateway drained');
  assert.deepEqual(kinds(events, 'fay'), ['join', 'online', 'leave', 'offline']);
  assert.equal(await s.sessions.isOnline('fay'), false);
});

const redis = engines();
for (const kind of ['redis', 'cluster'] as EngineKind[]) {
  test(
    `on Redis, onOpen metadata is listed by sessions() on another node, and join, leave, online and offline reach a subscriber ${engineLabel(kind)}`,
    await engineTest(kind),
    async (t) => {
      const { url } = await redis.get(kind);
      await metadataAndEvents(t, await stack(t, redisOf(t, url)));
    },
  );
}

test(
  'on Redis, disconnect closes every session of a businessId on both gateways with the code and reason the clients see',
  await engineTest('redis'),
  async (t) => {
    const { url } = await redis.get('redis');
    await disconnectEverywhere(await stack(t, redisOf(t, url)));
  },
);

test(
  'on Redis, a killed gateway’s sessions vanish from sessions() and their leave events come from the node that removes them',
  await engineTest('redis'),
  async (t) => {
    const { url } = await redis.get('redis');
    const prefix = uniquePrefix();
    t.after(() => dropPrefix(prefix, url));
    const s = await stack(t, redisCluster({ url, secret: PROCESS_SECRET, prefix, ...FAST }));
    const doomed = await spawnNode({
      WEFT_ROLE: 'gateway',
      WEFT_NAME: 'doomed',
      WEFT_PREFIX: prefix,
      WEFT_REDIS_URL: url,
      WEFT_TTL_MS: '2000',
      WEFT_HEARTBEAT_MS: '500',
    });
    t.after(() => doomed.kill());
    const events: PresenceEvent[] = [];
    t.after(await s.sessions.onPresence((e) => events.push(e)));

    const lost = await eventually(
      () => s.connect(`http://127.0.0.1:${doomed.info.httpPort}`, { businessId: 'dora', user: 'dora', device: 'ios' }),
      10000,
      'a session through the gateway process',
    );
    await s.connect(0, { businessId: 'dora', user: 'dora', device: 'web' });
    await eventually(async () => (await s.sessions.sessions('dora')).length === 2, 10000, 'both sessions listed');
    await eventually(() => kinds(events, 'dora').filter((k) => k === 'join').length === 2, 10000, 'two joins');

    await doomed.kill();
    await lost.closed;
    const left = (await eventually(
      async () => {
        const found = await s.sessions.sessions('dora');
        return found.length === 1 ? found : undefined;
      },
      15000,
      'the killed gateway’s session gone from sessions()',
    ))!;
    assert.equal(left[0]?.gatewayNodeId, s.gateways[0]!.nodeId);
    await eventually(() => kinds(events, 'dora').includes('leave'), 15000, 'a leave event for the killed gateway’s session');
    const leaves = events.filter((e) => e.type === 'leave');
    assert.equal(leaves.length, 1, 'one leave, from the one node that removed the dead gateway’s sessions');
    assert.ok(leaves[0]?.type === 'leave');
    assert.equal(leaves[0].gatewayNodeId, doomed.info.nodeId);
    assert.deepEqual(leaves[0].metadata, { user: 'dora', device: 'ios' });
    assert.equal(kinds(events, 'dora').includes('offline'), false, 'dora still has a session');
    assert.equal(await s.sessions.isOnline('dora'), true);
  },
);

test(
  'on Redis, a session’s metadata is written again with it after Redis lost the directory, with no second join',
  await engineTest('redis'),
  async (t) => {
    const { url } = await redis.get('redis');
    const prefix = uniquePrefix();
    t.after(() => dropPrefix(prefix, url));
    const s = await stack(t, redisCluster({ url, secret: PROCESS_SECRET, prefix, ...FAST }));
    const events: PresenceEvent[] = [];
    t.after(await s.sessions.onPresence((e) => events.push(e)));
    await s.connect(0, { businessId: 'eve', user: 'eve', device: 'ios' });
    await eventually(async () => (await s.sessions.sessions('eve'))[0]?.metadata !== undefined, 10000, 'eve listed with her metadata');

    await dropPrefix(prefix, url); // Redis forgets the directory (and the registry) of this cluster
    const [back] = (await eventually(
      async () => {
        const found = await s.sessions.sessions('eve');
        return found.length === 1 ? found : undefined;
      },
      15000,
      'eve written again by her gateway',
    ))!;
    assert.deepEqual(back?.metadata, { user: 'eve', device: 'ios' });
    assert.ok((back?.openedAt ?? 0) > 0);

    // A later session of the same gateway joins; events of one gateway come in order, so a join of the rewrite would be before it.
    await s.connect(0, { businessId: 'eve', user: 'eve', device: 'web' });
    await eventually(
      () => events.some((e) => e.type === 'join' && (e.metadata as { device?: string } | undefined)?.device === 'web'),
      10000,
      'the web join',
    );
    assert.equal(events.filter((e) => e.type === 'join').length, 2, 'one join per session: writing eve again was not a join');
  },
);
