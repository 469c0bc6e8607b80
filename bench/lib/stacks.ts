/**
 * The systems under test, each a set of processes started fresh for one
 * scenario: weft (gateway, WebSocket host, pusher or HTTP load), the raw ws
 * server (fed in-process, over TCP or over HTTP) and Socket.IO (two servers
 * with the Redis adapter and a Redis emitter). And the push phase they all run.
 */
import { randomBytes } from 'node:crypto';
import { ClientGroup, type SessionSpec } from './clients.js';
import { sleep } from './clock.js';
import type { GenResult, GenSpec } from './generator.js';
import type { GcPauses } from './child.js';
import type { BenchOptions } from './options.js';
import { ProcGroup, onInterrupt, type Proc } from './procs.js';
import { uniqueKey, type RedisWatch } from './redis.js';
import type { Row } from './result.js';

export const WS_PATH = '/api/benchws';

/** A system set up for pushing: its processes, its clients, and what generates the pushes. */
export interface PushSystem {
  name: string;
  group: ProcGroup;
  clients: ClientGroup;
  generator: Proc;
  /** Command of the generator, and its arguments for a spec. */
  command: string;
  argsFor: (spec: GenSpec) => unknown;
  /** The generator paces by delivery counts from the clients (no acknowledgement of its own). */
  feedback: boolean;
  close(): Promise<void>;
}

/** Who connects where: session i belongs to businessId i mod `businessIds`. */
export function sessionPlan(sessions: number, businessIds: number, urlFor: (i: number, businessId: string) => string): SessionSpec[] {
  return Array.from({ length: sessions }, (_, i) => {
    const businessId = businessIds === 1 ? 'fan' : `b${i % businessIds}`;
    return { url: urlFor(i, businessId), businessId };
  });
}

export function businessIdList(n: number): string[] {
  return n === 1 ? ['fan'] : Array.from({ length: n }, (_, i) => `b${i}`);
}

async function getJson(url: string): Promise<{ status: number; body: unknown }> {
  const res = await fetch(url);
  return { status: res.status, body: (await res.json().catch(() => undefined)) as unknown };
}

/** Polls the gateway's /healthz until it lists `service`. */
export async function waitForService(port: number, service: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let seen: unknown;
  while (Date.now() < deadline) {
    try {
      const r = await getJson(`http://127.0.0.1:${port}/healthz`);
      seen = r.body;
      if ((r.body as { services?: string[] }).services?.includes(service)) return;
    } catch {
      // not up yet
    }
    await sleep(100);
  }
  throw new Error(`the gateway never listed ${service}: ${JSON.stringify(seen)}`);
}

/** Polls `probe` until it returns at least `want`. */
export async function waitCount(what: string, probe: () => Promise<number>, want: number, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = -1;
  while (Date.now() < deadline) {
    last = await probe();
    if (last >= want) return;
    await sleep(100);
  }
  throw new Error(`${what}: ${last} of ${want}`);
}

export interface WeftCluster {
  group: ProcGroup;
  prefix: string;
  gateway: Proc;
  port: number;
  /** What another weft process of this cluster is started with. */
  nodeArgs: { redisUrl: string; prefix: string; secret: string };
  /** Bound: may be passed on as it is. */
  close: () => Promise<void>;
}

/**
 * A gateway and a host of `hostRole` (ws-host or rpc-host), each its own process, on a fresh
 * Redis prefix; `colocated`: the WebSocket host inside the gateway process instead.
 */
export async function startWeft(
  o: BenchOptions,
  redis: RedisWatch,
  hostRole: 'ws-host' | 'rpc-host',
  service: string,
  colocated = false,
): Promise<WeftCluster> {
  const group = new ProcGroup();
  const prefix = uniqueKey('weft-bench');
  const common = { redisUrl: o.redisUrl, prefix, secret: randomBytes(16).toString('hex') };
  const forget = onInterrupt(() => redis.deletePrefix(prefix));
  const close = async (): Promise<void> => {
    await group.stopAll();
    await redis.deletePrefix(prefix);
    forget();
  };
  try {
    const gateway = await group.start('gateway', 'weft-node', {
      ...common,
      role: colocated ? 'gateway-ws' : 'gateway',
      maxBufferedBytes: 16 * 1024 * 1024,
      maxConcurrentCalls: o.hostMaxCalls,
    });
    if (!colocated) await group.start(hostRole, 'weft-node', { ...common, role: hostRole, maxConcurrentCalls: o.hostMaxCalls });
    const port = gateway.info['port'] as number;
    await waitForService(port, service);
    return { group, prefix, gateway, port, nodeArgs: common, close };
  } catch (err) {
    await close();
    throw err;
  }
}

