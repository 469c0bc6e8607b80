/**
 * One scenario alone: `node dist/bench/run.js <scenario> [options]`
 * (`npm run bench:one -- push --duration 2`). Prints one JSON line and a table.
 */
import path from 'node:path';
import { USAGE, parseArgs } from './lib/options.js';
import { SCENARIOS, log, printScenario, runScenario, withRedis, writeRunFile } from './runner.js';

try {
  const { options, positional } = parseArgs(process.argv.slice(2));
  const name = positional[0];
  if (name === undefined || SCENARIOS[name] === undefined) {
    console.error(`usage: node dist/bench/run.js <${Object.keys(SCENARIOS).join('|')}> [options]\n${USAGE}`);
    process.exit(2);
  }
  if (options.outDir !== '') options.outDir = path.resolve(options.outDir);
  const startedAt = new Date();
  await withRedis(options, async (redis) => {
    const { merged, perRun } = await runScenario(name, options, redis);
    const targets = printScenario(merged, options);
    const file = writeRunFile(options, [merged], [perRun], targets, startedAt);
    if (file !== undefined) log(`wrote ${path.relative(process.cwd(), file)}`);
  });
  process.exit(0);
} catch (err) {
  console.error(`bench failed: ${(err as Error).stack ?? String(err)}`);
  process.exit(1);
}
