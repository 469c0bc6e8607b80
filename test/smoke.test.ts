import assert from 'node:assert/strict';
import { test } from 'node:test';
import { connectWs, httpJson } from './helpers/index.js';
import { startStack } from './fixtures/stack.js';

test('a pushed echo reaches every session of a businessId through the gateway', async (t) => {
  const stack = await startStack(t);
  const a = await connectWs(`${stack.wsUrl}/api/chat?businessId=100`);
  const b = await connectWs(`${stack.wsUrl}/api/chat?businessId=100`);
  const other = await connectWs(`${stack.wsUrl}/api/chat?businessId=200`);
  t.after(() => [a, b, other].forEach((c) => c.ws.close()));
  const res = await httpJson(`${stack.url}/api/chat/echo?businessId=100&msg=hello`);
  assert.equal(res.status, 200);
  assert.equal(res.body.result, 2);
  const [ma] = await a.waitFor(1);
  const [mb] = await b.waitFor(1);
  assert.match(ma!, /^message:hello,sessionId:\S+$/);
  assert.match(mb!, /^message:hello,sessionId:\S+$/);
  assert.notEqual(ma, mb);
  assert.deepEqual(other.messages, []);
});