/** How a weft push system is laid out. */
export interface WeftLayout {
  /** Gateways; session i goes to gateway floor(i / businessIds) mod gateways, so with 2 sessions per businessId over 2 gateways each businessId has one on each. */
  gateways: 1 | 2;
  /** The WebSocket host inside the (single) gateway's process instead of its own. */
  colocated?: boolean;
  /** `ws` bare clients, `weft` weft/client (weft.v1: each push in an envelope with its position). */
  clients: 'ws' | 'weft';
  /** false: the service class that keeps no history (`static history = false`); the default keeps it, as users get it. */
  history?: boolean;
  /** Trace one push in this many with the hop tracer (the hops scenario); absent: no tracing. */
  hops?: number;
  /** The service takes client messages (request-reply), so its host keeps its sessions. */
  calls?: boolean;
}

/** weft as the push scenarios run it: its processes, and what the history scenario needs to reach them. */
export interface WeftPushSystem extends PushSystem {
  /** The gateways' HTTP ports, in order. */
  ports: number[];
  /** The cluster's Redis prefix (the history keys start with it). */
  prefix: string;
}

/**
 * weft: `layout.gateways` gateways, a WebSocket host serving BenchWsService
 * (or, colocated, inside the gateway), and a pusher calling the service
 * through its typed proxy (`via` rpc), a `createClient` process pushing
 * straight to the gateways (`direct`), or the HTTP load process (push-http).
 */
export async function startWeftPush(
  o: BenchOptions,
  redis: RedisWatch,
  name: string,
  sessions: number,
  businessIds: number,
  via: 'rpc' | 'http' | 'direct',
  layout: WeftLayout,
): Promise<WeftPushSystem> {
  if (layout.colocated === true && layout.gateways !== 1) throw new Error('a colocated WebSocket host runs beside one gateway');
  const group = new ProcGroup();
  const prefix = uniqueKey('weft-bench');
  const common = { redisUrl: o.redisUrl, prefix, secret: randomBytes(16).toString('hex') };
  const forget = onInterrupt(() => redis.deletePrefix(prefix));
  const close = async (): Promise<void> => {
    await group.stopAll();
    await redis.deletePrefix(prefix);
    forget();
  };
  const history = layout.history ?? true;
  const traced = layout.hops === undefined ? {} : { hops: layout.hops };
  // What the process serving the WebSocket service (a host, or a colocated gateway) needs to know.
  const served = { history, ...traced, ...(layout.calls === true ? { calls: true } : {}) };
  try {
    const gateways: Proc[] = [];
    for (let g = 1; g <= layout.gateways; g++) {
      gateways.push(
        await group.start(layout.gateways === 1 ? 'gateway' : `gateway-${g}`, 'weft-node', {
          ...common,
          role: layout.colocated === true ? 'gateway-ws' : 'gateway',
          ...served,
          maxBufferedBytes: 16 * 1024 * 1024,
          maxConcurrentCalls: o.hostMaxCalls,
        }),
      );
    }
    const host =
      layout.colocated === true
        ? gateways[0]!
        : await group.start('ws-host', 'weft-node', { ...common, role: 'ws-host', ...served, maxConcurrentCalls: o.hostMaxCalls });
    const ports = gateways.map((g) => g.info['port'] as number);
    for (const port of ports) await waitForService(port, 'IBenchWsAppService');
    // rpc: a pusher calling the service's push method; direct: a createClient process pushing through the
    // service's SessionManager straight to the gateways; http: GET requests through the gateway.
    const generator =
      via === 'http'
        ? await group.start('http-load', 'http-load')
        : await group.start('pusher', 'weft-node', { ...common, ...traced, role: via === 'rpc' ? 'pusher' : 'direct-pusher' });
    const clients = await ClientGroup.start(group, layout.clients, o.clientProcs);
    await clients.connect(
      sessionPlan(sessions, businessIds, (i, bid) => {
        const base = `ws://127.0.0.1:${ports[Math.floor(i / businessIds) % ports.length]!}${WS_PATH}`;
        // weft/client adds the businessId itself.
        return layout.clients === 'weft' ? base : `${base}?businessId=${bid}`;
      }),
    );
    await waitCount('sessions the WebSocket host sees', () => host.call<number>('count'), sessions);
    const port = ports[0]!;
    if (via !== 'http') await generator.call('waitSessions', { sessions, timeoutMs: 30_000 });
    else
      await waitCount(
        'sessions seen through the gateway route',
        async () => ((await getJson(`http://127.0.0.1:${port}${WS_PATH}/count`)).body as { result?: number })?.result ?? 0,
        sessions,
      );
    return {
      name,
      group,
      clients,
      generator,
      command: via === 'http' ? 'pushes' : 'generate',
      argsFor: via === 'http' ? (spec) => ({ port, path: `${WS_PATH}/push`, connections: o.pushConnections, spec }) : (spec) => spec,
      feedback: false,
      close,
      ports,
      prefix,
    };
  } catch (err) {
    await close();
    throw err;
  }
}

