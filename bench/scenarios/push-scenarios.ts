/**
 * push, push-http and fan-out: pushes to sessions by businessId, measured
 * at the WebSocket clients (end-to-end latency from the send time in the
 * payload, deliveries, losses), with the baselines run next to weft.
 */
import type { GenSpec } from '../lib/generator.js';
import type { BenchOptions } from '../lib/options.js';
import { wants } from '../lib/options.js';
import type { RedisWatch } from '../lib/redis.js';
import type { Row } from '../lib/result.js';
import { pushPhase, specFor, startRawPush, startSocketIo, startWeftPush, type PushSystem, type WeftLayout } from '../lib/stacks.js';

interface Candidate {
  name: string;
  usesRedis: boolean;
  start: () => Promise<PushSystem>;
}

export function perPushOf(sessions: number, businessIds: number): number {
  if (sessions % businessIds !== 0) throw new Error(`--sessions (${sessions}) must be a multiple of --business-ids (${businessIds})`);
  return sessions / businessIds;
}

/** Runs `phases` on each wanted system in turn, each with fresh processes; a failing system becomes a row that says why. */
async function runSystems(
  o: BenchOptions,
  redis: RedisWatch,
  candidates: Candidate[],
  phases: { phase: string; spec: GenSpec }[],
  log: (s: string) => void,
): Promise<Row[]> {
  const rows: Row[] = [];
  for (const c of candidates) {
    if (!wants(o, c.name)) continue;
    log(`  ${c.name}: starting`);
    let system: PushSystem | undefined;
    try {
      system = await c.start();
      for (const { phase, spec } of phases) {
        if (o.phases !== undefined && !o.phases.includes(phase)) continue;
        log(`  ${c.name}: ${phase} for ${spec.durationMs / 1000} s`);
        rows.push(await pushPhase(system, c.usesRedis ? redis : undefined, phase, spec, o));
      }
    } catch (err) {
      rows.push({ system: c.name, phase: 'failed', metrics: {}, cpu: {}, notes: [(err as Error).message.split('\n')[0]!] });
      log(`  ${c.name}: FAILED ${(err as Error).stack ?? String(err)}`);
    } finally {
      await system?.close();
    }
  }
  return rows;
}

/**
 * weft as users run it (two gateways, the sessions of a businessId on both, bare ws clients), then
 * the same with weft/client clients, then the extra layouts: one gateway, and the WebSocket host in
 * the gateway's process. Socket.IO runs two servers with the Redis adapter; raw ws is one process.
 */
function weftCandidates(
  o: BenchOptions,
  redis: RedisWatch,
  sessions: number,
  businessIds: number,
  via: 'rpc' | 'http',
  withClient = true,
): Candidate[] {
  const weft = (name: string, layout: WeftLayout): Candidate => ({
    name,
    usesRedis: true,
    start: () => startWeftPush(o, redis, name, sessions, businessIds, via, layout),
  });
  return [
    weft('weft', { gateways: 2, clients: 'ws' }),
    ...(withClient ? [weft('weft (weft/client)', { gateways: 2, clients: 'weft' })] : []),
    weft('weft-1-gateway', { gateways: 1, clients: 'ws' }),
    weft('weft-colocated', { gateways: 1, colocated: true, clients: 'ws' }),
  ];
}

/** `max`: the bounded window (--history-window, 500 pushes in flight); `max-10k`: the wide one (--window); `rate`: the fixed rate. */
function pushPhases(o: BenchOptions, businessIds: number, perPush: number): { phase: string; spec: GenSpec }[] {
  return [
    { phase: 'max', spec: specFor(o, 'max', businessIds, perPush, o.historyWindow) },
    { phase: 'max-10k', spec: specFor(o, 'max', businessIds, perPush, o.window) },
    { phase: 'rate', spec: specFor(o, 'rate', businessIds, perPush) },
  ];
}

