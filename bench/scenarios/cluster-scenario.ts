/**
 * cluster: the 3 x 3 cluster, measured (issue 12, item 5). Three gateways,
 * three WebSocket hosts (BenchWsService, history on), a pusher, on one Redis
 * and on a three-master Redis Cluster (`--engine redis|cluster`, both by
 * default). `--sessions` sessions, 2 per businessId by default, over at least
 * 4 client processes (at most 5,000 sessions each), each binding its sockets
 * to its own source address (127.0.0.1, 127.0.0.2, ...).
 *
 * - Scaling: the sessions on 1, then 2, then 3 gateways (where there are 2 or
 *   more, the two sessions of a businessId on different ones), deliveries/s
 *   with at most `--history-window` pushes in flight; the link frames each
 *   gateway received (docs/metrics.md): only gateways holding a session of a
 *   businessId get its pushes.
 * - On 3 gateways: p50/p99 at `--rate` pushes/s, then RSS and heap after GC
 *   of every process.
 * - Kill: fresh processes, weft/client sessions that reconnect and resume,
 *   pushes at `--rate` with the not-idempotent pushOnce; SIGKILL a gateway
 *   (its sessions reconnect to another), a host (a new one starts), the
 *   pusher (a new one takes over the load), `--duration` s apart. Then every
 *   push answered with reached >= 1 must be at every session of its
 *   businessId exactly once; recovery times, and the figures before and
 *   after.
 */
import { randomBytes } from 'node:crypto';
import { startEngine, type RedisEngine } from '../../test/fixtures/redis-engines.js';
import { ClientGroup, type SessionSpec, type TrackedRecord } from '../lib/clients.js';
import { nowUs, sleep } from '../lib/clock.js';
import { Histogram } from '../lib/histogram.js';
import { wants, type BenchOptions } from '../lib/options.js';
import { ProcGroup, onInterrupt, rssOf, type Proc } from '../lib/procs.js';
import { uniqueKey, type RedisWatch } from '../lib/redis.js';
import type { Row } from '../lib/result.js';
import { WS_PATH, businessIdList, pushPhase, specFor, waitForService, type PushSystem } from '../lib/stacks.js';
import { perPushOf } from './push-scenarios.js';

const GATEWAYS = 3;
const HOSTS = 3;
/** Sessions one client process holds at most (a process may have 20,000 open files). */
const SESSIONS_PER_CLIENT_PROC = 5000;
/** Sessions one gateway holds at most in the scaling steps (the same limit, less its links and Redis connections). */
const GATEWAY_MAX_SESSIONS = 18_000;
/** The kill phase's node settings: a node killed leaves the others' views in about 2 s (as the chaos test). */
const FAST_EXPIRY = { ttlMs: 1500, heartbeatMs: 500 };
/** A window counts as recovered when its deliveries reach this share of the rate before the faults. */
const RECOVERED_SHARE = 0.9;

type Engine = 'redis' | 'cluster';
const LABEL: Record<Engine, string> = { redis: 'weft, redis', cluster: 'weft, redis cluster' };

interface Nodes {
  group: ProcGroup;
  gateways: Proc[];
  hosts: Proc[];
  pusher: Proc;
  ports: number[];
  common: Record<string, unknown>;
  close(): Promise<void>;
}

/** Three gateways, three WebSocket hosts and a pusher on `redisUrl`, a fresh prefix. */
async function startNodes(o: BenchOptions, redisUrl: string, redis: RedisWatch | undefined, extra: Record<string, unknown>): Promise<Nodes> {
  const group = new ProcGroup();
  const prefix = uniqueKey('weft-bench');
  const common = { redisUrl, prefix, secret: randomBytes(16).toString('hex'), ...extra };
  const forget = onInterrupt(() => redis?.deletePrefix(prefix) ?? Promise.resolve());
  const close = async (): Promise<void> => {
    await group.stopAll();
    await redis?.deletePrefix(prefix);
    forget();
  };
  try {
    const gateways = await Promise.all(
      Array.from({ length: GATEWAYS }, (_, i) =>
        group.start(`gateway-${i + 1}`, 'weft-node', { ...common, role: 'gateway', maxBufferedBytes: 16 * 1024 * 1024 }),
      ),
    );
    const hosts = await Promise.all(
      Array.from({ length: HOSTS }, (_, i) =>
        group.start(`ws-host-${i + 1}`, 'weft-node', { ...common, role: 'ws-host', maxConcurrentCalls: o.hostMaxCalls }),
      ),
    );
    const ports = gateways.map((g) => g.info['port'] as number);
    for (const port of ports) await waitForService(port, 'IBenchWsAppService');
    const pusher = await group.start('pusher', 'weft-node', { ...common, role: 'pusher' });
    return { group, gateways, hosts, pusher, ports, common, close };
  } catch (err) {
    await close();
    throw err;
  }
}

