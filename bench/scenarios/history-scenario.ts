/**
 * history: what push history costs (docs/delivery.md). The layout users run:
 * two gateways, one WebSocket host, a pusher calling the service through its
 * typed proxy, each businessId with a session on both gateways.
 *
 * - Pushes with history off and on, in the same run, the service class the
 *   only difference (`static history = false` or the default): deliveries/s
 *   with at most `--history-window` pushes in flight, p50/p99 at `--rate`.
 *   Bare ws clients for both, so the clients cost the same; then history on
 *   with weft/client clients (weft.v1: an envelope with the position).
 * - Resume: a weft/client that missed 100 pushes reconnects to the other
 *   gateway with `since`; ms from the connect to the welcome and to the 100th
 *   replayed push, median of `--reconnects`; the same with nothing missed.
 * - Memory: Redis MEMORY USAGE of the stream and meta keys per businessId
 *   after 100, 10 and 1 pushes to each of up to 200 businessIds.
 */
import { sleep } from '../lib/clock.js';
import type { BenchOptions } from '../lib/options.js';
import { wants } from '../lib/options.js';
import type { Proc } from '../lib/procs.js';
import type { RedisWatch } from '../lib/redis.js';
import { median, type Row } from '../lib/result.js';
import { WS_PATH, pushPhase, specFor, startWeftPush, type WeftPushSystem } from '../lib/stacks.js';
import { perPushOf } from './push-scenarios.js';
import { historyKeys } from '../../src/redis/keys.js';

/** The service's name: the history keys are `{<prefix>:history:<service>:<businessId>}:s` and `:m` (src/redis/keys.ts). */
const SERVICE = 'IBenchWsAppService';
/** Pushes a resuming client missed. */
const MISSED = 100;
/** Reconnects of each kind done first and not counted (JIT, connection pools). */
const RESUME_WARMUP = 3;
/** Most businessIds filled for the memory figures (their size does not depend on how many). */
const MEMORY_BUSINESS_IDS = 200;
const MEMORY_ENTRIES = [100, 10, 1];

interface Variant {
  system: string;
  history: boolean;
  clients: 'ws' | 'weft';
}

const OFF: Variant = { system: 'history off', history: false, clients: 'ws' };
const ON: Variant = { system: 'history on', history: true, clients: 'ws' };
const ON_V1: Variant = { system: 'history on (weft/client)', history: true, clients: 'weft' };

/** Which of off and on goes first alternates from run to run (--runs), so neither always gets the quieter machine. */
let invocations = 0;

interface PushEachResult {
  pushes: number;
  reached: number;
  errors: Record<string, number>;
  ms: number;
}

interface ResumeTiming {
  ms: number;
  welcomeMs: number;
  received: number;
  replayed: number;
  recovered: boolean;
  reason: string | undefined;
}

function errorNote(what: string, errors: Record<string, number>): string | undefined {
  return Object.keys(errors).length === 0 ? undefined : `${what}: push errors ${JSON.stringify(errors)}`;
}

/**
 * Resume cost: for each reconnect a fresh businessId; a weft/client session opens on gateway 1
 * and closes (its position is the stream's top), `missed` pushes follow, then it reconnects to
 * gateway 2 with `since`. 0 and MISSED alternate, warm-up reconnects first.
 */
async function resumeRows(system: WeftPushSystem, o: BenchOptions, log: (s: string) => void): Promise<Row[]> {
  const client: Proc = system.clients.procs[0]!;
  const [first, second] = system.ports.map((p) => `ws://127.0.0.1:${p}${WS_PATH}`) as [string, string];
  const kinds = [0, MISSED];
  const timings = new Map<number, ResumeTiming[]>(kinds.map((k) => [k, []]));
  const notes = new Map<number, Set<string>>(kinds.map((k) => [k, new Set<string>()]));
  const runId = Date.now().toString(36);
  log(`  resume: ${o.reconnects} reconnects with ${MISSED} missed and ${o.reconnects} with none (after ${RESUME_WARMUP} of each not counted)`);
  for (let i = 0; i < RESUME_WARMUP + o.reconnects; i++) {
    for (const missed of kinds) {
      const businessId = `resume-${runId}-${missed}-${i}`;
      await client.call('resumePrepare', { url: first, businessId });
      if (missed > 0) {
        const r = await system.generator.call<PushEachResult>('pushEach', {
          bids: [businessId],
          perBid: missed,
          window: missed,
          payloadBytes: o.payloadBytes,
        });
        const note = errorNote('missed pushes', r.errors);
        if (note !== undefined) notes.get(missed)!.add(note);
      }
      const t = await client.call<ResumeTiming>('resumeTime', { url: second, businessId, expect: missed, timeoutMs: 10_000 });
      if (!t.recovered || t.replayed !== missed)
        notes.get(missed)!.add(`a resume got recovered ${t.recovered} (${t.reason ?? '-'}), ${t.replayed} replayed`);
      if (i >= RESUME_WARMUP) timings.get(missed)!.push(t);
    }
  }
  return kinds.map((missed) => {
    const ts = timings.get(missed)!;
    const metrics: Record<string, number> = {
      reconnects: ts.length,
      welcomeMs: median(ts.map((t) => t.welcomeMs)),
      resumeMs: median(ts.map((t) => t.ms)),
      resumeMaxMs: Math.max(...ts.map((t) => t.ms)),
    };
    return { system: 'resume', phase: `${missed} missed`, metrics, cpu: {}, notes: [...notes.get(missed)!] };
  });
}

