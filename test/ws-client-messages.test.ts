/**
 * Client messages: back-pressure instead of drops (a slow onMessage makes the
 * gateway stop reading the client), onMessage one at a time per session in
 * arrival order, the window's bound (1013) and the counter of what is dropped.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
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
  redisCluster,
  type Cluster,
  type GatewayOptions,
  type HostOptions,
  type Implementation,
  type WsSession,
} from '../src/index.js';
import { DEFAULT_MAX_FRAME_BYTES, FrameType, type Frame } from '../src/protocol/frames.js';
import { Link } from '../src/transport/link.js';
import {
  PROCESS_SECRET,
  REDIS_URL,
  connectWs,
  eventually,
  quietLogger,
  redisTest,
  spawnNode,
  uniquePrefix,
  type OpenedClient,
} from './helpers/index.js';

const ILineAppService = defineContract({
  name: 'ILineAppService',
  methods: { count: { params: [param('businessId', Type.String())], returns: Type.Integer() } },
});

const IQuietAppService = defineContract({
  name: 'IQuietAppService',
  methods: { count: { params: [param('businessId', Type.String())], returns: Type.Integer() } },
});

/** A gate the test opens: handlers wait on it while it is shut. */
function gate(): { wait: () => Promise<void>; open: () => void } {
  let open!: () => void;
  const opened = new Promise<void>((r) => (open = r));
  return { wait: () => opened, open };
}

/** Records what onMessage sees, and how many of its calls run at once, per session and in all. */
class LineAppService extends WsAppServiceBase implements Implementation<typeof ILineAppService> {
  /** Messages by session id, in the order onMessage ran them (up to the first space). */
  readonly seen = new Map<string, string[]>();
  readonly closes: { sessionId: string; code: number; afterMessages: number }[] = [];
  readonly #active = new Map<string, number>();
  maxActivePerSession = 0;
  maxActive = 0;
  #activeAll = 0;
  /** Set by a test: every onMessage waits for it. */
  hold: (() => Promise<void>) | undefined;
  started = 0;

  count(businessId: string): Promise<number> {
    return this.sessionManager.count(businessId);
  }

  sendTo(message: string, sessionId: string): Promise<boolean> {
    return this.sessionManager.sendTo(message, sessionId);
  }

  override async onMessage(session: WsSession, message: string | Buffer): Promise<void> {
    this.started += 1;
    const active = (this.#active.get(session.id) ?? 0) + 1;
    this.#active.set(session.id, active);
    this.maxActivePerSession = Math.max(this.maxActivePerSession, active);
    this.#activeAll += 1;
    this.maxActive = Math.max(this.maxActive, this.#activeAll);
    try {
      if (this.hold !== undefined) await this.hold();
      // A turn of the event loop: room for another session's handler (and this one's, were it not serialized).
      await new Promise<void>((r) => setImmediate(r));
      let list = this.seen.get(session.id);
      if (list === undefined) this.seen.set(session.id, (list = []));
      list.push(String(message).split(' ', 1)[0]!);
    } finally {
      this.#active.set(session.id, active - 1);
      this.#activeAll -= 1;
    }
  }

  override onClose(session: WsSession, code: number): void {
    this.closes.push({ sessionId: session.id, code, afterMessages: this.seen.get(session.id)?.length ?? 0 });
  }

  override onOpen(session: WsSession): void {
    this.opened.push(session.id);
  }

  readonly opened: string[] = [];
}

/** A push-only service: no hooks, so nothing on a host would run a client's message. */
class QuietAppService extends WsAppServiceBase implements Implementation<typeof IQuietAppService> {
  count(businessId: string): Promise<number> {
    return this.sessionManager.count(businessId);
  }
}

async function stack(
  t: TestContext,
  options: { gateway?: Partial<GatewayOptions>; host?: Partial<HostOptions>; cluster?: Cluster } = {},
): Promise<{ line: LineAppService; ws: string; url: string; host: ReturnType<typeof createHost>; cluster: Cluster }> {
  const cluster = options.cluster ?? memoryCluster();
  const line = new LineAppService();
  const host = createHost({
    cluster,
    logger: quietLogger(),
    modules: [WebSocketModule],
    services: [implement(ILineAppService, line), implement(IQuietAppService, new QuietAppService())],
    ...options.host,
  });
  await host.start();
  t.after(() => host.stop());
  const gateway = await createGateway({ cluster, logger: quietLogger(), http: { host: '127.0.0.1', port: 0 }, ...options.gateway }).start();
  t.after(() => gateway.stop());
  return { line, ws: gateway.url.replace(/^http/, 'ws'), url: gateway.url, host, cluster };
}

/** A labelled counter by its one label's value, from a gateway's /metrics (the process's counters). */
async function counter(url: string, name: string): Promise<Record<string, number>> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const out: Record<string, number> = {};
  for (const m of text.matchAll(new RegExp(`^${name}\\{\\w+="(\\w+)"\\} (\\d+)$`, 'gm'))) out[m[1]!] = Number(m[2]);
  return out;
}

/** `weft_client_messages_dropped_total` by reason. */
const drops = (url: string): Promise<Record<string, number>> => counter(url, 'weft_client_messages_dropped_total');
/** `weft_client_read_pauses_total` by cause. */
const pauses = (url: string): Promise<Record<string, number>> => counter(url, 'weft_client_read_pauses_total');

function delta(before: Record<string, number>, after: Record<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const reason of new Set([...Object.keys(before), ...Object.keys(after)])) {
    const d = (after[reason] ?? 0) - (before[reason] ?? 0);
    if (d !== 0) out[reason] = d;
  }
  return out;
}