/** Kills `proc` outright and forgets it (the group's check and CPU figures leave it out). */
async function sigkill(group: ProcGroup, proc: Proc): Promise<void> {
  drop(group, proc);
  if (proc.exited !== undefined) return;
  const gone = new Promise<void>((r) => proc.child.once('exit', () => r()));
  proc.child.kill('SIGKILL');
  await gone;
}

function drop(group: ProcGroup, proc: Proc): void {
  const i = group.procs.indexOf(proc);
  if (i >= 0) group.procs.splice(i, 1);
}

async function stopClients(group: ProcGroup, clients: ClientGroup): Promise<void> {
  await Promise.all(clients.procs.map((p) => p.stop()));
  for (const p of clients.procs) drop(group, p);
}

function clientProcs(o: BenchOptions): number {
  return Math.max(4, o.clientProcs, Math.ceil(o.sessions / SESSIONS_PER_CLIENT_PROC));
}

/**
 * Session i: businessId b = i mod businessIds, its k-th session (k = floor(i / businessIds)),
 * on gateway (b + k) mod `used`, so the sessions of a businessId are on different gateways
 * when there are as many gateways. `ports`: where a reconnect goes when its gateway is down,
 * a gateway holding no other session of the businessId first.
 */
function plan(o: BenchOptions, ports: number[], used: number, weftClient: boolean): (SessionSpec & { ports: number[] })[] {
  return Array.from({ length: o.sessions }, (_, i) => {
    const b = i % o.businessIds;
    const k = Math.floor(i / o.businessIds);
    const g = (b + k) % used;
    const businessId = `b${b}`;
    const spare = (b + perPushOf(o.sessions, o.businessIds)) % used;
    const others = ports.map((_, j) => j).filter((j) => j !== g && j < used);
    others.sort((x, y) => Number(y === spare) - Number(x === spare));
    const base = `ws://127.0.0.1:${ports[g]!}${WS_PATH}`;
    return { url: weftClient ? base : `${base}?businessId=${businessId}`, businessId, ports: [g, ...others].map((j) => ports[j]!) };
  });
}

/** Counters from a gateway's GET /metrics. */
async function scrape(port: number): Promise<{ framesIn: number; deliveries: number }> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const value = (re: RegExp): number => Number(re.exec(text)?.[1] ?? Number.NaN);
  return { framesIn: value(/^weft_link_frames_in_total (\S+)$/m), deliveries: value(/^weft_deliveries_total\{kind="live"\} (\S+)$/m) };
}

async function waitAtMost(what: string, probe: () => Promise<number>, want: number, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = -1;
  while (Date.now() < deadline) {
    last = await probe();
    if (last <= want) return;
    await sleep(100);
  }
  throw new Error(`${what}: still ${last}, want at most ${want}`);
}

/**
 * Scaling (1, 2, 3 gateways), then on 3 the fixed rate, memory and the kill phase, on one set of
 * nodes. The clients are weft/client sessions that reconnect (the kill phase needs them; the
 * figures of every step are of the same client).
 */
