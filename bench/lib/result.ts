/**
 * Results: rows of figures per system and phase, medians over runs, the
 * targets as measured values with PASS/MISS, and a readable table.
 */
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';

export interface Row {
  /** weft, raw-ws-inproc, raw-ws-tcp, raw-http, socketio */
  system: string;
  /** max, rate, seq, parallel, idle, ... */
  phase: string;
  metrics: Record<string, number>;
  /** CPU seconds per process over the phase. */
  cpu: Record<string, number>;
  /** GC pause ms per second of the phase, per process (push scenarios). */
  gc?: Record<string, number>;
  notes: string[];
  /** Every run's value, when this row is a median of several runs. */
  values?: Record<string, number[]>;
}

export interface ScenarioResult {
  scenario: string;
  rows: Row[];
  seconds: number;
  runs: number;
}

export interface Target {
  id: string;
  what: string;
  want: string;
  /** The measured value or ratio; NaN when a needed figure was not measured. */
  value: number;
  unit: string;
  status: 'PASS' | 'MISS' | 'n/a';
}

/** Known metrics in table order: key, column label, decimals. */
const COLUMNS: [key: string, label: string, decimals: number][] = [
  ['sessions', 'sessions', 0],
  ['pushesPerSec', 'pushes/s', 0],
  ['deliveriesPerSec', 'deliveries/s', 0],
  ['deliveriesVsOff', 'x of off', 2],
  ['requestsPerSec', 'req/s', 0],
  ['callsPerSec', 'calls/s', 0],
  ['connectsPerSec', 'connects/s', 0],
  ['p50Ms', 'p50 ms', 2],
  ['p99Ms', 'p99 ms', 2],
  ['p999Ms', 'p99.9 ms', 2],
  ['samples', 'samples', 0],
  ['httpP99Ms', 'http p99 ms', 2],
  ['expected', 'expected', 0],
  ['lost', 'lost', 0],
  ['errors', 'errors', 0],
  ['gatewayBytesPerSession', 'gateway B/session', 0],
  ['gatewayHeapBytesPerSession', '(heap)', 0],
  ['hostBytesPerSession', 'host B/session', 0],
  ['hostHeapBytesPerSession', '(heap)', 0],
  ['serverBytesPerSession', 'server B/session', 0],
  ['serverHeapBytesPerSession', '(heap)', 0],
  ['redisBytesPerSession', 'redis B/session', 0],
  ['reconnects', 'reconnects', 0],
  ['welcomeMs', 'to welcome ms', 2],
  ['resumeMs', 'to last replayed ms', 2],
  ['resumeMaxMs', '(max)', 2],
  ['businessIds', 'businessIds', 0],
  ['historyBytesPerBusinessId', 'redis B/businessId', 0],
  ['streamBytesPerBusinessId', '(stream)', 0],
  ['metaBytesPerBusinessId', '(meta)', 0],
  ['cpuUsPerDelivery', 'CPU µs/delivery', 0],
  ['serverCpuUsPerDelivery', '(servers)', 0],
  ['serverGcMsPerSec', 'server GC ms/s', 1],
  ['gcLongestMs', 'longest GC ms', 1],
  ['nodes', 'nodes', 0],
  ['recordBytes', 'record B', 0],
  ['redisInBytesPerSec', 'redis in B/s', 0],
  ['redisOutBytesPerSec', 'redis out B/s', 0],
  ['redisCommandsPerSec', 'redis cmds/s', 0],
  ['heartbeatsPerSec', 'heartbeats/s', 1],
  ['bytesPerHeartbeat', 'B/heartbeat', 0],
  ['dueBytesPerSec', 'B/s due', 0],
  // cluster
  ['deliveriesVs1', 'x of 1 gw', 2],
  ['gw1Frames', 'gw1 frames in', 0],
  ['gw2Frames', 'gw2 frames in', 0],
  ['gw3Frames', 'gw3 frames in', 0],
  ['gatewayRssMiB', 'gateway RSS MiB', 1],
  ['gatewayHeapMiB', '(heap)', 1],
  ['hostRssMiB', 'host RSS MiB', 1],
  ['hostHeapMiB', '(heap)', 1],
  ['pusherRssMiB', 'pusher RSS MiB', 1],
  ['pusherHeapMiB', '(heap)', 1],
  ['clientRssMiB', 'client proc RSS MiB', 1],
  ['clientHeapMiB', '(heap)', 1],
  ['dropped', 'sessions dropped', 0],
  ['allBackMs', 'all back ms', 0],
  ['recoveryMs', 'recovered ms', 0],
  ['answeredPushes', 'pushes answered', 0],
  ['ackedPushes', 'reached >= 1', 0],
  ['ackedZero', 'reached 0', 0],
  ['failedPushes', 'failed', 0],
  ['duplicates', 'duplicates', 0],
  ['resumes', 'resumes', 0],
  ['resumesNotRecovered', 'not recovered', 0],
];

