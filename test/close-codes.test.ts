import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MAX_CLOSE_REASON_BYTES, closeReason, isSendableCloseCode } from '../src/protocol/close-codes.js';
import { IChatAppService } from './fixtures/services.js';
import { connectWs, eventually } from './helpers/index.js';
import { startStack } from './fixtures/stack.js';

test('close reasons are cut to 123 UTF-8 bytes, never inside a character', () => {
  assert.equal(closeReason('bye'), 'bye');
  const cut = closeReason('é'.repeat(100));
  assert.ok(Buffer.byteLength(cut) <= MAX_CLOSE_REASON_BYTES);
  assert.equal(cut, 'é'.repeat(61));
  assert.equal(closeReason('😀'.repeat(40)), '😀'.repeat(30));
});

test('only codes a server may send are accepted', () => {
  for (const code of [1000, 1001, 1008, 1011, 1012, 1013, 3000, 4999]) assert.equal(isSendableCloseCode(code), true, String(code));
  for (const code of [999, 1005, 1006, 1015, 2999, 5000, 4000.5]) assert.equal(isSendableCloseCode(code), false, String(code));
});

test('closing a session with a long multi-byte reason closes the client with the code and the cut reason', async (t) => {
  const stack = await startStack(t);
  const client = await connectWs(`${stack.wsUrl}/api/chat?businessId=long-reason`);
  const [id] = await stack.hosts[0]!.proxy(IChatAppService)
    .list()
    .then((all) => all.map((s) => s.sessionId));
  assert.ok(id !== undefined);
  assert.equal(await stack.hosts[0]!.proxy(IChatAppService).kick(id, 4000, 'é'.repeat(100)), true);
  const closed = await client.closed;
  assert.equal(closed.code, 4000);
  assert.equal(closed.reason, 'é'.repeat(61));
  await eventually(async () => (await stack.hosts[0]!.proxy(IChatAppService).count('long-reason')) === 0, 5000, 'the session gone');
});