async function engineRows(o0: BenchOptions, engine: Engine, url: string, redis: RedisWatch | undefined, log: (s: string) => void): Promise<Row[]> {
  const nodes = await startNodes(o0, url, redis, FAST_EXPIRY);
  const rows: Row[] = [];
  const perPush = perPushOf(o0.sessions, o0.businessIds);
  const name = LABEL[engine];
  const first = wants(o0, 'scaling') ? 1 : GATEWAYS;
  try {
    const count = (): Promise<number> => nodes.hosts[0]!.call<number>('count');
    for (let used = first; used <= GATEWAYS; used++) {
      await waitAtMost('sessions left from the last step', count, 0);
      // A process may hold 20,000 open files: a step holds at most GATEWAY_MAX_SESSIONS per gateway.
      const stepSessions = Math.min(o0.sessions, GATEWAY_MAX_SESSIONS * used);
      const o: BenchOptions = { ...o0, sessions: stepSessions, businessIds: Math.floor((stepSessions * o0.businessIds) / o0.sessions) };
      const clients = await ClientGroup.start(nodes.group, 'weft', clientProcs(o), true);
      try {
        const t0 = Date.now();
        await clients.connect(plan(o, nodes.ports, used, true), 100, { track: true });
        await nodes.pusher.call('waitSessions', { sessions: o.sessions, timeoutMs: 60_000 });
        log(`  ${name}: ${o.sessions} sessions on ${used} gateway${used === 1 ? '' : 's'} in ${Date.now() - t0} ms`);
        const system: PushSystem = {
          name,
          group: nodes.group,
          clients,
          generator: nodes.pusher,
          command: 'generate',
          argsFor: (spec) => spec,
          feedback: false,
          close: () => Promise.resolve(),
        };
        if (used === first) {
          // Not counted: the processes' JIT and connection pools warm up.
          log(`  ${name}: warm-up for ${o.warmupS} s`);
          await pushPhase(
            system,
            redis,
            'warm-up',
            { ...specFor(o, 'max', o.businessIds, perPush, o.historyWindow), durationMs: o.warmupS * 1000 },
            o,
          );
        }
        const phases: { phase: string; mode: 'max' | 'rate' }[] = [{ phase: `max, ${used} gw`, mode: 'max' }];
        if (used === GATEWAYS) phases.push({ phase: `rate, ${used} gw`, mode: 'rate' });
        for (const { phase, mode } of phases) {
          const before = await Promise.all(nodes.ports.map(scrape));
          log(`  ${name}: ${phase} for ${o.durationS} s`);
          const row = await pushPhase(system, redis, phase, specFor(o, mode, o.businessIds, perPush, o.historyWindow), o);
          const after = await Promise.all(nodes.ports.map(scrape));
          row.metrics['sessions'] = o.sessions;
          after.forEach((a, i) => {
            row.metrics[`gw${i + 1}Frames`] = a.framesIn - before[i]!.framesIn;
          });
          row.notes.push(`deliveries per gateway (their /metrics): ${after.map((a, i) => a.deliveries - before[i]!.deliveries).join(' / ')}`);
          rows.push(row);
        }
        if (used === GATEWAYS) {
          rows.push(await memoryRow(name, nodes, clients, o));
          if (wants(o, 'kill')) rows.push(...(await killRows(o, name, nodes, clients, log)));
        }
      } finally {
        await stopClients(nodes.group, clients);
      }
    }
    const one = rows.find((r) => r.phase === 'max, 1 gw')?.metrics['deliveriesPerSec'];
    for (const r of rows) {
      if (!r.phase.startsWith('max') || one === undefined) continue;
      r.metrics['deliveriesVs1'] = Math.round(((r.metrics['deliveriesPerSec'] ?? Number.NaN) / one) * 1000) / 1000;
    }
  } finally {
    await nodes.close();
  }
  return rows;
}

const MIB = 2 ** 20;

/** RSS and heap after GC of each process, averaged per role; each process in a note. */
async function memoryRow(name: string, nodes: Nodes, clients: ClientGroup, o: BenchOptions): Promise<Row> {
  const roles: [string, Proc[]][] = [
    ['gateway', nodes.gateways],
    ['host', nodes.hosts],
    ['pusher', [nodes.pusher]],
    ['client', clients.procs],
  ];
  const metrics: Record<string, number> = { sessions: o.sessions };
  const each: string[] = [];
  for (const [role, procs] of roles) {
    const figures = await Promise.all(procs.map(async (p) => ({ rss: rssOf(p.pid), heap: (await p.call<NodeJS.MemoryUsage>('mem')).heapUsed })));
    const mean = (xs: number[]): number => Math.round((xs.reduce((a, b) => a + b, 0) / xs.length / MIB) * 10) / 10;
    metrics[`${role}RssMiB`] = mean(figures.map((f) => f.rss));
    metrics[`${role}HeapMiB`] = mean(figures.map((f) => f.heap));
    procs.forEach((p, i) => each.push(`${p.name} ${(figures[i]!.rss / MIB).toFixed(0)}/${(figures[i]!.heap / MIB).toFixed(0)}`));
  }
  return { system: name, phase: 'memory, 3 gw', metrics, cpu: {}, notes: [`RSS/heap MiB per process: ${each.join(', ')}`] };
}

