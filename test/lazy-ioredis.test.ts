/**
 * ioredis is loaded only by a node that uses a Redis cluster: importing weft
 * and running on the memory cluster never resolves it (each case runs in a
 * process of its own, fixtures/import-trace.ts, that records every module
 * specifier resolved).
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { REDIS_URL, redisTest, uniquePrefix } from './helpers/index.js';

const FIXTURE = fileURLToPath(new URL('./fixtures/import-trace.js', import.meta.url));

interface Resolved {
  specifier: string;
  url: string;
}

async function trace(env: Record<string, string>): Promise<Resolved[]> {
  const { stdout } = await promisify(execFile)(process.execPath, [FIXTURE], { env: { ...process.env, ...env }, timeout: 30_000 });
  const line = stdout.split('\n').find((l) => l.startsWith('RESOLVED '));
  assert.ok(line !== undefined, `no RESOLVED line in ${stdout}`);
  return JSON.parse(line.slice('RESOLVED '.length)) as Resolved[];
}

const isIoredis = (r: Resolved): boolean =>
  r.specifier === 'ioredis' || r.specifier.startsWith('ioredis/') || r.url.includes('/node_modules/ioredis/');

/** The entries between two marks of the fixture. */
function between(list: Resolved[], from: string | undefined, to: string): Resolved[] {
  const start = from === undefined ? 0 : list.findIndex((r) => r.specifier === `mark:${from}`);
  const end = list.findIndex((r) => r.specifier === `mark:${to}`);
  assert.ok(start >= 0 && end > start, `marks ${from} and ${to} in ${JSON.stringify(list.map((r) => r.specifier))}`);
  return list.slice(start, end);
}

test('importing weft and running a host on the memory cluster never loads ioredis', async () => {
  const resolved = await trace({ WEFT_TRACE: 'memory' });
  // The hook does see weft's own dependencies, so an absent ioredis means it was not loaded.
  const imported = between(resolved, undefined, 'imported');
  for (const dependency of ['pino', 'ws', 'msgpackr']) {
    assert.ok(
      imported.some((r) => r.specifier === dependency),
      `${dependency} is among the resolved modules`,
    );
  }
  assert.deepEqual(resolved.filter(isIoredis), []);
});

test('a host on a Redis cluster loads ioredis when it starts, not when weft is imported', await redisTest(), async () => {
  const resolved = await trace({ WEFT_TRACE: 'redis', WEFT_REDIS_URL: REDIS_URL, WEFT_PREFIX: uniquePrefix() });
  assert.deepEqual(between(resolved, undefined, 'imported').filter(isIoredis), []);
  assert.ok(
    between(resolved, 'imported', 'started').some((r) => r.specifier === 'ioredis'),
    'ioredis resolved while the host started',
  );
});