export function fmt(v: number | undefined, decimals = 0): string {
  if (v === undefined || Number.isNaN(v)) return '-';
  return decimals === 0 ? Math.round(v).toLocaleString('en-US') : v.toFixed(decimals);
}

function pad(s: string, n: number, right: boolean): string {
  return right ? s.padStart(n) : s.padEnd(n);
}

/** Columns from `rightFrom` up to (not including) `rightTo` are right-aligned (numbers). */
export function renderTable(header: string[], body: string[][], rightFrom = 1, rightTo = header.length): string {
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]): string =>
    cells
      .map((c, i) => pad(c, widths[i]!, i >= rightFrom && i < rightTo))
      .join('  ')
      .trimEnd();
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...body.map(line)].join('\n');
}

/** One figure per process, `name value, ...`. */
function perProcessText(values: Record<string, number> | undefined, decimals: number): string {
  return Object.entries(values ?? {})
    .map(([name, v]) => `${name} ${Number.isNaN(v) ? '-' : v.toFixed(decimals)}`)
    .join(', ');
}

/** CPU seconds per process. */
export function cpuText(cpu: Record<string, number>): string {
  return perProcessText(cpu, 2);
}

/** GC pause ms per second, per process. */
export function gcText(gc: Record<string, number> | undefined): string {
  return perProcessText(gc, 1);
}

/**
 * Consecutive rows that measure the same kind of thing (they share a metric), so a scenario with
 * rows of different kinds (history: pushes, resume, memory) prints one table for each kind.
 * A row with no metrics (a failed system) stays with the rows before it.
 */
export function rowGroups(rows: Row[]): Row[][] {
  const groups: Row[][] = [];
  for (const row of rows) {
    const group = groups[groups.length - 1];
    const keys = Object.keys(row.metrics);
    if (group !== undefined && (keys.length === 0 || keys.some((k) => group[0]!.metrics[k] !== undefined))) group.push(row);
    else groups.push([row]);
  }
  return groups;
}

/** Rows as a table: the known metrics any of them has, and CPU seconds per process in the last column unless none has them. */
function rowsTable(rows: Row[]): string[] {
  const present = COLUMNS.filter(([key]) => rows.some((r) => r.metrics[key] !== undefined));
  const withCpu = rows.some((r) => Object.keys(r.cpu).length > 0);
  const withGc = rows.some((r) => r.gc !== undefined);
  const text = [...(withCpu ? ['CPU s per process'] : []), ...(withGc ? ['GC ms/s per process'] : [])];
  const header = ['system', 'phase', ...present.map(([, label]) => label), ...text];
  const body = rows.map((r) => [
    r.system,
    r.phase,
    ...present.map(([key, , d]) => fmt(r.metrics[key], d)),
    ...(withCpu ? [cpuText(r.cpu)] : []),
    ...(withGc ? [gcText(r.gc)] : []),
  ]);
  // The CPU and GC columns are left-aligned text.
  return renderTable(header, body, 2, header.length - text.length).split('\n');
}

/** The rows of one scenario as a table (CPU seconds per process in the last column); one table per kind of row. */
export function scenarioTable(result: ScenarioResult): string {
  const tables = rowGroups(result.rows).flatMap((rows, i) => [...(i > 0 ? [''] : []), ...rowsTable(rows)]);
  const notes = result.rows.flatMap((r) => r.notes.map((n) => `  note (${r.system} ${r.phase}): ${n}`));
  const title = `== ${result.scenario} (${result.runs} run${result.runs === 1 ? '' : 's'}${result.runs > 1 ? ', medians' : ''}, ${result.seconds.toFixed(0)} s)`;
  return [title, ...tables, ...notes].join('\n');
}

export function median(values: number[]): number {
  const v = values.filter((x) => !Number.isNaN(x)).sort((a, b) => a - b);
  if (v.length === 0) return Number.NaN;
  const mid = v.length >> 1;
  return v.length % 2 === 1 ? v[mid]! : (v[mid - 1]! + v[mid]!) / 2;
}