// ---------------------------------------------------------------- kill

/** A push as the pusher answered it: id, businessId, reached (or the error code), when it started. */
type Answer = [id: string, businessId: string, outcome: number | string, startUs: number];

interface Fault {
  name: string;
  us: number;
  /** When every session was open again (µs), for faults that drop sessions. */
  allBackUs: number | undefined;
}

/** Deliveries by receive time, as a sorted list of [recvUs, latencyUs]. */
function timeline(records: TrackedRecord[]): [number, number][] {
  const out: [number, number][] = [];
  for (const r of records) for (let i = 0; i < r.recvUs.length; i++) out.push([r.recvUs[i]!, r.recvUs[i]! - r.sentUs[i]!]);
  return out.sort((a, b) => a[0] - b[0]);
}

function windowFigures(events: [number, number][], fromUs: number, toUs: number): { deliveriesPerSec: number; p50Ms: number; p99Ms: number } {
  const h = new Histogram();
  for (const [t, lat] of events) if (t >= fromUs && t < toUs) h.record(lat);
  const s = h.summaryMs();
  return { deliveriesPerSec: Math.round(h.total / ((toUs - fromUs) / 1e6)), p50Ms: s.p50Ms, p99Ms: s.p99Ms };
}

/**
 * ms from `fault` to the start of the first 1 s window (in 100 ms steps) whose deliveries reach
 * RECOVERED_SHARE of the rate before the faults and whose p99 is at most 3x that before (and 5 ms more).
 */
function recoveryMs(events: [number, number][], fault: number, until: number, base: { deliveriesPerSec: number; p99Ms: number }): number {
  for (let w = fault; w + 1e6 <= until; w += 100_000) {
    const f = windowFigures(events, w, w + 1e6);
    if (f.deliveriesPerSec >= RECOVERED_SHARE * base.deliveriesPerSec && f.p99Ms <= 3 * base.p99Ms + 5) return Math.round((w - fault) / 1000);
  }
  return Number.NaN;
}

async function allOpen(clients: ClientGroup): Promise<number> {
  return (await Promise.all(clients.procs.map((p) => p.call<number>('openTracked')))).reduce((a, b) => a + b, 0);
}

/** Waits (at most 30 s) until every tracked session is open again; when that was, in µs. */
async function waitAllBack(clients: ClientGroup, sessions: number, closesWithinMs: number): Promise<number | undefined> {
  // The sessions the fault closes are closed by then (a gateway's at once; a host's when its gateways see its links drop).
  await sleep(closesWithinMs);
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    if ((await allOpen(clients)) >= sessions) return nowUs();
    await sleep(50);
  }
  return undefined;
}

/** After the load: no delivery for this long means nothing more is on the way. */
const QUIET_MS = 5000;
/** What the harness used to wait after the load (µs): deliveries after it are counted as late. */
const OLD_WAIT_US = 3_000_000;
const DRAIN_MAX_MS = 30_000;

/** Waits until the tracked sessions got no push for QUIET_MS (at most DRAIN_MAX_MS); when the last came, in µs. */
async function waitQuiet(clients: ClientGroup): Promise<number> {
  const count = async (): Promise<number> => (await Promise.all(clients.procs.map((p) => p.call<number>('trackedCount')))).reduce((a, b) => a + b, 0);
  const deadline = Date.now() + DRAIN_MAX_MS;
  let last = await count();
  let lastChangeUs = nowUs();
  while (Date.now() < deadline && nowUs() - lastChangeUs < QUIET_MS * 1000) {
    await sleep(200);
    const n = await count();
    if (n !== last) [last, lastChangeUs] = [n, nowUs()];
  }
  return lastChangeUs;
}

