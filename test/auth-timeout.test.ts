/**
 * Authentication has authTimeoutMs: a hook (or a token check) that takes
 * longer is answered 504 with the JSON body, never left hanging.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DEFAULTS } from '../src/index.js';
import { startStack } from './fixtures/stack.js';
import { connectWs, httpJson, refusedWs } from './helpers/index.js';

test('handshakes and requests whose authenticate hook never answers get 504 within authTimeoutMs', async (t) => {
  let calls = 0;
  const stack = await startStack(t, {
    gateway: {
      authTimeoutMs: 300,
      authenticate: (req) => {
        calls += 1;
        // Hangs for anything but the query `fast`.
        return req.query['fast'] === undefined ? new Promise<void>(() => {}) : undefined;
      },
    },
  });
  const handshakes = await Promise.all(Array.from({ length: 20 }, (_, i) => refusedWs(`${stack.wsUrl}/api/chat?businessId=b${i}`)));
  for (const refused of handshakes) {
    assert.equal(refused.status, 504);
    assert.equal(refused.body.code, 'Timeout');
    assert.equal(refused.body.errorMessage, 'authentication did not finish within 300 ms');
  }
  const request = await httpJson(`${stack.url}/api/test/echo?value=x`);
  assert.equal(request.status, 504);
  assert.equal(request.body.code, 'Timeout');
  assert.equal(stack.gateway.sessionCount, 0);
  assert.deepEqual(stack.chats[0]!.log, [], 'no host was asked to open a session');
  // The gateway still serves what authenticates in time.
  const ok = await connectWs(`${stack.wsUrl}/api/chat?businessId=b&fast=1`);
  t.after(() => ok.ws.terminate());
  assert.equal((await httpJson(`${stack.url}/api/test/echo?value=y&fast=1`)).body.result, 'y');
  assert.equal(calls, 23);
});

test('authTimeoutMs defaults to 5 s', () => {
  assert.equal(DEFAULTS.authTimeoutMs, 5000);
});
