/**
 * A session lives as long as its token: at `exp` (plus the clock tolerance)
 * the gateway closes it with 4001 "token expired", and weft/client with a
 * getToken reconnects with a fresh token.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { WebSocket } from 'ws';
import { connectSession, shouldReconnect, TOKEN_EXPIRED_CLOSE_CODE, type WebSocketConstructor } from '../src/client/index.js';
import { WeftCloseCode } from '../src/protocol/close-codes.js';
import { IChatAppService } from './fixtures/services.js';
import { startStack } from './fixtures/stack.js';
import { connectWs, eventually, httpJson } from './helpers/index.js';
import { SECRET, tokenFor } from './helpers/tokens.js';

// ws's class fits WebSocketConstructor as it is: no cast on Node 20.
const WS: WebSocketConstructor = WebSocket;
// No tolerance: the tests' tokens expire in a second or two.
const JWT = { auth: { jwt: { secret: SECRET, clockToleranceSeconds: 0 } } };

test('a session is closed with 4001 "token expired" when its token expires, and forgotten everywhere', async (t) => {
  const stack = await startStack(t, { gateway: JWT });
  const chat = stack.hosts[0]!.proxy(IChatAppService);
  const lasting = await connectWs(`${stack.wsUrl}/api/chat?token=${await tokenFor('acme')}`);
  t.after(() => lasting.ws.terminate());
  const shortLived = await connectWs(`${stack.wsUrl}/api/chat?token=${await tokenFor('acme', {}, { expiresIn: 1 })}`);
  assert.equal(await chat.count('acme'), 2);
  const closed = await shortLived.closed;
  assert.deepEqual(closed, { code: 4001, reason: 'token expired' });
  await eventually(async () => (await chat.count('acme')) === 1, 5000, 'the expired session gone from the directory');
  assert.ok(stack.chats[0]!.log.some((l) => l.startsWith('close ') && l.endsWith(' 4001 token expired')));
  assert.equal(await chat.push('acme', 'still here'), 1);
  assert.deepEqual(await lasting.waitFor(1), ['still here']);
});

test('a session whose token has no exp stays open', async (t) => {
  const stack = await startStack(t, { gateway: { auth: { jwt: { secret: SECRET, requireExpiry: false } } } });
  const client = await connectWs(`${stack.wsUrl}/api/chat?token=${await tokenFor('acme', {}, { expiresIn: null })}`);
  t.after(() => client.ws.terminate());
  assert.equal(await stack.hosts[0]!.proxy(IChatAppService).push('acme', 'x'), 1);
  assert.deepEqual(await client.waitFor(1), ['x']);
});

test('4001 is the documented close code, and weft/client reconnects on it only when it can get a fresh token', () => {
  assert.equal(WeftCloseCode.TokenExpired, 4001);
  assert.equal(TOKEN_EXPIRED_CLOSE_CODE, WeftCloseCode.TokenExpired);
  assert.equal(shouldReconnect(4001), false);
  assert.equal(shouldReconnect(4001, true), true);
  assert.equal(shouldReconnect(1008, true), false);
});

test('weft/client sends a fresh token in-band before the first expires, and the session outlives it', async (t) => {
  const stack = await startStack(t, { gateway: JWT });
  const tokens: string[] = [];
  const closes: number[] = [];
  let opens = 0;
  const session = connectSession(`${stack.wsUrl}/api/chat`, {
    WebSocket: WS,
    initialDelayMs: 10,
    // The first token expires within about two seconds; the next ones last.
    getToken: async () => {
      const token = await tokenFor('acme', {}, { expiresIn: tokens.length === 0 ? 2 : 300 });
      tokens.push(token);
      return token;
    },
    onOpen: () => (opens += 1),
    onClose: (code) => closes.push(code),
  });
  t.after(() => session.close());
  await eventually(() => tokens.length === 2, 10_000, 'a fresh token asked for before the first expired');
  await sleep(2500); // past the first token's expiry
  assert.equal(session.isOpen, true);
  assert.equal(opens, 1);
  assert.deepEqual(closes, []);
});

test('weft/client asks getToken before each connect and, closed with 4001, reconnects with a fresh token', async (t) => {
  const stack = await startStack(t, { gateway: JWT });
  const tokens: string[] = [];
  const closes: [number, boolean][] = [];
  let opens = 0;
  let calls = 0;
  const session = connectSession(`${stack.wsUrl}/api/chat`, {
    WebSocket: WS,
    initialDelayMs: 10,
    // The first token expires within about a second, and the in-band refresh fails: the gateway closes with 4001.
    getToken: async () => {
      calls += 1;
      if (calls === 2) throw new Error('token service down');
      const token = await tokenFor('acme', {}, { expiresIn: tokens.length === 0 ? 1 : 300 });
      tokens.push(token);
      return token;
    },
    onOpen: () => (opens += 1),
    onClose: (code, _reason, willReconnect) => closes.push([code, willReconnect]),
  });
  t.after(() => session.close());
  await eventually(() => opens >= 2 && session.isOpen, 10_000, 'reconnected after the token expired');
  assert.deepEqual(closes, [[4001, true]]);
  assert.equal(tokens.length, 2);
  assert.notEqual(tokens[0], tokens[1]);
  // The new session is acme's (no businessId given: the token's).
  await eventually(
    async () =>
      (await httpJson(`${stack.url}/api/chat/count?businessId=acme`, { headers: { authorization: `Bearer ${tokens[1]}` } })).body.result === 1,
  );
});

test('weft/client retries with backoff when getToken fails, then connects', async (t) => {
  const stack = await startStack(t, { gateway: JWT });
  let calls = 0;
  const errors: unknown[] = [];
  let opened = false;
  const session = connectSession(`${stack.wsUrl}/api/chat`, {
    WebSocket: WS,
    businessId: 'acme',
    initialDelayMs: 5,
    getToken: () => {
      calls += 1;
      if (calls < 3) throw new Error('token service down');
      return tokenFor('acme');
    },
    onTokenError: (e) => errors.push(e),
    onOpen: () => (opened = true),
  });
  t.after(() => session.close());
  await eventually(() => opened, 5000, 'open after two failed getToken calls');
  assert.equal(calls, 3);
  assert.equal(errors.length, 2);
});

test('weft/client needs a businessId only without getToken', () => {
  assert.throws(() => connectSession('ws://127.0.0.1:1/api/chat', { WebSocket: WS }), /businessId/);
  const session = connectSession('ws://127.0.0.1:1/api/chat', { WebSocket: WS, getToken: () => 'x', maxRetries: 0 });
  session.close();
});
