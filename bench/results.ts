/**
 * Turns run files (bench/out/<timestamp>.json, written by `npm run bench`)
 * into bench/RESULTS.md: every figure the median of the runs, with each
 * run's value beside it.
 *
 *   node dist/bench/results.js [--out bench/RESULTS.md] [run.json ...]
 *
 * With no files, the two newest in bench/out are used.
 */
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { cpuText, evaluateTargets, gcText, fmt, mergeRuns, rowGroups, type ScenarioResult, type Target } from './lib/result.js';

interface RunFile {
  startedAt: string;
  machine: Record<string, unknown>;
  options: Record<string, unknown>;
  scenarios: ScenarioResult[];
  perRun: ScenarioResult[][];
}

const benchDir = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'bench');

/** Columns per scenario: metric key, label, decimals. */
const COLUMNS: Record<string, [string, string, number][]> = {
  push: [
    ['pushesPerSec', 'pushes/s', 0],
    ['deliveriesPerSec', 'deliveries/s', 0],
    ['p50Ms', 'p50 ms', 2],
    ['p99Ms', 'p99 ms', 2],
    ['p999Ms', 'p99.9 ms', 2],
    ['lost', 'lost', 0],
    ['cpuUsPerDelivery', 'CPU µs/delivery', 0],
    ['serverGcMsPerSec', 'server GC ms/s', 1],
    ['gcLongestMs', 'longest GC ms', 1],
  ],
  'fan-out': [
    ['pushesPerSec', 'pushes/s', 0],
    ['deliveriesPerSec', 'deliveries/s', 0],
    ['p50Ms', 'p50 ms', 2],
    ['p99Ms', 'p99 ms', 2],
    ['lost', 'lost', 0],
    ['cpuUsPerDelivery', 'CPU µs/delivery', 0],
  ],
  'http-rpc': [
    ['requestsPerSec', 'req/s', 0],
    ['p50Ms', 'p50 ms', 2],
    ['p99Ms', 'p99 ms', 2],
    ['errors', 'errors', 0],
  ],
  rpc: [
    ['callsPerSec', 'calls/s', 0],
    ['p50Ms', 'p50 ms', 3],
    ['p99Ms', 'p99 ms', 3],
    ['errors', 'errors', 0],
  ],
  'request-reply': [
    ['callsPerSec', 'calls/s', 0],
    ['p50Ms', 'p50 ms', 2],
    ['p99Ms', 'p99 ms', 2],
    ['p999Ms', 'p99.9 ms', 2],
    ['errors', 'errors', 0],
  ],
  hops: [
    ['p50Ms', 'p50 ms', 2],
    ['p99Ms', 'p99 ms', 2],
    ['samples', 'samples', 0],
    ['deliveriesPerSec', 'deliveries/s', 0],
    ['cpuUsPerDelivery', 'CPU µs/delivery', 0],
  ],
  sessions: [
    ['sessions', 'sessions', 0],
    ['connectsPerSec', 'connects/s', 0],
    ['gatewayBytesPerSession', 'gateway RSS B/session', 0],
    ['gatewayHeapBytesPerSession', 'gateway heap B/session', 0],
    ['hostBytesPerSession', 'host RSS B/session', 0],
    ['hostHeapBytesPerSession', 'host heap B/session', 0],
    ['serverBytesPerSession', 'raw server RSS B/session', 0],
    ['serverHeapBytesPerSession', 'raw server heap B/session', 0],
    ['redisBytesPerSession', 'Redis B/session', 0],
  ],
};
COLUMNS['history'] = [
  ['pushesPerSec', 'pushes/s', 0],
  ['deliveriesPerSec', 'deliveries/s', 0],
  ['deliveriesVsOff', 'x of history off', 2],
  ['p50Ms', 'p50 ms', 2],
  ['p99Ms', 'p99 ms', 2],
  ['lost', 'lost', 0],
  ['cpuUsPerDelivery', 'CPU µs/delivery', 0],
  ['welcomeMs', 'resume: to welcome ms', 2],
  ['resumeMs', 'resume: to last replayed ms', 2],
  ['historyBytesPerBusinessId', 'Redis B/businessId', 0],
  ['streamBytesPerBusinessId', '(stream)', 0],
  ['metaBytesPerBusinessId', '(meta)', 0],
];
COLUMNS['push-http'] = [...COLUMNS['push']!.slice(0, 5), ['httpP99Ms', 'HTTP p99 ms', 2], ...COLUMNS['push']!.slice(5)];

