/**
 * What the front door admits before a host is asked, and what a host gives
 * up: an onOpen that does not settle in time, handshakes per address per
 * second, sessions per address and per businessId, unguessable session ids.
 */
import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import { WebSocketModule, createGateway, createHost, implement, memoryCluster, type WsSession } from '../src/index.js';
import { CountLimiter, RateLimiter } from '../src/gateway/front-door/admission-limits.js';
import { ChatAppService, IChatAppService } from './fixtures/services.js';
import { startStack } from './fixtures/stack.js';
import { connectWs, eventually, getHealth, quietLogger, refusedWs, type OpenedClient } from './helpers/index.js';

function closeAll(clients: OpenedClient[]): void {
  for (const c of clients) c.ws.terminate();
}

/** A chat service whose onOpen, for `?hang=1`, waits until the test lets it go. */
class HangingChat extends ChatAppService {
  readonly #waiting: (() => void)[] = [];

  // The host awaits an onOpen that returns a promise (WsAppServiceBase allows it); ChatAppService's own is sync.
  // eslint-disable-next-line @typescript-eslint/no-misused-promises
  override onOpen(session: WsSession): void | Promise<void> {
    if (session.query['hang'] !== '1') return super.onOpen(session);
    this.log.push(`opening ${session.id}`);
    return new Promise<void>((resolve) => this.#waiting.push(resolve)).then(() => super.onOpen(session));
  }

  /** Lets every onOpen still waiting succeed, however late. */
  release(): void {
    for (const resolve of this.#waiting.splice(0)) resolve();
  }

  /** Sessions this host holds (bound here, onOpen done). */
  get local(): WsSession[] {
    return [...this.sessionManager.localSessions()];
  }

  get waiting(): number {
    return this.#waiting.length;
  }
}

async function hangingStack(t: TestContext, sessionOpenTimeoutMs: number) {
  const cluster = memoryCluster();
  const chat = new HangingChat();
  const host = createHost({ cluster, logger: quietLogger(), modules: [WebSocketModule], services: [implement(IChatAppService, chat)] });
  await host.start();
  t.after(() => host.stop());
  const gateway = await createGateway({
    cluster,
    logger: quietLogger(),
    http: { host: '127.0.0.1', port: 0 },
    websocket: { sessionOpenTimeoutMs },
  }).start();
  t.after(() => gateway.stop());
  return { chat, host, gateway, wsUrl: gateway.url.replace(/^http/, 'ws') };
}

test('an onOpen that never settles: the client gets 504, the host forgets the session and never accepts it late', async (t) => {
  const { chat, host, gateway, wsUrl } = await hangingStack(t, 300);
  const r = await refusedWs(`${wsUrl}/api/chat?businessId=9&hang=1`);
  assert.equal(r.status, 504);
  assert.equal(r.body.code, 'Timeout');
  assert.equal(chat.waiting, 1, 'onOpen ran and is still pending');
  // The gateway tells the host it gave up; the host forgets the session still in onOpen.
  await eventually(() => (host.stats().framesReceived['SessionClosed'] ?? 0) >= 1, 5000, 'the gateway to tell the host');
  // onOpen succeeds now, too late: nothing is accepted, nothing closes.
  chat.release();
  await eventually(() => chat.log.some((l) => l.startsWith('open ')), 5000, 'the late onOpen to finish');
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(chat.local, [], 'the host holds no session');
  assert.equal(await chat.count('9'), 0);
  assert.equal(gateway.sessionCount, 0);
  assert.equal(host.stats().framesReceived['SessionOpen'], 1);
  assert.ok(!chat.log.some((l) => l.startsWith('close ')), `no onClose for a session that never opened: ${chat.log.join('; ')}`);
  // The service still opens sessions whose onOpen settles.
  const ok = await connectWs(`${wsUrl}/api/chat?businessId=9`);
  t.after(() => closeAll([ok]));
  assert.equal(chat.local.length, 1);
});

test('a burst of handshakes from one address over its rate: some get 429 with Retry-After, the others open, and the gateway keeps serving', async (t) => {
  // A rate of 5 a second against 20 at once: the bucket cannot refill 15 handshakes' worth however slowly they arrive.
  const stack = await startStack(t, { gateway: { websocket: { maxHandshakesPerIpPerSecond: 5 } } });
  const attempts = await Promise.allSettled(Array.from({ length: 20 }, (_, i) => connectWs(`${stack.wsUrl}/api/chat?businessId=b${i}`)));
  const opened = attempts.flatMap((a) => (a.status === 'fulfilled' ? [a.value] : []));
  t.after(() => closeAll(opened));
  const refusals = attempts.flatMap((a) =>
    a.status === 'rejected' ? [a.reason as { status: number; headers: Record<string, string>; body: string }] : [],
  );
  assert.ok(opened.length >= 5, `the burst of 5 opens (${opened.length} did)`);
  assert.ok(refusals.length > 0, 'some handshakes are over the rate');
  for (const refusal of refusals) {
    assert.equal(refusal.status, 429);
    assert.ok(Number(refusal.headers['retry-after']) >= 1, 'Retry-After in whole seconds');
    const body = JSON.parse(refusal.body) as { code: string; errorMessage: string; result: unknown };
    assert.equal(body.code, 'TooManyRequests');
    assert.equal(body.result, null);
    assert.match(body.errorMessage, /handshakes a second/);
  }
  assert.equal((await getHealth(stack.url)).status, 200);
  // Sessions that opened work, and once the bucket refills a new one opens.
  assert.equal(await stack.chats[0]!.push('b0', 'still here'), 1);
  await opened[0]!.waitFor(1);
  await eventually(
    () =>
      connectWs(`${stack.wsUrl}/api/chat?businessId=later`).then(
        (c) => (opened.push(c), true),
        () => false,
      ),
    5000,
    'a handshake after the burst',
  );
});

test('sessions per businessId are capped with 429, and sessions closed or refused later in the open no longer count', async (t) => {
  const stack = await startStack(t, { gateway: { websocket: { maxSessionsPerBusinessId: 2 }, retryAfterSeconds: 3 } });
  const first = await connectWs(`${stack.wsUrl}/api/chat?businessId=5`);
  // onOpen refuses these: each was counted while it opened, and released.
  for (let i = 0; i < 3; i++) assert.equal((await refusedWs(`${stack.wsUrl}/api/chat?businessId=5&token=bad`)).status, 401);
  const second = await connectWs(`${stack.wsUrl}/api/chat?businessId=5`);
  t.after(() => closeAll([first, second]));
  const over = await refusedWs(`${stack.wsUrl}/api/chat?businessId=5`);
  assert.equal(over.status, 429);
  assert.equal(over.headers['retry-after'], '3');
  assert.equal(over.body.code, 'TooManyRequests');
  assert.match(over.body.errorMessage ?? '', /businessId 5 holds 2/);
  // Another businessId is not affected.
  const other = await connectWs(`${stack.wsUrl}/api/chat?businessId=6`);
  t.after(() => closeAll([other]));
  // A closed session frees its place.
  first.ws.close();
  await first.closed;
  const again = await eventually(() => connectWs(`${stack.wsUrl}/api/chat?businessId=5`), 5000, 'a place for businessId 5');
  t.after(() => closeAll([again]));
  assert.equal(await stack.chats[0]!.count('5'), 2);
  // So does one whose socket is cut with no close handshake.
  second.ws.terminate();
  const third = await eventually(() => connectWs(`${stack.wsUrl}/api/chat?businessId=5`), 5000, 'a place after a cut socket');
  t.after(() => closeAll([third]));
  assert.equal((await refusedWs(`${stack.wsUrl}/api/chat?businessId=5`)).status, 429, 'and the cap still holds');
});

test('sessions per address are capped with 429; a handshake refused before the count does not take a place', async (t) => {
  const stack = await startStack(t, { gateway: { websocket: { maxSessionsPerIp: 2 } } });
  assert.equal((await refusedWs(`${stack.wsUrl}/api/nowhere?businessId=1`)).status, 404);
  const a = await connectWs(`${stack.wsUrl}/api/chat?businessId=1`);
  const b = await connectWs(`${stack.wsUrl}/api/chat?businessId=2`);
  t.after(() => closeAll([a, b]));
  const over = await refusedWs(`${stack.wsUrl}/api/chat?businessId=3`);
  assert.equal(over.status, 429);
  assert.ok(over.headers['retry-after'] !== undefined);
  assert.match(over.body.errorMessage ?? '', /this address holds 2/);
  b.ws.terminate();
  await b.closed;
  const c = await eventually(() => connectWs(`${stack.wsUrl}/api/chat?businessId=3`), 5000, 'a place for this address');
  t.after(() => closeAll([c]));
});

test('session ids keep the gateway prefix with a random suffix, and pushes by id still reach them', async (t) => {
  const stack = await startStack(t);
  const clients: OpenedClient[] = [];
  t.after(() => closeAll(clients));
  for (let i = 0; i < 4; i++) clients.push(await connectWs(`${stack.wsUrl}/api/chat?businessId=ids`));
  const ids = stack.chats[0]!.sessions.map((s) => s.id);
  assert.equal(ids.length, 4);
  const prefix = `${stack.gateway.nodeId}.`;
  const suffixes = ids.map((id) => {
    assert.ok(id.startsWith(prefix), id);
    return id.slice(prefix.length);
  });
  for (const suffix of suffixes) assert.match(suffix, /^[A-Za-z0-9_-]{22}$/, '16 random bytes, base64url');
  assert.equal(new Set(suffixes).size, suffixes.length);
  // Consecutive ids share no leading characters beyond chance (a counter would share all but the last).
  for (let i = 1; i < suffixes.length; i++) assert.notEqual(suffixes[i]!.slice(0, 8), suffixes[i - 1]!.slice(0, 8));
  for (const [i, id] of ids.entries()) {
    assert.equal(await stack.chats[0]!.sendTo(id, `to ${i}`), true);
    assert.deepEqual(await clients[i]!.waitFor(1), [`to ${i}`]);
  }
});

test('the handshake rate is a token bucket per address: a burst, then one a second per rate, and idle addresses are forgotten', () => {
  let now = 0;
  const limiter = new RateLimiter(2, () => now);
  assert.equal(limiter.take('a'), 0);
  assert.equal(limiter.take('a'), 0);
  assert.equal(limiter.take('a'), 1, 'over the burst: retry after a second');
  assert.equal(limiter.take('b'), 0, 'another address has its own bucket');
  now += 500;
  assert.equal(limiter.take('a'), 0, 'half a second refills one at 2 a second');
  now += 5000;
  limiter.take('c');
  assert.equal(limiter.size, 1, 'full buckets are dropped');
  const slow = new RateLimiter(0.25, () => now);
  assert.equal(slow.take('a'), 0);
  assert.equal(slow.take('a'), 4, 'Retry-After is the wait for one token');
});

test('a session counter refuses past its cap and frees a place on release', () => {
  const counts = new CountLimiter(2);
  assert.equal(counts.acquire('x'), true);
  assert.equal(counts.acquire('x'), true);
  assert.equal(counts.acquire('x'), false);
  assert.equal(counts.count('x'), 2);
  counts.release('x');
  assert.equal(counts.acquire('x'), true);
  counts.release('x');
  counts.release('x');
  counts.release('x');
  counts.release('x');
  assert.equal(counts.count('x'), 0);
});
