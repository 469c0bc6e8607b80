/**
 * The Redis history (src/history/redis-history.ts) against a real Redis:
 * offsets from many writers, the window, the epoch after Redis lost the keys,
 * and resume across two gateways of a Redis cluster.
 */
import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import { Redis } from 'ioredis';
import { WebSocket } from 'ws';
import { connectSession, type OpenInfo } from '../src/client/index.js';
import type { Position } from '../src/history/history-store.js';
import { RedisHistory } from '../src/history/redis-history.js';
import { RedisConnection } from '../src/redis/redis-connection.js';
import { historyKeys } from '../src/redis/keys.js';
import { WebSocketModule, createGateway, createHost, implement, redisCluster } from '../src/index.js';
import { ChatAppService, IChatAppService } from './fixtures/services.js';
import { dropPrefix, startPrivateRedis } from './fixtures/node-control.js';
import { PROCESS_SECRET, REDIS_URL, eventually, quietLogger, redisTest, uniquePrefix } from './helpers/index.js';

const LIMITS = { maxEntries: 5, ttlMs: 60_000 };

function history(t: TestContext, url: string, prefix: string): RedisHistory {
  const store = new RedisHistory(new RedisConnection({ target: url, logger: quietLogger() }), { prefix });
  t.after(() => store.close());
  return store;
}

test('offsets grow by one per push to a businessId, whichever of several writers appends, in one epoch', await redisTest(), async (t) => {
  const prefix = uniquePrefix();
  t.after(() => dropPrefix(prefix));
  const writers = [history(t, REDIS_URL, prefix), history(t, REDIS_URL, prefix)];
  const positions = await Promise.all(
    Array.from({ length: 40 }, (_, i) => writers[i % 2]!.append('IS', 'b1', Buffer.from(`m${i}`), true, { maxEntries: 100, ttlMs: 60_000 })),
  );
  assert.equal(new Set(positions.map((p) => p.epoch)).size, 1);
  assert.deepEqual(
    positions.map((p) => p.offset).sort((a, b) => a - b),
    Array.from({ length: 40 }, (_, i) => i + 1),
  );
  // Another businessId has its own stream.
  assert.equal((await writers[0]!.append('IS', 'b2', Buffer.from('x'), true, LIMITS)).offset, 1);
});

test(
  'a read gives every entry after a position in order, and says window-passed once the stream no longer holds it',
  await redisTest(),
  async (t) => {
    const prefix = uniquePrefix();
    t.after(() => dropPrefix(prefix));
    const store = history(t, REDIS_URL, prefix);
    const first = await store.append('IS', 'b', Buffer.from('one'), true, LIMITS);
    await store.append('IS', 'b', Buffer.from([1, 2, 3]), false, LIMITS);
    const read = await store.read('IS', 'b', first, LIMITS.ttlMs);
    assert.ok(read.recovered);
    assert.deepEqual(
      read.entries.map((e) => [e.offset, Buffer.from(e.payload).toString('hex'), e.text]),
      [[2, '010203', false]],
    );
    assert.deepEqual(read.top, { epoch: first.epoch, offset: 2 });
    // Five kept: after seven more, offset 2 is gone from the stream.
    for (let i = 0; i < 7; i++) await store.append('IS', 'b', Buffer.from(`n${i}`), true, LIMITS);
    const late = await store.read('IS', 'b', first, LIMITS.ttlMs);
    assert.deepEqual([late.recovered, late.recovered ? '' : late.reason], [false, 'window-passed']);
    const recent = await store.read('IS', 'b', { epoch: first.epoch, offset: 5 }, LIMITS.ttlMs);
    assert.ok(recent.recovered);
    assert.deepEqual(
      recent.entries.map((e) => e.offset),
      [6, 7, 8, 9],
    );
  },
);

test('after Redis restarts empty a stream has a new epoch, and a position of the old one is epoch-changed', await redisTest(), async (t) => {
  const redis = await startPrivateRedis();
  t.after(async () => {
    await redis.kill();
    redis.remove();
  });
  const store = history(t, redis.url, 'h');
  const before = await store.append('IS', 'b', Buffer.from('x'), true, LIMITS);
  await redis.kill();
  await redis.start();
  const after = (await eventually(() => store.append('IS', 'b', Buffer.from('y'), true, LIMITS).catch(() => undefined), 10_000, 'Redis back'))!;
  assert.notEqual(after.epoch, before.epoch);
  assert.equal(after.offset, 1);
  const read = await store.read('IS', 'b', before, LIMITS.ttlMs);
  assert.deepEqual([read.recovered, read.recovered ? '' : read.reason], [false, 'epoch-changed']);
});

