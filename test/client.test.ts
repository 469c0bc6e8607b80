import assert from 'node:assert/strict';
import { test } from 'node:test';
import { WebSocket } from 'ws';
import { connectSession, shouldReconnect, type WebSocketConstructor } from '../src/client/index.js';
import { createHost, implement, WebSocketModule } from '../src/index.js';
import { ChatAppService, IChatAppService } from './fixtures/services.js';
import { eventually, httpJson, quietLogger } from './helpers/index.js';
import { startStack } from './fixtures/stack.js';

const WS = WebSocket as unknown as WebSocketConstructor;

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
  assert.ok(closes.some(([code, retry]) => (code === 1012 || code === 1011) && retry), `closes: ${JSON.stringify(closes)}`);

  await eventually(async () => (await httpJson(`${stack.url}/api/chat/push?businessId=c1&msg=after`)).body.result === 1, 5000, 'push after reconnect');
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
