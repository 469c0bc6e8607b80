/**
 * Chaos (issue 8, item 11): 2 gateways, 2 hosts, a private Redis and a
 * pusher in processes of their own, 200 `weft/client` sessions behind a TCP
 * balancer, a bounded push load; SIGKILL a host, SIGKILL a gateway, restart
 * Redis empty, SIGTERM a host and a gateway. The rules checked are written
 * at the top of fixtures/chaos.ts; `npm run chaos` runs a longer version
 * and prints the figures.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatReport, runChaos } from './fixtures/chaos.js';
import { redisTest } from './helpers/index.js';

test('chaos: no acknowledged push missing after resume, no duplicate, every client back within 15 s of each fault', await redisTest(), async () => {
  const report = await runChaos({
    clients: 200,
    businessIds: 50,
    inFlight: 50,
    pushesPerSecond: 100,
    rounds: 1,
    settleMs: 1000,
    backWithinMs: 15_000,
    method: 'pushOnce',
    ...(process.env['WEFT_CHAOS_LOG'] === undefined ? {} : { log: (line: string) => console.log(line) }),
  });
  const figures = formatReport(report);
  if (process.env['WEFT_CHAOS_LOG'] !== undefined) console.log(figures);
  assert.deepEqual(report.violations, [], figures);
  assert.ok(report.acknowledged > 0, figures);
  assert.ok(report.resumesRecovered > 0, figures);
  assert.equal(report.duplicates + report.missing + report.outOfOrder + report.inconsistent, 0, figures);
});