const numbered = (n: number): string[] => Array.from({ length: n }, (_, i) => `m${i}`);

test('a client flooding a slow onMessage is paused, not dropped: every message runs, in order, once the handler catches up', async (t) => {
  const s = await stack(t, { gateway: { websocket: { maxQueuedMessages: 4 } } });
  const shut = gate();
  s.line.hold = shut.wait;
  const before = await drops(s.url);
  const pausedBefore = await pauses(s.url);
  const client = await connectWs(`${s.ws}/api/line?businessId=flood`);
  t.after(() => client.ws.terminate());
  // 48 MiB: more than the kernel's socket buffers hold, so a gateway that stops reading makes the client's own buffer grow.
  const count = 192;
  const padding = 'x'.repeat(256 * 1024);
  for (let i = 0; i < count; i++) client.ws.send(`m${i} ${padding}`);
  await eventually(async () => (delta(pausedBefore, await pauses(s.url))['window'] ?? 0) >= 1, 10_000, 'the gateway stopped reading the client');
  assert.equal(s.line.started, 1, 'onMessage waits on its first message; the others wait their turn');
  // While it is not read, the client cannot write what the socket buffers do not hold.
  assert.ok(client.ws.bufferedAmount > 0, `the client still holds bytes: ${client.ws.bufferedAmount}`);
  shut.open();
  const id = s.line.opened[0]!;
  await eventually(() => (s.line.seen.get(id)?.length ?? 0) === count, 30_000, 'every message handled');
  assert.deepEqual(s.line.seen.get(id), numbered(count));
  assert.equal(s.line.maxActivePerSession, 1);
  assert.deepEqual(delta(before, await drops(s.url)), {}, 'nothing dropped');
  // The session is as good as before: a push still reaches it.
  assert.equal(await s.line.sendTo('after the flood', id), true);
  await eventually(() => client.messages.includes('after the flood'), 5000, 'the push');
});

