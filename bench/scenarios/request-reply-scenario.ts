/**
 * request-reply: client-to-server messages that the client awaits an
 * answer to, one in flight per session: weft/client's `call('ping')`
 * through two gateways to the WebSocket host's handler and back, against
 * Socket.IO's `emitWithAck` (two servers, Redis adapter) and a raw ws
 * server that echoes. Round trips/s and their latency at the clients.
 */
import { ClientGroup } from '../lib/clients.js';
import type { BenchOptions } from '../lib/options.js';
import { wants } from '../lib/options.js';
import { ProcGroup } from '../lib/procs.js';
import type { RedisWatch } from '../lib/redis.js';
import type { Row } from '../lib/result.js';
import { sessionPlan, startSocketIo, startWeftPush, waitCount, type PushSystem } from '../lib/stacks.js';

/** Sessions making calls; each has one call in flight. */
const CALLERS = 200;

async function callRow(system: string, group: ProcGroup, clients: ClientGroup, o: BenchOptions, redis: RedisWatch | undefined): Promise<Row> {
  // Warm-up, not counted: the first calls compile the paths.
  await clients.calls(Math.min(2000, o.warmupS * 1000));
  group.markCpu();
  redis?.markCpu();
  const r = await clients.calls(o.durationS * 1000);
  const cpu = group.cpu();
  if (redis !== undefined) cpu['redis'] = redis.cpuSinceMark();
  cpu['rest-of-box'] = group.restOfBox(cpu);
  group.check();
  const errors = Object.values(r.errors).reduce((a, b) => a + b, 0);
  const s = r.hist.summaryMs();
  return {
    system,
    phase: `${CALLERS} sessions, 1 in flight each`,
    metrics: { callsPerSec: Math.round(r.calls / o.durationS), p50Ms: s.p50Ms, p99Ms: s.p99Ms, p999Ms: s.p999Ms, errors },
    cpu,
    notes: errors > 0 ? [`errors: ${JSON.stringify(r.errors)}`] : [],
  };
}

async function run(
  name: string,
  start: () => Promise<PushSystem>,
  o: BenchOptions,
  redis: RedisWatch | undefined,
  log: (s: string) => void,
): Promise<Row> {
  log(`  ${name}: starting`);
  let system: PushSystem | undefined;
  try {
    system = await start();
    log(`  ${name}: ${o.durationS} s of calls`);
    return await callRow(name, system.group, system.clients, o, redis);
  } catch (err) {
    log(`  ${name}: FAILED ${(err as Error).stack ?? String(err)}`);
    return { system: name, phase: 'failed', metrics: {}, cpu: {}, notes: [(err as Error).message.split('\n')[0]!] };
  } finally {
    await system?.close();
  }
}

/** A raw ws server that echoes, and bare ws clients. */
async function startRawEcho(o: BenchOptions): Promise<PushSystem> {
  const group = new ProcGroup();
  try {
    const server = await group.start('server', 'raw-ws-server', { echo: true });
    const port = server.info['port'] as number;
    const clients = await ClientGroup.start(group, 'ws', o.clientProcs);
    await clients.connect(sessionPlan(CALLERS, CALLERS, (_i, bid) => `ws://127.0.0.1:${port}/ws?businessId=${bid}`));
    await waitCount('raw ws sessions', () => server.call<number>('count'), CALLERS);
    return {
      name: 'raw-ws',
      group,
      clients,
      generator: server,
      command: 'generate',
      argsFor: (spec) => spec,
      feedback: false,
      close: () => group.stopAll(),
    };
  } catch (err) {
    await group.stopAll();
    throw err;
  }
}

export async function requestReply(o: BenchOptions, redis: RedisWatch, log: (s: string) => void): Promise<Row[]> {
  const rows: Row[] = [];
  if (wants(o, 'weft')) {
    // Two sessions of each businessId, one on each gateway (as the push rows).
    rows.push(
      await run(
        'weft',
        () => startWeftPush(o, redis, 'weft', CALLERS, CALLERS / 2, 'rpc', { gateways: 2, clients: 'weft', calls: true }),
        o,
        redis,
        log,
      ),
    );
  }
  if (wants(o, 'socketio')) rows.push(await run('socketio', () => startSocketIo(o, redis, CALLERS, CALLERS), o, redis, log));
  if (wants(o, 'raw-ws')) rows.push(await run('raw-ws', () => startRawEcho(o), o, undefined, log));
  return rows;
}
