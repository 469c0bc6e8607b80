/**
 * `npm run chaos`: the chaos scenario of test/chaos.test.ts, longer (three
 * rounds of every fault by default), printing its figures. Exits 1 when a
 * rule was broken. WEFT_CHAOS_ROUNDS, WEFT_CHAOS_CLIENTS and WEFT_CHAOS_RATE
 * (pushes per second) change its size; WEFT_CHAOS_METHOD=push pushes through
 * the method that is idempotent by default (see ChaosOptions.method);
 * WEFT_CHAOS_ONLY="Redis restart empty" (comma-separated fault names) runs only those faults.
 */
import { formatReport, runChaos } from './fixtures/chaos.js';

const env = process.env;
const options = {
  clients: Number(env['WEFT_CHAOS_CLIENTS'] ?? 200),
  businessIds: 50,
  inFlight: 50,
  pushesPerSecond: Number(env['WEFT_CHAOS_RATE'] ?? 150),
  rounds: Number(env['WEFT_CHAOS_ROUNDS'] ?? 3),
  settleMs: 4000,
  backWithinMs: 15_000,
  ...(env['WEFT_CHAOS_ONLY'] === undefined ? {} : { only: env['WEFT_CHAOS_ONLY'].split(',') }),
  method: env['WEFT_CHAOS_METHOD'] === 'push' ? ('push' as const) : ('pushOnce' as const),
};
console.log(`chaos: ${JSON.stringify(options)}`);
const report = await runChaos({ ...options, log: (line) => console.log(`  ${line}`) });
console.log(formatReport(report));
process.exit(report.violations.length === 0 ? 0 : 1);