test('onMessage never overlaps for one session, but does for two, each in its own arrival order', async (t) => {
  const s = await stack(t);
  // Each session's first handler waits until both sessions have one running: it completes only if they overlap.
  let bothRunning!: () => void;
  const both = new Promise<void>((r) => (bothRunning = r));
  let firstCalls = 0;
  s.line.hold = () => {
    // Only the first message of each can be here: a session's next one waits for its first.
    firstCalls += 1;
    if (firstCalls === 2) {
      bothRunning();
      s.line.hold = undefined;
    }
    return both;
  };
  const a = await connectWs(`${s.ws}/api/line?businessId=a`);
  const b = await connectWs(`${s.ws}/api/line?businessId=b`);
  t.after(() => a.ws.terminate());
  t.after(() => b.ws.terminate());
  const n = 40;
  for (let i = 0; i < n; i++) {
    a.ws.send(`m${i}`);
    b.ws.send(`m${i}`);
  }
  const [idA, idB] = s.line.opened;
  await eventually(() => s.line.seen.get(idA!)?.length === n && s.line.seen.get(idB!)?.length === n, 10_000, 'both sessions handled');
  assert.deepEqual(s.line.seen.get(idA!), numbered(n));
  assert.deepEqual(s.line.seen.get(idB!), numbered(n));
  assert.equal(s.line.maxActivePerSession, 1, 'one handler at a time per session');
  assert.ok(s.line.maxActive >= 2, 'two sessions ran at once');
});

test('onClose runs after the messages that came before the close, never beside them', async (t) => {
  const s = await stack(t);
  const shut = gate();
  s.line.hold = shut.wait;
  const client = await connectWs(`${s.ws}/api/line?businessId=bye`);
  for (let i = 0; i < 5; i++) client.ws.send(`m${i}`);
  await eventually(() => s.line.started === 1, 5000, 'the first handler');
  client.ws.close(1000, 'bye');
  await client.closed;
  const id = s.line.opened[0]!;
  shut.open();
  await eventually(() => s.line.closes.length === 1, 5000, 'onClose');
  assert.deepEqual(s.line.closes[0], { sessionId: id, code: 1000, afterMessages: 5 });
  assert.deepEqual(s.line.seen.get(id), numbered(5));
});

/** A real link to a host, posing as a gateway that does not keep to the window it announced. */
async function rawGateway(t: TestContext, cluster: Cluster, address: { host: string; port: number }): Promise<{ link: Link; frames: Frame[] }> {
  const socket = net.connect(address.port, address.host);
  const link = new Link(socket, 'dialer', {
    nodeId: 'raw-gateway',
    secret: cluster.secret,
    maxFrameBytes: DEFAULT_MAX_FRAME_BYTES,
    handshakeTimeoutMs: 5000,
    pingIntervalMs: 60_000,
    maxQueuedBytes: 1024 * 1024,
    logger: quietLogger(),
  });
  const frames: Frame[] = [];
  link.onFrame = (frame) => frames.push(frame);
  t.after(() => link.destroy());
  await eventually(() => link.isOpen, 5000, 'the raw link');
  return { link, frames };
}

test('past its window a session is closed with 1013 and its queued messages still run; other sessions go on, and the drops are counted', async (t) => {
  const s = await stack(t, { host: { directInProcess: false } });
  const shut = gate();
  s.line.hold = shut.wait;
  const before = await drops(s.url);
  const raw = await rawGateway(t, s.cluster, s.host.linkAddress!);
  const id = 'raw-gateway.over';
  raw.link.send([FrameType.SessionOpen, id, 'ILineAppService', 'over', { headers: {}, query: {}, remoteAddress: '', maxQueuedMessages: 2 }]);
  await eventually(() => raw.frames.some((f) => f[0] === FrameType.SessionAccept && f[1] === id), 5000, 'SessionAccept');
  // Four at once where the window is two: the third is one too many, the fourth finds no session.
  for (let i = 0; i < 4; i++) raw.link.send([FrameType.SessionMessage, id, Buffer.from(`m${i}`), true]);
  const close = (await eventually(() => raw.frames.find((f) => f[0] === FrameType.SessionClose && f[1] === id), 5000, 'SessionClose')) as unknown[];
  assert.equal(close[2], 1013);
  assert.match(String(close[3]), /too many messages waiting/);

  // Another session, through the real gateway, is served while the closed one's handler still waits.
  s.line.hold = undefined;
  const other = await connectWs(`${s.ws}/api/line?businessId=other`);
  t.after(() => other.ws.terminate());
  other.ws.send('m0');
  const otherId = s.line.opened.at(-1)!;
  await eventually(() => s.line.seen.get(otherId)?.length === 1, 5000, 'the other session handled');

  shut.open();
  await eventually(() => s.line.closes.some((c) => c.sessionId === id), 5000, 'onClose of the closed session');
  assert.deepEqual(s.line.seen.get(id), ['m0', 'm1'], 'what was queued within the window ran');
  assert.deepEqual(
    s.line.closes.find((c) => c.sessionId === id),
    { sessionId: id, code: 1013, afterMessages: 2 },
  );
  assert.deepEqual(delta(before, await drops(s.url)), { queue_full: 1, unknown_session: 1 });
});