/** The kill phase, on the nodes and sessions of the 3-gateway step. */
async function killRows(o: BenchOptions, name: string, nodes: Nodes, clients: ClientGroup, log: (s: string) => void): Promise<Row[]> {
  const { group } = nodes;
  const settleMs = o.durationS * 1000;
  const bids = businessIdList(o.businessIds);
  const answers: Answer[] = [];
  const faults: Fault[] = [];
  let pushers = 0;
  const startLoad = (pusher: Proc): Promise<unknown> => {
    pusher.on('answers', (batch) => answers.push(...(batch as Answer[])));
    const tag = String.fromCharCode(97 + pushers++);
    return pusher
      .call('load', { rate: o.rate, bids, window: o.historyWindow * 10, tag, payloadBytes: o.payloadBytes }, 600_000)
      .catch(() => undefined);
  };
  await Promise.all(clients.procs.map((p) => p.call('trackedReset')));
  log(`  ${name}: kill: ${o.rate} pushes/s with pushOnce, a fault every ${o.durationS} s`);
  const loadStartUs = nowUs();
  let load = startLoad(nodes.pusher);
  await sleep(settleMs);

  const gateway = nodes.gateways[0]!;
  await Promise.all(clients.procs.map((p) => p.call('gatewayDown', { port: gateway.info['port'] })));
  const gwFault: Fault = { name: 'gateway SIGKILL', us: nowUs(), allBackUs: undefined };
  faults.push(gwFault);
  await sigkill(group, gateway);
  gwFault.allBackUs = await waitAllBack(clients, o.sessions, 300);
  log(
    `  ${name}: gateway SIGKILL: ${gwFault.allBackUs === undefined ? 'NOT all back in 30 s' : `all back after ${Math.round((gwFault.allBackUs - gwFault.us) / 1000)} ms`}`,
  );
  await sleep(Math.max(0, settleMs - (nowUs() - gwFault.us) / 1000));

  const hostFault: Fault = { name: 'host SIGKILL', us: nowUs(), allBackUs: undefined };
  faults.push(hostFault);
  await sigkill(group, nodes.hosts[0]!);
  await group.start('ws-host-4', 'weft-node', { ...nodes.common, role: 'ws-host', maxConcurrentCalls: o.hostMaxCalls });
  hostFault.allBackUs = await waitAllBack(clients, o.sessions, 1000);
  await sleep(Math.max(0, settleMs - (nowUs() - hostFault.us) / 1000));

  const pusherFault: Fault = { name: 'pusher SIGKILL', us: nowUs(), allBackUs: undefined };
  faults.push(pusherFault);
  await sigkill(group, nodes.pusher);
  const next = await group.start('pusher-2', 'weft-node', { ...nodes.common, role: 'pusher' });
  await next.call('waitSessions', { sessions: 1, timeoutMs: 30_000 });
  load = startLoad(next);
  await sleep(settleMs);

  const stopUs = nowUs();
  await next.call('stopLoad');
  await load;
  // What is on the way arrives: wait until no delivery for QUIET_MS (at most DRAIN_MAX_MS), so a
  // late delivery is told apart from a lost one.
  const drainedUs = await waitQuiet(clients);
  const records = (await Promise.all(clients.procs.map((p) => p.call<TrackedRecord[]>('tracked', {}, 120_000)))).flat();
  const stillOpen = await allOpen(clients);
  group.check();
  const rows = analyse(name, records, answers, faults, loadStartUs, stopUs, drainedUs);
  if (stillOpen < o.sessions) rows.at(-1)!.notes.push(`at the end only ${stillOpen} of ${o.sessions} sessions were open`);
  return rows;
}