/** One result from several runs of a scenario: every figure the median of its runs, each run's value kept. */
export function mergeRuns(runs: ScenarioResult[]): ScenarioResult {
  if (runs.length === 1) return runs[0]!;
  const first = runs[0]!;
  const rows: Row[] = first.rows.map((row) => {
    const same = runs.map((r) => r.rows.find((x) => x.system === row.system && x.phase === row.phase));
    const values: Record<string, number[]> = {};
    const metrics: Record<string, number> = {};
    // Every metric any run has: a column added later is in the later runs only.
    for (const key of new Set(same.flatMap((r) => Object.keys(r?.metrics ?? {})))) {
      values[key] = same.map((r) => r?.metrics[key] ?? Number.NaN);
      metrics[key] = median(values[key]);
    }
    const cpu: Record<string, number> = {};
    for (const name of Object.keys(row.cpu)) cpu[name] = Math.round(median(same.map((r) => r?.cpu[name] ?? Number.NaN)) * 100) / 100;
    const notes = [...new Set(same.flatMap((r, i) => (r?.notes ?? []).map((n) => `run ${i + 1}: ${n}`)))];
    // Runs made before the GC counts existed have none: the median is of the runs that do.
    const gcNames = [...new Set(same.flatMap((r) => Object.keys(r?.gc ?? {})))];
    if (gcNames.length === 0) return { system: row.system, phase: row.phase, metrics, cpu, notes, values };
    const gc: Record<string, number> = {};
    for (const name of gcNames) gc[name] = Math.round(median(same.map((r) => r?.gc?.[name] ?? Number.NaN)) * 10) / 10;
    return { system: row.system, phase: row.phase, metrics, cpu, gc, notes, values };
  });
  return { scenario: first.scenario, rows, seconds: runs.reduce((s, r) => s + r.seconds, 0), runs: runs.length };
}

function metric(results: ScenarioResult[], scenario: string, system: string, phase: string, key: string): number {
  const r = results.find((x) => x.scenario === scenario)?.rows.find((x) => x.system === system && x.phase === phase);
  return r?.metrics[key] ?? Number.NaN;
}

function target(id: string, what: string, want: string, value: number, unit: string, ok: (v: number) => boolean): Target {
  return { id, what, want, value, unit, status: Number.isNaN(value) ? 'n/a' : ok(value) ? 'PASS' : 'MISS' };
}

/**
 * The push targets for one weft layout (`weft`: two gateways, the sessions of a businessId on both, at most 500 pushes in
 * flight; or an extra layout with its id suffix and label prefix), each a ratio measured in the same run.
 */
function pushTargets(results: ScenarioResult[], system: string, idSuffix: string, label: string): Target[] {
  const deliveries = metric(results, 'push', system, 'max', 'deliveriesPerSec');
  const sioP99 = metric(results, 'push', 'socketio', 'rate', 'p99Ms');
  return [
    target(
      `push-vs-socketio${idSuffix}`,
      `${label}push deliveries/s (max), weft / Socket.IO`,
      '>= 2.00',
      deliveries / metric(results, 'push', 'socketio', 'max', 'deliveriesPerSec'),
      'x',
      (v) => v >= 2,
    ),
    target(
      `push-vs-raw-ws${idSuffix}`,
      `${label}push deliveries/s (max), weft / raw ws in-process`,
      '>= 1.00',
      deliveries / metric(results, 'push', 'raw-ws-inproc', 'max', 'deliveriesPerSec'),
      'x',
      (v) => v >= 1,
    ),
    target(
      `push-p99${idSuffix}`,
      `${label}push p99 at the fixed rate, weft / Socket.IO`,
      '<= 0.50',
      metric(results, 'push', system, 'rate', 'p99Ms') / sioP99,
      'x',
      (v) => v <= 0.5,
    ),
    target(
      `push-cpu${idSuffix}`,
      `${label}server CPU per delivery (max), weft / raw ws in-process`,
      '< 1.00',
      metric(results, 'push', system, 'max', 'serverCpuUsPerDelivery') / metric(results, 'push', 'raw-ws-inproc', 'max', 'serverCpuUsPerDelivery'),
      'x',
      (v) => v < 1,
    ),
  ];
}

/** moleculer-web's benchmarks/simple: API gateway and service in one process, i7-4770K, Windows 10. */
const MOLECULER_WEB_PUBLISHED_REQ_PER_SEC = 14_427;