/** The raw ws server fed in-process, over one TCP link, or over HTTP. */
export async function startRawPush(o: BenchOptions, sessions: number, businessIds: number, feed: 'inproc' | 'tcp' | 'http'): Promise<PushSystem> {
  const group = new ProcGroup();
  try {
    const server = await group.start('server', 'raw-ws-server');
    const port = server.info['port'] as number;
    let generator = server;
    if (feed === 'tcp') generator = await group.start('pusher', 'raw-pusher', { feedPort: server.info['feedPort'] });
    if (feed === 'http') generator = await group.start('http-load', 'http-load');
    const clients = await ClientGroup.start(group, 'ws', o.clientProcs);
    await clients.connect(sessionPlan(sessions, businessIds, (_i, bid) => `ws://127.0.0.1:${port}/ws?businessId=${bid}`));
    await waitCount('raw ws sessions', () => server.call<number>('count'), sessions);
    return {
      name: `raw-ws-${feed}`,
      group,
      clients,
      generator,
      command: feed === 'http' ? 'pushes' : 'generate',
      argsFor: feed === 'http' ? (spec) => ({ port, path: '/push', connections: o.pushConnections, spec }) : (spec) => spec,
      // Over HTTP the response is the acknowledgement; otherwise deliveries pace the generator.
      feedback: feed !== 'http',
      close: () => group.stopAll(),
    };
  } catch (err) {
    await group.stopAll();
    throw err;
  }
}

/** Socket.IO 4.8: two servers with the Redis adapter, clients split over both, a Redis emitter. */
export async function startSocketIo(o: BenchOptions, redis: RedisWatch, sessions: number, businessIds: number): Promise<PushSystem> {
  const group = new ProcGroup();
  const key = uniqueKey('sio-bench');
  const forget = onInterrupt(() => redis.deletePrefix(key));
  const close = async (): Promise<void> => {
    await group.stopAll();
    await redis.deletePrefix(key);
    forget();
  };
  try {
    const servers = [
      await group.start('sio-1', 'sio-server', { redisUrl: o.redisUrl, key }),
      await group.start('sio-2', 'sio-server', { redisUrl: o.redisUrl, key }),
    ];
    const generator = await group.start('emitter', 'sio-emitter', { redisUrl: o.redisUrl, key });
    const clients = await ClientGroup.start(group, 'sio', o.clientProcs);
    await clients.connect(sessionPlan(sessions, businessIds, (i) => `http://127.0.0.1:${servers[i % 2]!.info['port'] as number}`));
    await waitCount(
      'Socket.IO sockets',
      async () => (await Promise.all(servers.map((s) => s.call<number>('count')))).reduce((a, b) => a + b, 0),
      sessions,
    );
    // Room joins ride the connection; give the adapters a moment.
    await sleep(200);
    return { name: 'socketio', group, clients, generator, command: 'generate', argsFor: (spec) => spec, feedback: true, close };
  } catch (err) {
    await close();
    throw err;
  }
}

