/**
 * http-rpc (gateway route -> host in another process, against raw
 * node:http), rpc (service to service through the typed proxy) and sessions
 * (memory per idle session after GC, connects/s).
 */
import { DEFAULTS } from '../../src/defaults.js';
import { ClientGroup } from '../lib/clients.js';
import { sleep } from '../lib/clock.js';
import type { BenchOptions } from '../lib/options.js';
import { wants } from '../lib/options.js';
import { ProcGroup, ServerCpuWatch, type Proc } from '../lib/procs.js';
import type { RedisWatch } from '../lib/redis.js';
import type { Row } from '../lib/result.js';
import { WS_PATH, sessionPlan, startWeft, waitCount } from '../lib/stacks.js';

type Log = (s: string) => void;

function failedRow(system: string, err: unknown, log: Log): Row {
  log(`  ${system}: FAILED ${(err as Error).stack ?? String(err)}`);
  return { system, phase: 'failed', metrics: {}, cpu: {}, notes: [(err as Error).message.split('\n')[0]!] };
}

interface CannonResult {
  requestsPerSec: number;
  p50Ms: number;
  p99Ms: number;
  non2xx: number;
  errors: number;
  timeouts: number;
}

/** CPU of a server outside the group (Redis, NATS), by its column name. */
type ServerWatches = Record<string, { markCpu(): void; cpuSinceMark(): number }>;

async function cannonRow(system: string, group: ProcGroup, load: Proc, url: string, o: BenchOptions, servers: ServerWatches): Promise<Row> {
  const tool = o.httpTool;
  const args = { url, connections: o.httpConnections, durationS: o.warmupS };
  if (o.warmupS > 0) await load.call(tool, args, (o.warmupS + 60) * 1000);
  group.markCpu();
  for (const watch of Object.values(servers)) watch.markCpu();
  const r = await load.call<CannonResult>(tool, { ...args, durationS: o.durationS }, (o.durationS + 60) * 1000);
  const cpu = group.cpu();
  for (const [name, watch] of Object.entries(servers)) cpu[name] = watch.cpuSinceMark();
  cpu['rest-of-box'] = group.restOfBox(cpu);
  group.check();
  const notes: string[] = [`load by ${tool}, ${o.httpConnections} connections`];
  if (r.non2xx + r.errors + r.timeouts > 0) notes.push(`non-2xx ${r.non2xx}, errors ${r.errors}, timeouts ${r.timeouts}`);
  return {
    system,
    phase: 'max',
    metrics: { requestsPerSec: r.requestsPerSec, p50Ms: r.p50Ms, p99Ms: r.p99Ms, errors: r.non2xx + r.errors + r.timeouts },
    cpu,
    notes,
  };
}

/** A baseline server's http-rpc row: `start` starts its processes in `group` and gives the port to load. */
async function baselineRow(
  system: string,
  o: BenchOptions,
  log: Log,
  start: (group: ProcGroup) => Promise<number>,
  servers: ServerWatches = {},
): Promise<Row> {
  log(`  ${system}: starting`);
  const group = new ProcGroup();
  try {
    const port = await start(group);
    const url = `http://127.0.0.1:${port}/api/benchrpc/item?id=42`;
    await waitCount('a 200 from the route', async () => ((await fetch(url)).status === 200 ? 1 : 0), 1, 20_000);
    const load = await group.start('http-load', 'http-load');
    log(`  ${system}: ${o.warmupS} s warm-up, ${o.durationS} s measured`);
    return await cannonRow(system, group, load, url, o, servers);
  } catch (err) {
    return failedRow(system, err, log);
  } finally {
    await group.stopAll();
  }
}