/** The targets, from the scenarios that ran. */
export function evaluateTargets(results: ScenarioResult[]): Target[] {
  const httpRps = (system: string): number => metric(results, 'http-rpc', system, 'max', 'requestsPerSec');
  const targets: Target[] = [
    ...pushTargets(results, 'weft', '', ''),
    // The same with the WebSocket host inside the gateway process (one hop less).
    ...pushTargets(results, 'weft-colocated', '-colocated', 'colocated: '),
    target('http-rpc-vs-raw', 'http-rpc req/s, weft / raw node:http', '>= 0.60', httpRps('weft') / httpRps('raw-http'), 'x', (v) => v >= 0.6),
    // moleculer-web's published figure (14,427 req/s, one process, on an i7-4770K); then the same layout run here.
    target(
      'http-rpc-vs-moleculer-published',
      "http-rpc req/s, weft / moleculer-web's published 14,427",
      '>= 2.00',
      httpRps('weft') / MOLECULER_WEB_PUBLISHED_REQ_PER_SEC,
      'x',
      (v) => v >= 2,
    ),
    target(
      'http-rpc-vs-moleculer',
      'http-rpc req/s, weft / moleculer-web in one process (its published layout)',
      '>= 2.00',
      httpRps('weft') / httpRps('moleculer-web-1-process'),
      'x',
      (v) => v >= 2,
    ),
    target(
      'history-on-vs-off',
      'push deliveries/s (max), history on / history off',
      '>= 0.70',
      metric(results, 'history', 'history on', 'max', 'deliveriesPerSec') / metric(results, 'history', 'history off', 'max', 'deliveriesPerSec'),
      'x',
      (v) => v >= 0.7,
    ),
    target(
      'gateway-rss',
      'gateway RSS per idle session, weft / raw ws server',
      '<= 1.00',
      metric(results, 'sessions', 'weft', 'idle', 'gatewayBytesPerSession') / metric(results, 'sessions', 'raw-ws', 'idle', 'serverBytesPerSession'),
      'x',
      (v) => v <= 1,
    ),
    target(
      'gateway-heap',
      'gateway heap per idle session, weft / raw ws server',
      '<= 1.00',
      metric(results, 'sessions', 'weft', 'idle', 'gatewayHeapBytesPerSession') /
        metric(results, 'sessions', 'raw-ws', 'idle', 'serverHeapBytesPerSession'),
      'x',
      (v) => v <= 1,
    ),
    target(
      'host-heap',
      'host heap per idle session',
      '< 300 B',
      metric(results, 'sessions', 'weft', 'idle', 'hostHeapBytesPerSession'),
      'B',
      (v) => v < 300,
    ),
  ];
  // Nothing lost: every weft row that counts deliveries (all of history's are weft).
  const weftRows = results.flatMap((r) =>
    r.rows.filter((x) => (x.system.startsWith('weft') || r.scenario === 'history') && x.metrics['lost'] !== undefined),
  );
  const lost = weftRows.length === 0 ? Number.NaN : weftRows.reduce((s, x) => s + Math.max(0, x.metrics['lost']!), 0);
  targets.push(target('nothing-lost', `weft messages lost, all scenarios (${weftRows.length} phases)`, '= 0', lost, 'messages', (v) => v === 0));
  return targets;
}

export function targetsTable(targets: Target[]): string {
  const body = targets.map((t) => [
    t.what,
    t.want,
    Number.isNaN(t.value) ? 'not measured' : `${t.value.toFixed(t.unit === 'messages' || t.unit === 'B' ? 0 : 2)} ${t.unit}`,
    t.status,
  ]);
  return ['== targets', renderTable(['target', 'want', 'measured', 'result'], body, 99)].join('\n');
}

function versionOf(pkg: string): string {
  try {
    // From the package's entry up to its package.json: some packages (moleculer) do not export it.
    let dir = path.dirname(createRequire(import.meta.url).resolve(pkg));
    for (;;) {
      const file = path.join(dir, 'package.json');
      if (existsSync(file)) {
        const json = JSON.parse(readFileSync(file, 'utf8')) as { name?: string; version?: string };
        if (json.name === pkg && json.version !== undefined) return json.version;
      }
      const up = path.dirname(dir);
      if (up === dir) return 'unknown';
      dir = up;
    }
  } catch {
    return 'unknown';
  }
}

export function machineInfo(): Record<string, unknown> {
  return {
    cpus: os.cpus().length,
    cpuModel: os.cpus()[0]?.model ?? 'unknown',
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    kernel: os.release(),
    node: process.version,
    ws: versionOf('ws'),
    socketio: versionOf('socket.io'),
    moleculer: versionOf('moleculer'),
    moleculerWeb: versionOf('moleculer-web'),
    load: os.loadavg().map((x) => Math.round(x * 100) / 100),
  };
}
