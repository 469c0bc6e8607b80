/**
 * A live gateway that stalls longer than the node TTL (SIGSTOP here; a
 * blocked event loop or a starved machine in life) is taken for dead: the
 * others drop its sessions from the directory and pushes skip it. When it
 * runs again it registers again, writes its sessions again and reads, for
 * each weft.v1 session, what the session's stream got meanwhile: nothing
 * kept is lost, even with no push after the stall (docs/delivery.md).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { WebSocket } from 'ws';
import { connectSession } from '../src/client/index.js';
import { controlNode, dropPrefix } from './fixtures/node-control.js';
import { REDIS_URL, eventually, redisTest, spawnNode, uniquePrefix, type NodeProcess } from './helpers/index.js';

/** Short TTLs make the stall a short one; the heartbeat keeps the running nodes well inside theirs. */
const FAST = { WEFT_TTL_MS: '1500', WEFT_HEARTBEAT_MS: '300' };
const HISTORY = JSON.stringify({ maxEntries: 100, ttlMs: 60_000 });

test('a weft.v1 session on a gateway that stalled past the node TTL gets the pushes made while it was out', await redisTest(), async (t) => {
  const prefix = uniquePrefix();
  const procs: NodeProcess[] = [];
  t.after(async () => {
    await Promise.all(procs.map((p) => p.kill()));
    await dropPrefix(prefix, REDIS_URL);
  });
  const env = { ...FAST, WEFT_PREFIX: prefix, WEFT_REDIS_URL: REDIS_URL, WEFT_HISTORY: HISTORY };
  const [host, gw, callerProc] = await Promise.all([
    spawnNode({ ...env, WEFT_ROLE: 'host', WEFT_SERVICES: 'chat', WEFT_NAME: 'h' }),
    spawnNode({ ...env, WEFT_ROLE: 'gateway', WEFT_NAME: 'gw' }),
    spawnNode({ ...env, WEFT_ROLE: 'host', WEFT_SERVICES: '', WEFT_NAME: 'caller' }),
  ]);
  procs.push(host, gw, callerProc);
  const caller = controlNode(callerProc);
  const push = async (businessId: string, msg: string): Promise<number> => {
    const r = await caller.call('IChatAppService', 'push', [businessId, msg]);
    if (!r.ok) throw new Error(`push: ${r.code} ${r.message}`);
    return r.value as number;
  };
  const count = async (businessId: string): Promise<number> => {
    const r = await caller.call('IChatAppService', 'count', [businessId]);
    if (!r.ok) throw new Error(`count: ${r.code} ${r.message}`);
    return r.value as number;
  };

  const received: string[] = [];
  const session = connectSession(`ws://127.0.0.1:${gw.info.httpPort}/api/chat`, {
    businessId: 'b1',
    WebSocket,
    initialDelayMs: 20,
    onMessage: (data) => received.push(String(data)),
  });
  t.after(() => session.close());
  await eventually(async () => (await count('b1')) === 1, 15000, 'the session listed');
  await eventually(async () => (await push('b1', 'before')) === 1, 15000, 'a push reaching the session');
  await eventually(() => received.includes('before'), 5000, 'the first push received');

  gw.child.kill('SIGSTOP');
  try {
    // The stalled gateway is taken for dead: its session leaves the directory.
    await eventually(async () => (await count('b1')) === 0, 15000, 'the stalled gateway reaped');
    assert.equal(await push('b1', 'during'), 0, 'a push while the gateway is out reaches no one live');
  } finally {
    gw.child.kill('SIGCONT');
  }

  // No later push: the gateway itself must notice what its session missed.
  await eventually(() => received.includes('during'), 15000, 'the push made while the gateway was out');
  await eventually(async () => (await count('b1')) === 1, 15000, 'the session listed again');
  await eventually(async () => (await push('b1', 'after')) === 1, 15000, 'a push after the stall');
  await eventually(() => received.includes('after'), 5000, 'the push after the stall received');
  assert.deepEqual(received, ['before', 'during', 'after'], 'each push once, in order');
});