test('a weft/client resumes on the other gateway of a Redis cluster with what was pushed while it was away', await redisTest(), async (t) => {
  const prefix = uniquePrefix();
  t.after(() => dropPrefix(prefix));
  const cluster = redisCluster({ url: REDIS_URL, secret: PROCESS_SECRET, prefix });
  const chat = new ChatAppService();
  const host = await createHost({ cluster, logger: quietLogger(), modules: [WebSocketModule], services: [implement(IChatAppService, chat)] }).start();
  t.after(() => host.stop());
  const gateways = await Promise.all(
    [0, 1].map(() => createGateway({ cluster, logger: quietLogger(), http: { host: '127.0.0.1', port: 0 } }).start()),
  );
  t.after(() => Promise.all(gateways.map((g) => g.stop())));
  const url = (i: number): string => `${gateways[i]!.url.replace(/^http/, 'ws')}/api/chat`;

  const got: string[] = [];
  const first = connectSession(url(0), { businessId: 'r1', WebSocket, onMessage: (d) => got.push(String(d)) });
  t.after(() => first.close());
  await eventually(async () => (await chat.push('r1', 'a')) === 1);
  await eventually(() => got.length >= 1);
  const position = first.position!;
  first.close();
  await eventually(async () => (await chat.count('r1')) === 0);
  await chat.push('r1', 'b');
  await chat.push('r1', 'c');

  const opens: OpenInfo[] = [];
  const later: string[] = [];
  const second = connectSession(url(1), {
    businessId: 'r1',
    WebSocket,
    since: position,
    onOpen: (i) => opens.push(i),
    onMessage: (d) => later.push(String(d)),
  });
  t.after(() => second.close());
  await eventually(() => later.length === 2);
  assert.deepEqual(later, ['b', 'c']);
  assert.deepEqual([opens[0]!.recovered, opens[0]!.replayed], [true, 2]);
});

test('a second append with the same dedupe key keeps nothing and gives the first one’s position', await redisTest(), async (t) => {
  const prefix = uniquePrefix();
  t.after(() => dropPrefix(prefix));
  const [a, b] = [history(t, REDIS_URL, prefix), history(t, REDIS_URL, prefix)];
  const first = await a.append('IS', 'd', Buffer.from('once'), true, LIMITS, 'call-1.1');
  const again = await b.append('IS', 'd', Buffer.from('once'), true, LIMITS, 'call-1.1');
  const other = await b.append('IS', 'd', Buffer.from('next'), true, LIMITS, 'call-1.2');
  assert.deepEqual(again, first);
  assert.equal(other.offset, first.offset + 1);
  const read = await a.read('IS', 'd', { epoch: first.epoch, offset: 0 }, LIMITS.ttlMs);
  assert.ok(read.recovered);
  assert.deepEqual(
    read.entries.map((e) => Buffer.from(e.payload).toString()),
    ['once', 'next'],
  );
});

test(
  'a dedupe key holds while its push is kept, the keys of pushes no longer kept go, and the stream outlives its last push by ttlMs',
  await redisTest(),
  async (t) => {
    const prefix = uniquePrefix();
    t.after(() => dropPrefix(prefix));
    const store = history(t, REDIS_URL, prefix);
    const raw = new Redis(REDIS_URL);
    t.after(() => raw.quit());
    // LIMITS keeps 5 pushes: 12 pushes by calls, one at a time.
    const first: Position[] = [];
    for (let i = 1; i <= 12; i++) first.push(await store.append('IS', 'd', Buffer.from(`m${i}`), true, LIMITS, `call-${i}`));
    const keys = historyKeys(prefix, 'IS', 'd');
    const fields = (await raw.hkeys(keys.meta)).filter((f) => f.startsWith('k:'));
    // Dropped together at offset 10 (every maxEntries pushes): those up to 5 went, 6 to 12 stay.
    assert.deepEqual(fields.sort(), ['k:call-10', 'k:call-11', 'k:call-12', 'k:call-6', 'k:call-7', 'k:call-8', 'k:call-9']);
    // A retry of a kept push gives its position; one whose dedupe field went is a new push.
    assert.deepEqual(await store.append('IS', 'd', Buffer.from('m8'), true, LIMITS, 'call-8'), first[7]);
    assert.equal((await store.append('IS', 'd', Buffer.from('m2'), true, LIMITS, 'call-2')).offset, 13);
    assert.equal(await raw.xlen(keys.stream), LIMITS.maxEntries);
    const ttl = await raw.pttl(keys.stream);
    assert.ok(ttl > LIMITS.ttlMs - 1000 && ttl <= LIMITS.ttlMs + 1000, `stream TTL ${ttl} ms`);
  },
);
