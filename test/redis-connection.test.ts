/**
 * RedisConnection against a real Redis: commands sent together share one
 * socket write and each still gets its own answer.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Redis } from 'ioredis';
import { RedisConnection } from '../src/redis/redis-connection.js';
import { REDIS_URL, quietLogger, redisTest, uniquePrefix } from './helpers/index.js';

test('the MULTIs sent together go out in one socket write, each answered on its own', await redisTest(), async (t) => {
  const redis = new RedisConnection({ target: REDIS_URL, logger: quietLogger() });
  await redis.open();
  const prefix = uniquePrefix();
  const c = redis.command as Redis;
  const keys = Array.from({ length: 5 }, (_, i) => [`${prefix}:k${i}`, `${prefix}:k${i}:n`]).flat();
  t.after(async () => {
    await c.del(...keys);
    await redis.close();
  });
  // Count what reaches the socket: the writes of one corked run leave as one writev.
  const socket = c.stream;
  let writes = 0;
  const countWrites = (): void => {
    writes += 1;
  };
  const realWrite = socket._write.bind(socket);
  const realWritev = socket._writev?.bind(socket);
  socket._write = (chunk, encoding, cb) => {
    countWrites();
    realWrite(chunk, encoding, cb);
  };
  socket._writev = (chunks, cb) => {
    countWrites();
    realWritev!(chunks, cb);
  };
  const done = redis.together(() => Array.from({ length: 5 }, (_, i) => c.multi().set(`${prefix}:k${i}`, `v${i}`).incr(`${prefix}:k${i}:n`).exec()));
  const results = await Promise.all(done);
  assert.equal(writes, 1, 'one write for five MULTIs');
  results.forEach((r) =>
    assert.deepEqual(r, [
      [null, 'OK'],
      [null, 1],
    ]),
  );
  assert.equal(await c.get(`${prefix}:k3`), 'v3');
});