test('a message to a service without hooks is counted as dropped (no_handler), and its session stays open', async (t) => {
  const s = await stack(t);
  const before = await drops(s.url);
  const client = await connectWs(`${s.ws}/api/quiet?businessId=q`);
  t.after(() => client.ws.terminate());
  client.ws.send('nobody listens');
  client.ws.send('still nobody');
  await eventually(async () => (delta(before, await drops(s.url))['no_handler'] ?? 0) === 2, 5000, 'two no_handler drops');
  assert.equal(client.ws.readyState, client.ws.OPEN);
});

test(
  'a client whose host link is full is not read until the link drains; then every message reaches onMessage, in order',
  await redisTest(),
  async (t) => {
    const prefix = uniquePrefix();
    // The host in a process of its own, so it can be frozen (SIGSTOP): it then reads nothing from its link.
    const host = await spawnNode({ WEFT_ROLE: 'host', WEFT_SERVICES: 'chat', WEFT_PREFIX: prefix, WEFT_REDIS_URL: REDIS_URL, WEFT_TTL_MS: '20000' });
    t.after(() => host.kill());
    const cluster = redisCluster({ url: REDIS_URL, prefix, secret: PROCESS_SECRET, ttlMs: 20_000, heartbeatMs: 1000 });
    // A window far above the flood: only the link can make the gateway stop reading.
    const gateway = await createGateway({
      cluster,
      logger: quietLogger(),
      http: { host: '127.0.0.1', port: 0 },
      websocket: { maxQueuedMessages: 100_000 },
    }).start();
    t.after(() => gateway.stop());
    const client = (await eventually(
      () => connectWs(`${gateway.url.replace(/^http/, 'ws')}/api/chat?businessId=full`).catch(() => undefined),
      10_000,
      'a session on the host',
    )) as OpenedClient;
    t.after(() => client.ws.terminate());
    const before = await drops(gateway.url);
    const pausedBefore = await pauses(gateway.url);
    process.kill(host.child.pid!, 'SIGSTOP');
    let frozen = true;
    t.after(() => {
      if (frozen) process.kill(host.child.pid!, 'SIGCONT');
    });
    // 80 MiB: over the link's 64 MiB bound, past which a link refuses frames (what was dropped before).
    const count = 160;
    const padding = 'x'.repeat(512 * 1024);
    for (let i = 0; i < count; i++) client.ws.send(`m${i} ${padding}`);
    await eventually(
      async () => (delta(pausedBefore, await pauses(gateway.url))['link'] ?? 0) >= 1,
      20_000,
      'the gateway stopped reading the client',
    );
    process.kill(host.child.pid!, 'SIGCONT');
    frozen = false;
    // ChatAppService answers each message with got:<message>, in the order its onMessage ran them.
    const echoes = await client.waitFor(count, 60_000);
    assert.deepEqual(
      echoes.map((e) => e.slice('got:'.length).split(' ', 1)[0]),
      numbered(count),
    );
    assert.deepEqual(delta(before, await drops(gateway.url)), {}, 'nothing dropped');
  },
);