/** The workload of each scenario, from the options of the run. */
function describe(scenario: string, o: Record<string, unknown>): string {
  const n = (k: string): string => Number(o[k]).toLocaleString('en-US');
  switch (scenario) {
    case 'push':
      return `Two gateways (the two sessions of each businessId on different ones), one WebSocket host, a pusher through the typed proxy, bare ws clients unless the row says weft/client; extra layouts labelled. ${n('sessions')} sessions, ${n('businessIds')} businessIds, ${n('payloadBytes')}-byte payloads; \`max\`: ${n('durationS')} s with at most ${n('historyWindow')} pushes in flight; \`max-10k\`: the same with ${n('window')}; \`rate\`: ${n('rate')} pushes/s for ${n('durationS')} s.`;
    case 'push-http':
      return `${n('sessions')} sessions, ${n('businessIds')} businessIds; \`max\`: ${n('pushConnections')} keep-alive connections, one request in flight each, ${n('durationS')} s; \`rate\`: ${n('rate')} pushes/s.`;
    case 'http-rpc':
      return `${String(o['httpTool'])}, ${n('httpConnections')} connections, ${n('warmupS')} s warm-up, ${n('durationS')} s measured. weft: the gateway and the host in separate processes (RPC over a link, registry in Redis); moleculer-web (0.10, Moleculer 0.14): the API gateway and the service in separate processes over NATS (its published remote benchmark's layout, and weft's), and in one process (the layout of its published 14,427 req/s); raw: node:http answering the same JSON itself.`;
    case 'rpc':
      return `${n('durationS')} s one call at a time, then ${n('durationS')} s with 100 in flight.`;
    case 'sessions':
      return `${n('idleSessions')} idle sessions; memory once settled (four full GCs 250 ms apart), before and after.`;
    case 'fan-out':
      return `${n('fanout')} sessions on one businessId, at most ${n('fanoutWindow')} pushes in flight, ${n('durationS')} s.`;
    case 'request-reply':
      return `200 sessions with one call in flight each, ${n('durationS')} s: weft/client \`call('ping')\` through two gateways to the host's handler; Socket.IO \`emitWithAck\` (two servers); a raw ws echo server.`;
    case 'hops':
      return `Two gateways, one WebSocket host with history, a pusher through the typed proxy, ${n('sessions')} bare ws sessions; one push in 10 traced through weft's spans (bench/lib/hop-tracer.ts). \`rate\`: ${n('rate')} pushes/s; \`max\`: ${n('historyWindow')} in flight; then CPU µs per delivery per process.`;
    case 'history':
      return `Two gateways, one WebSocket host, a pusher; ${n('sessions')} sessions, ${n('businessIds')} businessIds (each businessId's sessions split over both gateways), ${n('payloadBytes')}-byte payloads; \`max\`: ${n('durationS')} s with at most ${n('historyWindow')} pushes in flight; \`rate\`: ${n('rate')} pushes/s. Resume: median of ${n('reconnects')} reconnects to the other gateway. Memory: Redis MEMORY USAGE of the stream and meta keys.`;
    default:
      return '';
  }
}

function cell(values: number[] | undefined, medianValue: number | undefined, decimals: number): string {
  const m = fmt(medianValue, decimals);
  if (values === undefined || values.length < 2) return m;
  return `${m} (${values.map((v) => fmt(v, decimals)).join(' / ')})`;
}

function targetValue(t: Target | undefined): string {
  if (t === undefined || Number.isNaN(t.value)) return '-';
  return `${t.value.toFixed(t.unit === 'messages' || t.unit === 'B' ? 0 : 2)} ${t.unit}`;
}