export async function httpRpc(o: BenchOptions, redis: RedisWatch, log: Log): Promise<Row[]> {
  const rows: Row[] = [];
  if (wants(o, 'weft')) {
    log('  weft: starting');
    let weft: Awaited<ReturnType<typeof startWeft>> | undefined;
    try {
      weft = await startWeft(o, redis, 'rpc-host', 'IBenchRpcAppService');
      const url = `http://127.0.0.1:${weft.port}/api/benchrpc/item?id=42`;
      await waitCount('a 200 from the route', async () => ((await fetch(url)).status === 200 ? 1 : 0), 1, 20_000);
      const load = await weft.group.start('http-load', 'http-load');
      log(`  weft: ${o.warmupS} s warm-up, ${o.durationS} s measured`);
      rows.push(await cannonRow('weft', weft.group, load, url, o, { redis }));
    } catch (err) {
      rows.push(failedRow('weft', err, log));
    } finally {
      await weft?.close();
    }
  }
  if (wants(o, 'raw-http')) {
    rows.push(await baselineRow('raw-http', o, log, async (group) => (await group.start('server', 'raw-http-server')).info['port'] as number));
  }
  // moleculer-web in the two layouts of its published benchmarks; the remote one is weft's layout.
  const namespace = `bench-${process.pid}-${Date.now()}`;
  if (wants(o, 'moleculer-web')) {
    rows.push(
      await baselineRow(
        'moleculer-web',
        o,
        log,
        async (group) => {
          await group.start('worker', 'moleculer-web', { role: 'worker', natsUrl: o.natsUrl, namespace });
          return (await group.start('api', 'moleculer-web', { role: 'api', natsUrl: o.natsUrl, namespace })).info['port'] as number;
        },
        { nats: new ServerCpuWatch('nats-server') },
      ),
    );
  }
  if (wants(o, 'moleculer-web-1-process')) {
    rows.push(
      await baselineRow(
        'moleculer-web-1-process',
        o,
        log,
        async (group) => (await group.start('server', 'moleculer-web', { role: 'one-process' })).info['port'] as number,
      ),
    );
  }
  return rows;
}

interface CallsResult {
  calls: number;
  callsPerSec: number;
  errors: Record<string, number>;
  p50Ms: number;
  p99Ms: number;
  p999Ms: number;
}

export async function rpc(o: BenchOptions, redis: RedisWatch, log: Log): Promise<Row[]> {
  const rows: Row[] = [];
  if (!wants(o, 'weft')) return rows;
  log('  weft: starting');
  let weft: Awaited<ReturnType<typeof startWeft>> | undefined;
  try {
    weft = await startWeft(o, redis, 'rpc-host', 'IBenchRpcAppService');
    // The gateway plays no part in service-to-service calls.
    await weft.gateway.stop();
    weft.group.procs.splice(weft.group.procs.indexOf(weft.gateway), 1);
    const caller = await weft.group.start('caller', 'weft-node', { ...weft.nodeArgs, role: 'rpc-caller' });
    await caller.call('waitReady', { timeoutMs: 20_000 });
    await caller.call('calls', { inFlight: 100, durationMs: Math.min(2000, o.warmupS * 1000) });
    for (const inFlight of [1, 100]) {
      log(`  weft: ${inFlight} in flight for ${o.durationS} s`);
      weft.group.markCpu();
      const r = await caller.call<CallsResult>('calls', { inFlight, durationMs: o.durationS * 1000 }, (o.durationS + 60) * 1000);
      const errors = Object.values(r.errors).reduce((a, b) => a + b, 0);
      rows.push({
        system: 'weft',
        phase: inFlight === 1 ? 'one-at-a-time' : `${inFlight}-in-flight`,
        metrics: { callsPerSec: r.callsPerSec, p50Ms: r.p50Ms, p99Ms: r.p99Ms, p999Ms: r.p999Ms, errors },
        cpu: ((c) => ({ ...c, 'rest-of-box': weft.group.restOfBox(c) }))(weft.group.cpu()),
        notes: errors > 0 ? [`errors: ${JSON.stringify(r.errors)}`] : [],
      });
    }
  } catch (err) {
    rows.push(failedRow('weft', err, log));
  } finally {
    await weft?.close();
  }
  return rows;
}

interface Mem {
  rss: number;
  heapUsed: number;
  external: number;
  heapTotal: number;
}

