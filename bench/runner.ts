/** Runs scenarios (each possibly several times), prints a JSON line and a table for each, and writes the run file. */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fanOut, push, pushHttp } from './scenarios/push-scenarios.js';
import { httpRpc, rpc, sessions } from './scenarios/other-scenarios.js';
import { history } from './scenarios/history-scenario.js';
import { directory } from './scenarios/directory-scenario.js';
import { registry } from './scenarios/registry-scenario.js';
import { cluster } from './scenarios/cluster-scenario.js';
import { hops } from './scenarios/hops-scenario.js';
import { requestReply } from './scenarios/request-reply-scenario.js';
import type { BenchOptions } from './lib/options.js';
import { RedisWatch } from './lib/redis.js';
import { evaluateTargets, machineInfo, mergeRuns, scenarioTable, targetsTable, type Row, type ScenarioResult, type Target } from './lib/result.js';

type Scenario = (o: BenchOptions, redis: RedisWatch, log: (s: string) => void) => Promise<Row[]>;

export const SCENARIOS: Record<string, Scenario> = {
  push,
  'push-http': pushHttp,
  'http-rpc': httpRpc,
  rpc,
  sessions,
  'fan-out': fanOut,
  'request-reply': requestReply,
  history,
  directory,
  registry,
  cluster,
  hops,
};

/** Scenarios run-all leaves out unless named (cluster: minutes, and a Redis Cluster of its own). */
export const ON_REQUEST = new Set(['cluster', 'registry', 'hops']);

export const log = (s: string): void => {
  process.stderr.write(`${s}\n`);
};

/** Which targets a scenario's figures decide. */
const TARGETS_OF: Record<string, string[]> = {
  push: ['push-vs-socketio', 'push-vs-raw-ws', 'push-p99', 'push-cpu', 'nothing-lost'],
  'push-http': ['nothing-lost'],
  'http-rpc': ['http-rpc-vs-raw', 'http-rpc-vs-moleculer-published', 'http-rpc-vs-moleculer'],
  sessions: ['gateway-rss', 'gateway-heap', 'host-heap'],
  'fan-out': ['nothing-lost'],
  'request-reply': [],
  rpc: [],
  history: ['history-on-vs-off', 'nothing-lost'],
  directory: [],
  registry: [],
  hops: [],
  cluster: ['nothing-lost'],
};

export async function runScenario(name: string, o: BenchOptions, redis: RedisWatch): Promise<{ merged: ScenarioResult; perRun: ScenarioResult[] }> {
  const scenario = SCENARIOS[name];
  if (scenario === undefined) throw new Error(`unknown scenario "${name}"; one of: ${Object.keys(SCENARIOS).join(', ')}`);
  const perRun: ScenarioResult[] = [];
  for (let run = 1; run <= o.runs; run++) {
    log(`${name}: run ${run} of ${o.runs}`);
    const t0 = Date.now();
    const rows = await scenario(o, redis, log);
    perRun.push({ scenario: name, rows, seconds: (Date.now() - t0) / 1000, runs: 1 });
  }
  return { merged: mergeRuns(perRun), perRun };
}

/** One JSON line, then the table (and the targets this scenario decides). */
export function printScenario(result: ScenarioResult, o: BenchOptions): Target[] {
  const ids = TARGETS_OF[result.scenario] ?? [];
  const targets = evaluateTargets([result]).filter((t) => ids.includes(t.id) && t.status !== 'n/a');
  console.log(JSON.stringify({ bench: 'weft', scenario: result.scenario, runs: result.runs, options: o, rows: result.rows, targets }));
  console.log(scenarioTable(result));
  if (targets.length > 0) console.log(targetsTable(targets));
  console.log('');
  return targets;
}

/** Writes <outDir>/<timestamp>.json with everything a RESULTS.md needs. */
export function writeRunFile(
  o: BenchOptions,
  merged: ScenarioResult[],
  perRun: ScenarioResult[][],
  targets: Target[],
  startedAt: Date,
): string | undefined {
  if (o.outDir === '') return undefined;
  mkdirSync(o.outDir, { recursive: true });
  const file = path.join(o.outDir, `${startedAt.toISOString().replace(/[:.]/g, '-')}.json`);
  writeFileSync(
    file,
    JSON.stringify(
      { bench: 'weft', startedAt: startedAt.toISOString(), machine: machineInfo(), options: o, scenarios: merged, perRun, targets },
      null,
      1,
    ),
  );
  return file;
}

export async function withRedis<T>(o: BenchOptions, fn: (redis: RedisWatch) => Promise<T>): Promise<T> {
  const redis = new RedisWatch(o.redisUrl);
  try {
    await redis.start();
    const swept = await redis.sweepStale();
    if (swept > 0) log(`deleted ${swept} Redis keys left by benchmark runs killed over 30 minutes ago`);
  } catch (err) {
    throw new Error(`Redis is needed at ${o.redisUrl} (weft in Redis mode, Socket.IO's adapter): ${(err as Error).message}`);
  }
  try {
    return await fn(redis);
  } finally {
    await redis.close();
  }
}

export { targetsTable, evaluateTargets };