function main(): void {
  const argv = process.argv.slice(2);
  let out = path.join(benchDir, 'RESULTS.md');
  const files: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--out') out = path.resolve(argv[++i] ?? out);
    else files.push(path.resolve(argv[i]!));
  }
  if (files.length === 0) {
    const dir = path.join(benchDir, 'out');
    const found = readdirSync(dir)
      .filter((f) => f.endsWith('.json'))
      .sort()
      .slice(-2);
    if (found.length === 0) throw new Error(`no run files in ${dir}; run \`npm run bench\` first`);
    files.push(...found.map((f) => path.join(dir, f)));
  }
  const runs = files.map((f) => JSON.parse(readFileSync(f, 'utf8')) as RunFile);
  // Medians only mean something over runs of the same workload.
  const workload = (r: RunFile): string => {
    const { outDir: _out, systems: _systems, ...rest } = r.options;
    return JSON.stringify(rest);
  };
  const mismatch = runs.some((r) => workload(r) !== workload(runs[0]!));
  if (mismatch) console.error('warning: the run files were made with different options; their medians mix workloads');
  const names = [...new Set(runs.flatMap((r) => r.scenarios.map((s) => s.scenario)))];
  // Every single run of every scenario, from every file.
  const merged = names.map((name) => mergeRuns(runs.flatMap((r) => r.perRun.flat().filter((s) => s.scenario === name))));
  const count = merged[0]?.runs ?? 0;

  const perRunTargets = runs.map((r) => evaluateTargets(r.scenarios));
  const medianTargets = evaluateTargets(merged);
  const lines: string[] = [];
  const m = runs[0]!.machine;
  lines.push('# weft benchmark results', '');
  lines.push(
    `Produced by \`npm run bench\` run ${runs.length} times, then \`npm run bench:results -- ${files.map((f) => path.relative(process.cwd(), f)).join(' ')}\`.`,
    `Each figure is the median of ${count} runs; the values of each run follow in brackets, in order. How the figures are measured: bench/README.md.`,
    '',
  );
  if (mismatch) lines.push('**Warning: these runs used different options (see the run files); medians mix workloads.**', '');
  lines.push('## Machine', '');
  lines.push(`- ${String(m['cpus'])} CPUs (${String(m['cpuModel'])}), ${String(m['memoryGiB'])} GiB, Linux ${String(m['kernel'])}`);
  const moleculer = m['moleculer'] === undefined ? '' : `, moleculer ${m['moleculer'] as string}, moleculer-web ${m['moleculerWeb'] as string}`;
  lines.push(`- Node ${String(m['node'])}, ws ${String(m['ws'])}, socket.io ${String(m['socketio'])}${moleculer}`);
  lines.push(`- Runs started: ${runs.map((r) => `${r.startedAt} (load average ${JSON.stringify(r.machine['load'])})`).join('; ')}`);
  lines.push('- Servers, clients and generators all share the same cores; CPU seconds per process are listed with each row.', '');

  lines.push('## Targets', '');
  lines.push(`| target | want | median | ${runs.map((_, i) => `run ${i + 1}`).join(' | ')} | result |`);
  lines.push(`|---|---|---|${runs.map(() => '---|').join('')}---|`);
  for (const t of medianTargets) {
    const each = perRunTargets.map((ts) => ts.find((x) => x.id === t.id));
    lines.push(
      `| ${t.what} | ${t.want} | ${targetValue(t)} | ${each.map((x) => `${targetValue(x)} ${x?.status ?? ''}`).join(' | ')} | **${t.status}** |`,
    );
  }
  lines.push('');

  for (const s of merged) {
    const cols = COLUMNS[s.scenario] ?? [];
    lines.push(`## ${s.scenario}`, '', describe(s.scenario, runs[0]!.options), '');
    // One table per kind of row (history: pushes, resume, memory).
    for (const [i, rows] of rowGroups(s.rows).entries()) {
      const present = cols.filter(([key]) => rows.some((r) => r.metrics[key] !== undefined));
      const withCpu = rows.some((r) => Object.keys(r.cpu).length > 0);
      const withGc = rows.some((r) => r.gc !== undefined);
      if (i > 0) lines.push('');
      const textHeads = `${withCpu ? ' CPU s per process (median) |' : ''}${withGc ? ' GC pause ms/s per process (median) |' : ''}`;
      lines.push(`| system | phase | ${present.map(([, label]) => label).join(' | ')} |${textHeads}`);
      lines.push(`|---|---|${present.map(() => '---:|').join('')}${withCpu ? '---|' : ''}${withGc ? '---|' : ''}`);
      for (const r of rows) {
        const cpu = withCpu ? ` ${cpuText(r.cpu)} |` : '';
        const gc = withGc ? ` ${gcText(r.gc) || '-'} |` : '';
        lines.push(`| ${r.system} | ${r.phase} | ${present.map(([key, , d]) => cell(r.values?.[key], r.metrics[key], d)).join(' | ')} |${cpu}${gc}`);
      }
    }
    const notes = s.rows.flatMap((r) => r.notes.map((n) => `- ${r.system} ${r.phase}: ${n}`));
    if (notes.length > 0) lines.push('', ...notes);
    lines.push('');
  }
  // The analysis (what was profiled and changed, what stands in the way) is written by hand.
  const analysis = path.join(benchDir, 'ANALYSIS.md');
  if (existsSync(analysis)) lines.push(readFileSync(analysis, 'utf8'));
  writeFileSync(out, lines.join('\n'));
  console.log(`wrote ${path.relative(process.cwd(), out)} from ${files.length} run files (${count} runs per scenario)`);
}

try {
  main();
} catch (err) {
  console.error(`results failed: ${(err as Error).message}`);
  process.exit(1);
}
