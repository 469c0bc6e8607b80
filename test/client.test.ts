import assert from 'node:assert/strict';
import { once } from 'node:events';
import { test, type TestContext } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { WebSocket, WebSocketServer } from 'ws';
import { connectSession, shouldReconnect, type ClientError, type WebSocketConstructor } from '../src/client/index.js';
import { createHost, implement, WebSocketModule } from '../src/index.js';
import { ChatAppService, IChatAppService } from './fixtures/services.js';
import { eventually, httpJson, quietLogger } from './helpers/index.js';
import { startStack } from './fixtures/stack.js';

// ws's class fits WebSocketConstructor as it is: no cast on Node 20.
const WS: WebSocketConstructor = WebSocket;

test('reconnects after the host holding the session goes away, and receives pushes again', async (t) => {
  const stack = await startStack(t, { hosts: 1 });
  const spare = await createHost({
    cluster: stack.cluster,
    logger: quietLogger(),
    modules: [WebSocketModule],
    services: [implement(IChatAppService, new ChatAppService())],
  }).start();
  t.after(() => spare.stop());

  const received: string[] = [];
  const closes: [number, boolean][] = [];
  let opens = 0;
  const session = connectSession(`${stack.wsUrl}/api/chat`, {
    businessId: 'c1',
    WebSocket: WS,
    initialDelayMs: 20,
    onOpen: () => (opens += 1),
    onMessage: (data) => received.push(String(data)),
    onClose: (code, _reason, willReconnect) => closes.push([code, willReconnect]),
  });
  t.after(() => session.close());
  await eventually(() => session.isOpen, 5000, 'first open');

  // Stop whichever host holds it; the other keeps serving.
  const holder = stack.chats[0]!.log.some((l) => l.startsWith('open c1')) ? stack.hosts[0]! : spare;
  await holder.stop();
  await eventually(() => opens >= 2 && session.isOpen, 10000, 'reconnected');
  assert.ok(
    closes.some(([code, retry]) => (code === 1012 || code === 1011) && retry),
    `closes: ${JSON.stringify(closes)}`,
  );

  await eventually(
    async () => (await httpJson(`${stack.url}/api/chat/push?businessId=c1&msg=after`)).body.result === 1,
    5000,
    'push after reconnect',
  );
  await eventually(() => received.includes('after'), 5000, 'push received');
});

test('does not reconnect after a normal or policy close', () => {
  assert.equal(shouldReconnect(1000), false);
  assert.equal(shouldReconnect(1008), false);
  assert.equal(shouldReconnect(4000), false);
  assert.equal(shouldReconnect(1001), true);
  assert.equal(shouldReconnect(1012), true);
  assert.equal(shouldReconnect(1006), true);
});

test('on Node, a refused handshake reaches onError with its HTTP status', async (t) => {
  const stack = await startStack(t);
  const errors: ClientError[] = [];
  const session = connectSession(`${stack.wsUrl}/api/nowhere`, { businessId: 'x', WebSocket: WS, maxRetries: 0, onError: (e) => errors.push(e) });
  t.after(() => session.close());
  await eventually(() => errors.length === 1);
  assert.equal(errors[0]!.status, 404);
});

test('socketOptions reach the WebSocket constructor: ws sends the headers given', async (t) => {
  const stack = await startStack(t, { gateway: { forwardHeaders: ['user-agent'] } });
  const session = connectSession(`${stack.wsUrl}/api/chat`, {
    businessId: 'opts',
    WebSocket: WS,
    socketOptions: { headers: { 'user-agent': 'weft-client-test/1' } },
  });
  t.after(() => session.close());
  await eventually(() => stack.chats[0]!.log.some((l) => l.startsWith('open opts') && l.endsWith('ua=weft-client-test/1')));
});

test('refuses to start without a businessId', () => {
  assert.throws(() => connectSession('ws://127.0.0.1:1/api/chat', { businessId: '', WebSocket: WS }), /businessId/);
});