/** Connects `n` idle sessions; settled memory (bench/lib/child.ts) before and after, per session. */
async function idleRow(
  system: string,
  o: BenchOptions,
  group: ProcGroup,
  servers: { label: string; proc: Proc }[],
  urlFor: (bid: string) => string,
  seen: () => Promise<number>,
  redis: RedisWatch | undefined,
  log: Log,
): Promise<Row> {
  const n = o.idleSessions;
  const procs = Math.max(o.clientProcs, Math.ceil(n / 15_000));
  const clients = await ClientGroup.start(group, 'ws', procs, true);
  // Warm up the code paths, so one-time costs do not count per session.
  const warm = Math.min(200, n);
  await clients.connect(sessionPlan(warm, warm, (_i, bid) => urlFor(bid)));
  await waitCount(`${system}: warm-up sessions`, seen, warm);
  await clients.close();
  await waitCount(`${system}: warm-up sessions gone`, async () => warm - (await seen()), warm);
  await sleep(500);
  const before = await Promise.all(servers.map((s) => s.proc.call<Mem>('mem')));
  const redisBefore = redis === undefined ? 0 : await redis.usedMemory();
  group.markCpu();
  log(`  ${system}: connecting ${n} sessions from ${procs} processes`);
  const t0 = Date.now();
  const { ms } = await clients.connect(sessionPlan(n, n, (_i, bid) => urlFor(bid)));
  await waitCount(`${system}: sessions seen`, seen, n);
  const seenMs = Date.now() - t0;
  const cpu = group.cpu();
  cpu['rest-of-box'] = group.restOfBox(cpu);
  // Read once every session has been pinged and has answered, the steady state of an idle session.
  // Both servers ping at the same interval; weft spreads its pings over it and starts a pass at most
  // once per interval, so a session opened just after a pass began waits up to two.
  await sleep(2 * DEFAULTS.wsPingIntervalMs + 1000);
  const after = await Promise.all(servers.map((s) => s.proc.call<Mem>('mem')));
  const metrics: Record<string, number> = { sessions: n, connectsPerSec: Math.round((n * 1000) / ms) };
  servers.forEach((s, i) => {
    metrics[`${s.label}BytesPerSession`] = Math.round((after[i]!.rss - before[i]!.rss) / n);
    metrics[`${s.label}HeapBytesPerSession`] = Math.round((after[i]!.heapUsed - before[i]!.heapUsed) / n);
    // Pages V8 holds for its heap, used or not; then Buffers and other memory it tracks outside the heap.
    metrics[`${s.label}HeapTotalBytesPerSession`] = Math.round((after[i]!.heapTotal - before[i]!.heapTotal) / n);
    metrics[`${s.label}ExternalBytesPerSession`] = Math.round((after[i]!.external - before[i]!.external) / n);
    metrics[`${s.label}RssMiB`] = Math.round((after[i]!.rss / 2 ** 20) * 10) / 10;
  });
  if (redis !== undefined) metrics['redisBytesPerSession'] = Math.round(((await redis.usedMemory()) - redisBefore) / n);
  group.check();
  return { system, phase: 'idle', metrics, cpu, notes: [`all ${n} sessions opened in ${ms} ms, seen by the service after ${seenMs} ms`] };
}

export async function sessions(o: BenchOptions, redis: RedisWatch, log: Log): Promise<Row[]> {
  const rows: Row[] = [];
  if (wants(o, 'weft')) {
    log('  weft: starting');
    let weft: Awaited<ReturnType<typeof startWeft>> | undefined;
    try {
      weft = await startWeft(o, redis, 'ws-host', 'IBenchWsAppService');
      const host = weft.group.procs.find((p) => p.name === 'ws-host')!;
      const port = weft.port;
      rows.push(
        await idleRow(
          'weft',
          o,
          weft.group,
          [
            { label: 'gateway', proc: weft.gateway },
            { label: 'host', proc: host },
          ],
          (bid) => `ws://127.0.0.1:${port}${WS_PATH}?businessId=${bid}`,
          () => host.call<number>('count'),
          redis,
          log,
        ),
      );
    } catch (err) {
      rows.push(failedRow('weft', err, log));
    } finally {
      await weft?.close();
    }
  }
  if (wants(o, 'raw-ws')) {
    log('  raw-ws: starting');
    const group = new ProcGroup();
    try {
      const server = await group.start('server', 'raw-ws-server');
      const port = server.info['port'] as number;
      rows.push(
        await idleRow(
          'raw-ws',
          o,
          group,
          [{ label: 'server', proc: server }],
          (bid) => `ws://127.0.0.1:${port}/ws?businessId=${bid}`,
          () => server.call<number>('count'),
          undefined,
          log,
        ),
      );
    } catch (err) {
      rows.push(failedRow('raw-ws', err, log));
    } finally {
      await group.stopAll();
    }
  }
  return rows;
}