export function push(o: BenchOptions, redis: RedisWatch, log: (s: string) => void): Promise<Row[]> {
  const { sessions, businessIds } = o;
  const perPush = perPushOf(sessions, businessIds);
  return runSystems(
    o,
    redis,
    [
      ...weftCandidates(o, redis, sessions, businessIds, 'rpc'),
      // The way around the hop to the WebSocket host: a worker pushing with createClient, as the programming model allows.
      {
        name: 'weft (push from the caller)',
        usesRedis: true,
        start: () => startWeftPush(o, redis, 'weft (push from the caller)', sessions, businessIds, 'direct', { gateways: 2, clients: 'ws' }),
      },
      { name: 'raw-ws-inproc', usesRedis: false, start: () => startRawPush(o, sessions, businessIds, 'inproc') },
      { name: 'raw-ws-tcp', usesRedis: false, start: () => startRawPush(o, sessions, businessIds, 'tcp') },
      { name: 'socketio', usesRedis: true, start: () => startSocketIo(o, redis, sessions, businessIds) },
    ],
    pushPhases(o, businessIds, perPush),
    log,
  );
}

export function pushHttp(o: BenchOptions, redis: RedisWatch, log: (s: string) => void): Promise<Row[]> {
  const { sessions, businessIds } = o;
  const perPush = perPushOf(sessions, businessIds);
  return runSystems(
    o,
    redis,
    [
      ...weftCandidates(o, redis, sessions, businessIds, 'http', false),
      { name: 'raw-ws-http', usesRedis: false, start: () => startRawPush(o, sessions, businessIds, 'http') },
    ],
    [
      // As fast as the keep-alive connections go: one request in flight on each.
      { phase: 'max', spec: specFor(o, 'max', businessIds, perPush, o.pushConnections) },
      { phase: 'rate', spec: specFor(o, 'rate', businessIds, perPush) },
    ],
    log,
  );
}

/** The room of the fan-out scenario's room row. */
const FAN_OUT_ROOM = 'everyone';

export function fanOut(o: BenchOptions, redis: RedisWatch, log: (s: string) => void): Promise<Row[]> {
  const sessions = o.fanout;
  // Wide enough that no system here is held back by its window (10 was: Socket.IO's
  // pipeline is long), small enough to bound what queues (100 x 1,000 messages).
  const window = o.fanoutWindow;
  return runSystems(
    o,
    redis,
    [
      { name: 'weft', usesRedis: true, start: () => startWeftPush(o, redis, 'weft', sessions, 1, 'rpc', { gateways: 2, clients: 'ws' }) },
      {
        // The same 1,000 sessions as one room (two sessions of each of 500 businessIds, one per gateway):
        // one frame per gateway holding members, as for a businessId.
        name: 'weft (room)',
        usesRedis: true,
        start: async () => {
          const system = await startWeftPush(o, redis, 'weft (room)', sessions, sessions / 2, 'rpc', { gateways: 2, clients: 'ws' });
          const joined = await system.generator.call<number>('joinRoom', { room: FAN_OUT_ROOM });
          if (joined !== sessions) {
            await system.close();
            throw new Error(`${joined} of ${sessions} sessions joined the room`);
          }
          return { ...system, argsFor: (spec) => ({ ...spec, bids: [FAN_OUT_ROOM], toRoom: true }) };
        },
      },
      {
        name: 'weft-colocated',
        usesRedis: true,
        start: () => startWeftPush(o, redis, 'weft-colocated', sessions, 1, 'rpc', { gateways: 1, colocated: true, clients: 'ws' }),
      },
      { name: 'raw-ws-inproc', usesRedis: false, start: () => startRawPush(o, sessions, 1, 'inproc') },
      { name: 'socketio', usesRedis: true, start: () => startSocketIo(o, redis, sessions, 1) },
    ],
    [{ phase: 'max', spec: specFor(o, 'max', 1, sessions, window) }],
    log,
  );
}