/** Bytes Redis gives for one key (MEMORY USAGE, every stream node counted); NaN when it does not exist. */
async function memoryUsage(redis: RedisWatch, keys: string[]): Promise<number[]> {
  const pipeline = redis.redis.pipeline();
  for (const key of keys) pipeline.call('MEMORY', 'USAGE', key, 'SAMPLES', '0');
  const replies = (await pipeline.exec()) ?? [];
  return replies.map(([err, v]) => (err === null && typeof v === 'number' ? v : Number.NaN));
}

/** Memory per businessId: fill businessIds with no session with n pushes each, then MEMORY USAGE of their two keys. */
async function memoryRows(system: WeftPushSystem, redis: RedisWatch, o: BenchOptions, log: (s: string) => void): Promise<Row[]> {
  const count = Math.min(MEMORY_BUSINESS_IDS, o.businessIds);
  const rows: Row[] = [];
  for (const entries of MEMORY_ENTRIES) {
    const bids = Array.from({ length: count }, (_, i) => `mem${entries}-${i}`);
    log(`  memory: ${count} businessIds x ${entries} pushes`);
    const r = await system.generator.call<PushEachResult>('pushEach', {
      bids,
      perBid: entries,
      window: o.historyWindow,
      payloadBytes: o.payloadBytes,
    });
    const keys = bids.map((b) => historyKeys(system.prefix, SERVICE, b));
    const streams = await memoryUsage(
      redis,
      keys.map((k) => k.stream),
    );
    const metas = await memoryUsage(
      redis,
      keys.map((k) => k.meta),
    );
    const lengths = await Promise.all(keys.slice(0, 3).map((k) => redis.redis.xlen(k.stream)));
    const notes: string[] = [];
    const note = errorNote('fill', r.errors);
    if (note !== undefined) notes.push(note);
    const missing = streams.filter(Number.isNaN).length + metas.filter(Number.isNaN).length;
    if (missing > 0) notes.push(`${missing} history keys not found`);
    if (lengths.some((n) => n !== entries)) notes.push(`streams hold ${lengths.join(', ')} entries, ${entries} expected`);
    const avg = (v: number[]): number => v.reduce((a, b) => a + b, 0) / v.length;
    const stream = avg(streams);
    const meta = avg(metas);
    rows.push({
      system: 'memory',
      phase: `${entries} ${entries === 1 ? 'entry' : 'entries'}`,
      metrics: { businessIds: count, historyBytesPerBusinessId: stream + meta, streamBytesPerBusinessId: stream, metaBytesPerBusinessId: meta },
      cpu: {},
      notes,
    });
  }
  return rows;
}

export async function history(o: BenchOptions, redis: RedisWatch, log: (s: string) => void): Promise<Row[]> {
  const { sessions, businessIds } = o;
  const perPush = perPushOf(sessions, businessIds);
  if (perPush < 2) throw new Error(`history puts a session of each businessId on both gateways: --sessions must be at least 2x --business-ids`);
  const phases = [
    { phase: 'max', spec: specFor(o, 'max', businessIds, perPush, o.historyWindow) },
    { phase: 'rate', spec: specFor(o, 'rate', businessIds, perPush, o.historyWindow) },
  ];
  const order = invocations++ % 2 === 0 ? [OFF, ON, ON_V1] : [ON, OFF, ON_V1];
  const rows: Row[] = [];
  const extra: Row[] = [];
  for (const v of order) {
    // The resume and memory parts run on history on's processes.
    const more = v === ON && (wants(o, 'resume') || wants(o, 'memory'));
    if (!wants(o, v.system) && !more) continue;
    log(`  ${v.system}: starting`);
    let system: WeftPushSystem | undefined;
    try {
      system = await startWeftPush(o, redis, v.system, sessions, businessIds, 'rpc', { gateways: 2, clients: v.clients, history: v.history });
      if (wants(o, v.system)) {
        for (const { phase, spec } of phases) {
          log(`  ${v.system}: ${phase} for ${spec.durationMs / 1000} s`);
          rows.push(await pushPhase(system, redis, phase, spec, o));
          await sleep(200);
        }
      }
      if (v === ON && wants(o, 'resume')) extra.push(...(await resumeRows(system, o, log)));
      if (v === ON && wants(o, 'memory')) extra.push(...(await memoryRows(system, redis, o, log)));
    } catch (err) {
      rows.push({ system: v.system, phase: 'failed', metrics: {}, cpu: {}, notes: [(err as Error).message.split('\n')[0]!] });
      log(`  ${v.system}: FAILED ${(err as Error).stack ?? String(err)}`);
    } finally {
      await system?.close();
    }
  }
  // Same order in every run: off, on, weft/client, then resume and memory.
  const rank = (r: Row): number => [OFF, ON, ON_V1].findIndex((v) => v.system === r.system);
  rows.sort((a, b) => rank(a) - rank(b));
  const offMax = rows.find((r) => r.system === OFF.system && r.phase === 'max')?.metrics['deliveriesPerSec'];
  for (const r of rows) {
    if (r.phase !== 'max' || r.system === OFF.system || offMax === undefined) continue;
    const ratio = (r.metrics['deliveriesPerSec'] ?? Number.NaN) / offMax;
    r.metrics['deliveriesVsOff'] = Math.round(ratio * 1000) / 1000;
  }
  return [...rows, ...extra];
}
