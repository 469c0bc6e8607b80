/**
 * Every scenario, one after another, each with its baselines:
 * `npm run bench` (`node dist/bench/run-all.js [options]`). Prints one JSON
 * line and a table per scenario, then the targets and a summary JSON line,
 * and writes bench/out/<timestamp>.json (see bench/README.md).
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from './lib/options.js';
import { ON_REQUEST, SCENARIOS, evaluateTargets, log, printScenario, runScenario, targetsTable, withRedis, writeRunFile } from './runner.js';
import type { ScenarioResult } from './lib/result.js';

const benchDir = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'bench');

try {
  const { options, positional } = parseArgs(process.argv.slice(2), { outDir: path.join(benchDir, 'out') });
  if (options.outDir !== '') options.outDir = path.resolve(options.outDir);
  const names = positional.length > 0 ? positional : Object.keys(SCENARIOS).filter((n) => !ON_REQUEST.has(n));
  for (const n of names) if (SCENARIOS[n] === undefined) throw new Error(`unknown scenario "${n}"`);
  const startedAt = new Date();
  await withRedis(options, async (redis) => {
    const merged: ScenarioResult[] = [];
    const perRun: ScenarioResult[][] = [];
    for (const name of names) {
      const r = await runScenario(name, options, redis);
      merged.push(r.merged);
      perRun.push(r.perRun);
      printScenario(r.merged, options);
    }
    const targets = evaluateTargets(merged);
    console.log(targetsTable(targets));
    const seconds = Math.round((Date.now() - startedAt.getTime()) / 1000);
    console.log(JSON.stringify({ bench: 'weft', summary: true, seconds, scenarios: names, targets }));
    const file = writeRunFile(options, merged, perRun, targets, startedAt);
    if (file !== undefined) log(`wrote ${path.relative(process.cwd(), file)} (${seconds} s in all)`);
  });
  process.exit(0);
} catch (err) {
  console.error(`bench failed: ${(err as Error).stack ?? String(err)}`);
  process.exit(1);
}