/** Runs one push phase on a system and turns what happened into a row. */
export async function pushPhase(system: PushSystem, redis: RedisWatch | undefined, phase: string, spec: GenSpec, o: BenchOptions): Promise<Row> {
  const { clients, group, generator } = system;
  await clients.reset();
  await clients.relayTo(system.feedback ? generator : undefined);
  group.markCpu();
  redis?.markCpu();
  await group.resetGc();
  const gen = await generator.call<GenResult & { httpP99Ms?: number }>(
    system.command,
    system.argsFor(spec),
    spec.durationMs + (spec.drainMs ?? 15_000) + 60_000,
  );
  const expected = gen.sent * spec.perPush;
  await clients.drain(expected, o.drainS * 1000);
  const cpu = group.cpu();
  if (redis !== undefined) cpu['redis'] = redis.cpuSinceMark();
  const pauses = await group.gcPauses();
  await clients.relayTo(undefined);
  const rep = await clients.report();
  group.check();
  const errors = Object.values(gen.errors).reduce((a, b) => a + b, 0);
  const deliverySecs = (Math.max(rep.lastUs, gen.sendEndUs) - gen.startUs) / 1e6;
  const cpuTotal = Object.values(cpu)
    .filter((v) => !Number.isNaN(v))
    .reduce((a, b) => a + b, 0);
  const serverCpu = Object.entries(cpu)
    .filter(([name, v]) => !isClient(name) && !Number.isNaN(v))
    .reduce((a, [, v]) => a + v, 0);
  cpu['rest-of-box'] = group.restOfBox(cpu);
  const metrics: Record<string, number> = {
    pushesPerSec: gen.pushesPerSec,
    deliveriesPerSec: Math.round(rep.received / deliverySecs),
    ...rep.hist.summaryMs(),
    expected,
    received: rep.received,
    lost: expected - rep.received,
    errors,
    cpuUsPerDelivery: rep.received === 0 ? Number.NaN : Math.round((cpuTotal * 1e6) / rep.received),
    // Everything but the client processes: servers, Redis, and what generates the pushes (raw ws
    // in-process generates inside its server, so this is what compares with it).
    serverCpuUsPerDelivery: rep.received === 0 ? Number.NaN : Math.round((serverCpu * 1e6) / rep.received),
  };
  const gcSummary = summarizeGc(pauses);
  metrics['serverGcMsPerSec'] = gcSummary.serverMsPerSec;
  metrics['gcLongestMs'] = gcSummary.longestMs;
  if (!system.feedback && system.command === 'generate') metrics['acked'] = gen.acked;
  if (gen.httpP99Ms !== undefined) metrics['httpP99Ms'] = gen.httpP99Ms;
  const notes: string[] = [];
  if (errors > 0) notes.push(`push errors: ${JSON.stringify(gen.errors)}`);
  if (gen.windowFull > 0) notes.push(`fell behind the fixed rate: window of ${spec.window} full ${gen.windowFull} times`);
  if (rep.foreign > 0) notes.push(`${rep.foreign} messages without a send time`);
  if (rep.closedEarly > 0) notes.push(`${rep.closedEarly} sessions closed during the phase`);
  if (expected - rep.received < 0) notes.push(`${rep.received - expected} more deliveries than expected (duplicates?)`);
  if (metrics['acked'] !== undefined && metrics['acked'] !== expected)
    notes.push(`push results said ${metrics['acked']} sessions reached, ${expected} expected`);
  return { system: system.name, phase, metrics, cpu, gc: gcSummary.perProcess, notes };
}

const isClient = (name: string): boolean => name.startsWith('clients');

/**
 * GC pause ms per second, per process and summed over the servers, and the servers' longest
 * pause. Every push waits behind a pause of any process on its path, so at a modest rate the
 * servers' share of time paused is a floor under the tail of the latency.
 */
function summarizeGc(pauses: Record<string, GcPauses>): { perProcess: Record<string, number>; serverMsPerSec: number; longestMs: number } {
  const perSec = (ms: number, sinceMs: number): number => (sinceMs === 0 ? Number.NaN : Math.round((ms / sinceMs) * 10_000) / 10);
  const perProcess: Record<string, number> = {};
  const servers = Object.entries(pauses).filter(([name]) => !isClient(name));
  for (const [name, p] of Object.entries(pauses)) perProcess[name] = perSec(p.pausedMs, p.sinceMs);
  const serverMs = servers.reduce((sum, [, p]) => sum + p.pausedMs, 0);
  const sinceMs = Math.max(0, ...servers.map(([, p]) => p.sinceMs));
  const longestMs = Math.max(0, ...servers.map(([, p]) => p.longestMs));
  return { perProcess, serverMsPerSec: perSec(serverMs, sinceMs), longestMs: Math.round(longestMs * 10) / 10 };
}

export function specFor(o: BenchOptions, mode: 'max' | 'rate', businessIds: number, perPush: number, window = o.window): GenSpec {
  return {
    mode,
    durationMs: o.durationS * 1000,
    rate: o.rate,
    window,
    bids: businessIdList(businessIds),
    payloadBytes: o.payloadBytes,
    perPush,
    drainMs: o.drainS * 1000,
  };
}