function analyse(
  name: string,
  records: TrackedRecord[],
  answers: Answer[],
  faults: Fault[],
  loadStartUs: number,
  stopUs: number,
  drainedUs: number,
): Row[] {
  const byBid = new Map<string, TrackedRecord[]>();
  for (const r of records) byBid.set(r.businessId, [...(byBid.get(r.businessId) ?? []), r]);
  const counts = new Map<TrackedRecord, Map<string, number>>();
  /** When each session first got each push (µs). */
  const firstRecv = new Map<TrackedRecord, Map<string, number>>();
  let duplicates = 0;
  let duplicatePositions = 0;
  for (const r of records) {
    const m = new Map<string, number>();
    const first = new Map<string, number>();
    r.ids.forEach((id, i) => {
      m.set(id, (m.get(id) ?? 0) + 1);
      if (!first.has(id)) first.set(id, r.recvUs[i]!);
    });
    firstRecv.set(r, first);
    for (const n of m.values()) if (n > 1) duplicates += n - 1;
    counts.set(r, m);
    const positions = r.positions.filter((p) => p !== '');
    duplicatePositions += positions.length - new Set(positions).size;
  }
  let acked = 0;
  let ackedZero = 0;
  let expected = 0;
  let missing = 0;
  const failed: Record<string, number> = {};
  const missingExamples: string[] = [];
  /** Owed deliveries that came after the 3 s the harness used to wait after the load: late, not lost. */
  let late = 0;
  let lateMaxMs = 0;
  const lateExamples: string[] = [];
  /** ms relative to the first fault, for the notes. */
  const at = (us: number): string => `${us >= faults[0]!.us ? '+' : ''}${Math.round((us - faults[0]!.us) / 1000)}`;
  /** Which period a time falls in: before the faults, or after which fault. */
  const period = (us: number): string => faults.filter((f) => f.us <= us).at(-1)?.name ?? 'before';
  const zeroIn: Record<string, number> = {};
  for (const [id, bid, outcome, startUs] of answers) {
    if (typeof outcome !== 'number') {
      const key = `${outcome} (${period(startUs)})`;
      failed[key] = (failed[key] ?? 0) + 1;
      continue;
    }
    if (outcome === 0) {
      ackedZero++;
      zeroIn[period(startUs)] = (zeroIn[period(startUs)] ?? 0) + 1;
      continue;
    }
    acked++;
    for (const r of byBid.get(bid) ?? []) {
      expected++;
      const gotUs = firstRecv.get(r)!.get(id);
      if (gotUs !== undefined && gotUs > stopUs + OLD_WAIT_US) {
        late++;
        lateMaxMs = Math.max(lateMaxMs, (gotUs - startUs) / 1000);
        if (lateExamples.length < 3) lateExamples.push(`${id} to ${bid} (pushed at ${at(startUs)} ms, got at ${at(gotUs)} ms)`);
      }
      if (gotUs === undefined) {
        missing++;
        if (missingExamples.length < 5)
          missingExamples.push(
            `${id} to ${bid} (reached ${outcome}, pushed at ${at(startUs)} ms; the session closed at [${r.closes.map(at).join(' ')}], ` +
              `opened at [${r.opens.map((op) => `${at(op.us)}${op.resumed ? ` resumed ${op.recovered ? 'recovered' : (op.reason ?? '?')}` : ''}`).join(', ')}], ` +
              `got ${r.ids.length}, the last at ${r.recvUs.length === 0 ? '-' : at(r.recvUs.at(-1)!)})`,
          );
      }
    }
  }
  const notRecovered: Record<string, number> = {};
  let resumed = 0;
  for (const r of records)
    for (const op of r.opens) {
      if (!op.resumed) continue;
      resumed++;
      if (!op.recovered) notRecovered[op.reason ?? '?'] = (notRecovered[op.reason ?? '?'] ?? 0) + 1;
    }
  const notRecoveredTotal = Object.values(notRecovered).reduce((a, b) => a + b, 0);
  const events = timeline(records);
  const first = faults[0]!;
  const base = windowFigures(events, loadStartUs + 1e6, first.us);
  const rows: Row[] = [{ system: name, phase: 'kill: before', metrics: { ...base }, cpu: {}, notes: [] }];
  faults.forEach((f, i) => {
    const end = faults[i + 1]?.us ?? stopUs;
    const dropped = records.filter((r) => r.closes.some((t) => t >= f.us && t < end)).length;
    const metrics: Record<string, number> = {
      dropped,
      recoveryMs: recoveryMs(events, f.us, end, base),
      ...(f.allBackUs === undefined || dropped === 0 ? {} : { allBackMs: Math.round((f.allBackUs - f.us) / 1000) }),
      resumes: records.reduce((s, r) => s + r.opens.filter((op) => op.resumed && op.us >= f.us && op.us < end).length, 0),
    };
    const notes = Number.isNaN(metrics['recoveryMs']!) ? [`deliveries/s did not recover to ${RECOVERED_SHARE * 100} % before the next fault`] : [];
    rows.push({ system: name, phase: `kill: ${f.name}`, metrics, cpu: {}, notes });
  });
  // After: the last fault's recovery to the stop.
  const last = faults.at(-1)!;
  const lastRecovery = rows.at(-1)!.metrics['recoveryMs']!;
  const afterFrom = Number.isNaN(lastRecovery) ? last.us + 1e6 : last.us + lastRecovery * 1000;
  rows.push({ system: name, phase: 'kill: after', metrics: { ...windowFigures(events, afterFrom, stopUs) }, cpu: {}, notes: [] });
  const failedTotal = Object.values(failed).reduce((a, b) => a + b, 0);
  const notes: string[] = [];
  if (failedTotal > 0) notes.push(`pushes that failed (not acknowledged, so not counted): ${JSON.stringify(failed)}`);
  if (missing > 0) notes.push(`missing (ms from the gateway SIGKILL), e.g. ${missingExamples.join('; ')}`);
  notes.push(
    `the last delivery came ${Math.round((drainedUs - stopUs) / 1000)} ms after the load stopped (waited for ${QUIET_MS} ms without one, ${DRAIN_MAX_MS} ms at most)`,
  );
  if (late > 0)
    notes.push(
      `late (after the load stopped + ${OLD_WAIT_US / 1000} ms, not lost): ${late}, the latest ${Math.round(lateMaxMs)} ms after its push, e.g. ${lateExamples.join('; ')}`,
    );
  if (ackedZero > 0) notes.push(`pushes that reached 0 sessions, by period: ${JSON.stringify(zeroIn)}`);
  if (notRecoveredTotal > 0) notes.push(`resumes not recovered: ${JSON.stringify(notRecovered)}`);
  const codes: Record<string, number> = {};
  for (const r of records) for (const c of r.closeCodes) codes[c] = (codes[c] ?? 0) + 1;
  if (Object.keys(codes).length > 0) notes.push(`session closes: ${JSON.stringify(codes)}`);
  if (duplicatePositions > 0) notes.push(`${duplicatePositions} positions seen twice at one session`);
  rows.push({
    system: name,
    phase: 'kill: accounting',
    metrics: {
      answeredPushes: answers.length,
      ackedPushes: acked,
      ackedZero,
      failedPushes: failedTotal,
      expected,
      lost: missing,
      late,
      duplicates,
      resumes: resumed,
      resumesNotRecovered: notRecoveredTotal,
    },
    cpu: {},
    notes,
  });
  return rows;
}