test('gives up after maxRetries attempts that never open (a refused handshake looks like 1006)', async (t) => {
  const stack = await startStack(t);
  const closes: boolean[] = [];
  let opens = 0;
  // An unknown path: the gateway refuses every handshake before the upgrade.
  const session = connectSession(`${stack.wsUrl}/api/nowhere`, {
    businessId: 'x',
    WebSocket: WS,
    initialDelayMs: 5,
    maxRetries: 2,
    onOpen: () => (opens += 1),
    onClose: (_code, _reason, willReconnect) => closes.push(willReconnect),
  });
  t.after(() => session.close());
  await eventually(() => closes.length === 3, 5000, 'three attempts');
  assert.deepEqual(closes, [true, true, false]);
  assert.equal(opens, 0);
});

/**
 * A `ws` server on 127.0.0.1:0 that speaks just enough weft.v1 (it takes the
 * subprotocol and sends a welcome), hands each connection to `onConnection`
 * and records when each arrived.
 */
async function wsServer(t: TestContext, onConnection: (ws: WebSocket, n: number) => void): Promise<{ url: string; arrivals: number[] }> {
  const server = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await once(server, 'listening');
  t.after(async () => {
    // Its close waits for every connection to end: end them (the client may still be connected).
    for (const ws of server.clients) ws.terminate();
    await new Promise((resolve) => server.close(resolve));
  });
  const arrivals: number[] = [];
  server.on('connection', (ws) => {
    arrivals.push(Date.now());
    ws.send(JSON.stringify({ type: 'welcome', sessionId: `fake.${arrivals.length}`, position: null, recovered: false, replayed: 0 }));
    onConnection(ws, arrivals.length);
  });
  const { port } = server.address() as { port: number };
  return { url: `ws://127.0.0.1:${port}/api/chat`, arrivals };
}

test('a server that accepts and closes at once (1013) is retried with doubling delays, not every initialDelayMs', async (t) => {
  const server = await wsServer(t, (ws) => ws.close(1013, 'try again later'));
  const closes: [number, boolean][] = [];
  let opens = 0;
  const session = connectSession(server.url, {
    businessId: 'b1',
    WebSocket: WS,
    initialDelayMs: 100,
    onOpen: () => (opens += 1),
    onClose: (code, _reason, willReconnect) => closes.push([code, willReconnect]),
  });
  t.after(() => session.close());
  await sleep(3000);
  // Delays of at least 50, 100, 200, 400 and 800 ms (doubling, jitter 0.5) put the 7th connection past 3 s.
  // Reset on every open, the client came back every 50-100 ms: 37 connections in this window.
  const connections = server.arrivals.length;
  assert.ok(connections >= 3 && connections <= 6, `${connections} connections in 3 s`);
  assert.equal(opens, connections);
  assert.ok(
    closes.every(([code, retry]) => code === 1013 && retry),
    `closes: ${JSON.stringify(closes)}`,
  );
});

test('after a connection stayed open past healthyAfterMs, the next reconnect waits initialDelayMs again', async (t) => {
  let held: WebSocket | undefined;
  // Four connections closed at once grow the delay; the fifth is kept open.
  const server = await wsServer(t, (ws, n) => (n < 5 ? ws.close(1013, 'try again later') : (held = ws)));
  const session = connectSession(server.url, {
    businessId: 'b2',
    WebSocket: WS,
    initialDelayMs: 100,
    healthyAfterMs: 200,
  });
  t.after(() => session.close());
  await eventually(() => held !== undefined && session.isOpen, 5000, 'the fifth connection open');
  const [, , , fourth, fifth] = server.arrivals as [number, number, number, number, number];
  // The fourth close waited a doubled delay, in [400, 800] ms.
  assert.ok(fifth - fourth >= 390, `the fifth connection came ${fifth - fourth} ms after the fourth`);

  await sleep(500); // past healthyAfterMs
  const closedAt = Date.now();
  held!.close(1013, 'try again later');
  await eventually(() => server.arrivals.length === 6, 5000, 'the sixth connection');
  // Without the reset this fifth close would wait [800, 1600] ms; with it, [50, 100] ms.
  const gap = server.arrivals[5]! - closedAt;
  assert.ok(gap < 800, `the sixth connection came ${gap} ms after the close`);
});