function enginesOf(o: BenchOptions): Engine[] {
  if (o.engine === undefined) return ['redis', 'cluster'];
  if (o.engine !== 'redis' && o.engine !== 'cluster') throw new Error('--engine is redis or cluster');
  return [o.engine];
}

export async function cluster(o: BenchOptions, redis: RedisWatch, log: (s: string) => void): Promise<Row[]> {
  if (perPushOf(o.sessions, o.businessIds) < 2)
    throw new Error('cluster puts 2 sessions of each businessId on different gateways: --sessions must be at least 2x --business-ids');
  const rows: Row[] = [];
  for (const engine of enginesOf(o)) {
    let started: RedisEngine | undefined;
    try {
      if (engine === 'cluster') {
        log('  starting a 3-master Redis Cluster (redis-server, temp dir)');
        started = await startEngine('cluster');
      }
      const url = started?.url ?? o.redisUrl;
      // Redis's CPU is counted on the one server only (the Cluster's three are not watched).
      const watch = started === undefined ? redis : undefined;
      {
        try {
          rows.push(...(await engineRows(o, engine, url, watch, log)));
        } catch (err) {
          rows.push({
            system: LABEL[engine],
            phase: 'failed',
            metrics: {},
            cpu: {},
            notes: [(err as Error).message.split('\n')[0]!],
          });
          log(`  ${LABEL[engine]}: FAILED ${(err as Error).stack ?? String(err)}`);
        }
      }
    } finally {
      await started?.stop();
    }
  }
  return rows;
}
