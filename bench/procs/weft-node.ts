/**
 * One weft node in its own process, in Redis mode. `role`:
 * - gateway: createGateway (HTTP and WebSocket front door);
 * - gateway-ws: a gateway and the WebSocket host in one process (colocated: pushes reach the
 *   gateway by a direct call, not over a link);
 * - ws-host: createHost with WebSocketModule and BenchWsService (`history: false`: BenchWsNoHistoryService);
 * - rpc-host: createHost serving IBenchRpcAppService;
 * - pusher: createHost with no services, pushing through the typed proxy of IBenchWsAppService;
 * - rpc-caller: createHost with no services, calling IBenchRpcAppService.
 */
import {
  WebSocketModule,
  createClient,
  createGateway,
  createHost,
  implement,
  redisCluster,
  type ClusterClient,
  type Gateway,
  type Host,
} from '../../src/index.js';
import { BenchWsNoHistoryService, BenchWsService, IBenchRpcAppService, IBenchWsAppService, IBenchWsCallAppService, benchItem } from '../contract.js';
import { benchLogger, childArgs, emit, failStart, onParentMessage, serve, type Handler } from '../lib/child.js';
import { nowUs, payloadMaker, sleep } from '../lib/clock.js';
import { Generator, type GenSpec } from '../lib/generator.js';
import { Histogram } from '../lib/histogram.js';
import { hopHistograms, installHopTracer, resetHops } from '../lib/hop-tracer.js';

interface Args {
  role: 'gateway' | 'gateway-ws' | 'ws-host' | 'rpc-host' | 'pusher' | 'direct-pusher' | 'rpc-caller';
  redisUrl: string;
  prefix: string;
  secret: string;
  maxBufferedBytes?: number;
  maxConcurrentCalls?: number;
  callTimeoutMs?: number;
  /** ws-host, gateway-ws: true serves the service with client messages (request-reply). */
  calls?: boolean;
  /** ws-host: false serves the service class that keeps no history. */
  history?: boolean;
  /** Node record TTL and heartbeat (redisCluster's ttlMs, heartbeatMs); weft's defaults when absent. */
  ttlMs?: number;
  heartbeatMs?: number;
  /** Trace one push in this many with the hop tracer (bench/lib/hop-tracer.ts); absent: no tracing. */
  hops?: number;
}

const args = childArgs<Args>();
const logger = benchLogger();
if (args.hops !== undefined) {
  // Before any node exists, so weft's spans go to it from the start.
  installHopTracer(args.role === 'pusher' ? 'pusher' : args.role === 'ws-host' ? 'ws-host' : 'gateway', args.hops);
}
const cluster = redisCluster({
  url: args.redisUrl,
  prefix: args.prefix,
  secret: args.secret,
  ...(args.ttlMs === undefined ? {} : { ttlMs: args.ttlMs }),
  ...(args.heartbeatMs === undefined ? {} : { heartbeatMs: args.heartbeatMs }),
});
const handlers: Record<string, Handler> = {};
const info: Record<string, unknown> = { role: args.role };
let node: Host | Gateway | ClusterClient;

async function startGateway(): Promise<Gateway> {
  const gateway = await createGateway({
    cluster,
    logger,
    name: 'bench-gw',
    http: { host: '127.0.0.1', port: 0 },
    websocket: {
      maxBufferedBytes: args.maxBufferedBytes ?? 16 * 1024 * 1024,
      // Every bench client connects from 127.0.0.1, many with one businessId: the per-address
      // and per-businessId limits would measure themselves, not the gateway.
      maxHandshakesPerIpPerSecond: 1e9,
      maxSessionsPerIp: 1e9,
      maxSessionsPerBusinessId: 1e9,
    },
  }).start();
  info['port'] = gateway.port;
  handlers['sessions'] = () => gateway.sessionCount;
  return gateway;
}

async function startWsHost(): Promise<{ host: Host; service: BenchWsService }> {
  const service = args.history === false ? new BenchWsNoHistoryService() : new BenchWsService();
  const host = await createHost({
    cluster,
    logger,
    name: 'bench-ws-host',
    modules: [WebSocketModule],
    // request-reply's host serves the variant that takes client messages (sessions kept on the host).
    services: [args.calls === true ? implement(IBenchWsCallAppService, service) : implement(IBenchWsAppService, service)],
    ...(args.maxConcurrentCalls === undefined ? {} : { maxConcurrentCalls: args.maxConcurrentCalls }),
  }).start();
  return { host, service };
}

try {
  if (args.role === 'gateway') {
    node = await startGateway();
  } else if (args.role === 'gateway-ws') {
    const { host, service } = await startWsHost();
    const gateway = await startGateway();
    node = gateway;
    handlers['count'] = () => service.count();
    const stopGateway = gateway.stop.bind(gateway);
    // Stopping the process stops both nodes.
    (gateway as { stop: () => Promise<void> }).stop = async () => {
      await stopGateway();
      await host.stop();
    };
  } else if (args.role === 'ws-host') {
    const { host, service } = await startWsHost();
    node = host;
    handlers['count'] = () => service.count();
  } else if (args.role === 'rpc-host') {
    node = await createHost({
      cluster,
      logger,
      name: 'bench-rpc-host',
      services: [implement(IBenchRpcAppService, { getItem: (id: string) => benchItem(id) })],
      ...(args.maxConcurrentCalls === undefined ? {} : { maxConcurrentCalls: args.maxConcurrentCalls }),
    }).start();
  } else if (args.role === 'direct-pusher') {
    // Pushes as a worker does: createClient and the service's SessionManager, straight to the gateways (no host hop).
    const client = await createClient({ cluster, logger, name: 'bench-direct-pusher' }).start();
    node = client;
    const sessions = await client.sessions(IBenchWsAppService);
    const gen = new Generator();
    onParentMessage('delivered', (n) => gen.onDelivered(n as number));
    handlers['waitSessions'] = async (a: { sessions: number; timeoutMs: number }) => {
      const deadline = Date.now() + a.timeoutMs;
      let last = -1;
      while (Date.now() < deadline) {
        last = await sessions.count();
        if (last >= a.sessions) return last;
        await sleep(100);
      }
      throw new Error(`the session directory listed ${last} of ${a.sessions} sessions`);
    };
    handlers['generate'] = (spec: GenSpec) => gen.run(spec, (bid, payload) => sessions.pushToBusiness(bid, payload));
  } else {
    const host = await createHost({ cluster, logger, name: `bench-${args.role}`, callTimeoutMs: args.callTimeoutMs ?? 30_000 }).start();
    node = host;
    if (args.role === 'pusher') {
      const ws = host.proxy(IBenchWsAppService);
      const gen = new Generator();
      onParentMessage('delivered', (n) => gen.onDelivered(n as number));
      /** Polls the WebSocket service over RPC until it sees `sessions` sessions. */
      handlers['waitSessions'] = async (a: { sessions: number; timeoutMs: number }) => {
        const deadline = Date.now() + a.timeoutMs;
        let last = -1;
        let lastErr = '';
        while (Date.now() < deadline) {
          try {
            last = await ws.count();
            if (last >= a.sessions) return last;
          } catch (err) {
            lastErr = (err as Error).message;
          }
          await sleep(100);
        }
        throw new Error(`the WebSocket service saw ${last} of ${a.sessions} sessions (${lastErr})`);
      };
      handlers['generate'] = (spec: GenSpec) =>
        gen.run(spec, spec.toRoom === true ? (room, payload) => ws.pushRoom(room, payload) : (bid, payload) => ws.push(bid, payload));
      handlers['joinRoom'] = (a: { room: string }) => ws.joinRoom(a.room);
      let loading = false;
      /**
       * The cluster scenario's kill phase: `rate` pushes/s with pushOnce (not idempotent) to random
       * `bids` until stopLoad, at most `window` in flight. Payload `<sentUs> <tag><seq> ...`. Each
       * answered push is sent to the parent (batches every 50 ms) as [id, businessId, reached or
       * error code, startUs]: what was acknowledged survives a SIGKILL of this process up to 50 ms.
       */
      handlers['load'] = (a: { rate: number; bids: string[]; window: number; tag: string; payloadBytes: number }) => {
        const pad = 'x'.repeat(Math.max(a.payloadBytes, 40));
        let batch: [string, string, number | string, number][] = [];
        let seq = 0;
        let inFlight = 0;
        let windowFull = 0;
        const flush = (): void => {
          if (batch.length > 0) emit('answers', batch);
          batch = [];
        };
        const flusher = setInterval(flush, 50);
        const startUs = nowUs();
        loading = true;
        return new Promise((resolve) => {
          const timer = setInterval(() => {
            if (!loading) {
              clearInterval(timer);
              const wait = (): void => {
                if (inFlight > 0) return void setTimeout(wait, 20);
                clearInterval(flusher);
                flush();
                resolve({ sent: seq, windowFull });
              };
              return wait();
            }
            const target = Math.floor(((nowUs() - startUs) * a.rate) / 1e6);
            while (seq < target) {
              if (inFlight >= a.window) {
                windowFull += 1;
                break;
              }
              const id = `${a.tag}${++seq}`;
              const bid = a.bids[Math.floor(Math.random() * a.bids.length)]!;
              const t0 = nowUs();
              const head = `${t0} ${id} `;
              inFlight += 1;
              ws.pushOnce(bid, head + pad.slice(head.length))
                .then(
                  (n) => batch.push([id, bid, n, t0]),
                  (err: unknown) => batch.push([id, bid, (err as { code?: string }).code ?? 'error', t0]),
                )
                .finally(() => {
                  inFlight -= 1;
                });
            }
          }, 1);
        });
      };
      handlers['stopLoad'] = () => {
        loading = false;
        return true;
      };
      /**
       * `perBid` pushes to each of `bids` (businessId by businessId, in order), at most `window`
       * in flight; resolves when every push has. The history scenario's resume and memory parts.
       */
      handlers['pushEach'] = async (a: { bids: string[]; perBid: number; window: number; payloadBytes: number }) => {
        const makePayload = payloadMaker(a.payloadBytes);
        const errors: Record<string, number> = {};
        const total = a.bids.length * a.perBid;
        let next = 0;
        let reached = 0;
        const t0 = nowUs();
        const worker = async (): Promise<void> => {
          while (next < total) {
            const i = next++;
            try {
              reached += await ws.push(a.bids[Math.floor(i / a.perBid)]!, makePayload(i));
            } catch (err) {
              const code = (err as { code?: string }).code ?? 'error';
              errors[code] = (errors[code] ?? 0) + 1;
            }
          }
        };
        await Promise.all(Array.from({ length: Math.min(a.window, total) }, worker));
        return { pushes: total, reached, errors, ms: (nowUs() - t0) / 1000 };
      };
    } else {
      const rpc = host.proxy(IBenchRpcAppService);
      handlers['waitReady'] = async (a: { timeoutMs: number }) => {
        const deadline = Date.now() + a.timeoutMs;
        let lastErr = '';
        while (Date.now() < deadline) {
          try {
            await rpc.getItem('ready');
            return true;
          } catch (err) {
            lastErr = (err as Error).message;
          }
          await sleep(100);
        }
        throw new Error(`the RPC service never answered: ${lastErr}`);
      };
      /** Calls for `durationMs` with `inFlight` calls outstanding; latency per call. */
      handlers['calls'] = async (a: { inFlight: number; durationMs: number }) => {
        const hist = new Histogram();
        const errors: Record<string, number> = {};
        let calls = 0;
        const startUs = nowUs();
        const endUs = startUs + a.durationMs * 1000;
        const worker = async (): Promise<void> => {
          let i = 0;
          while (nowUs() < endUs) {
            const t0 = nowUs();
            try {
              await rpc.getItem(String(i++));
              hist.record(nowUs() - t0);
            } catch (err) {
              const code = (err as { code?: string }).code ?? 'error';
              errors[code] = (errors[code] ?? 0) + 1;
            }
            calls += 1;
          }
        };
        await Promise.all(Array.from({ length: a.inFlight }, worker));
        const secs = (nowUs() - startUs) / 1e6;
        return { calls, callsPerSec: Math.round(calls / secs), errors, ...hist.summaryMs() };
      };
    }
  }
  handlers['stats'] = () => ('stats' in node ? node.stats() : {});
  handlers['hops'] = () => hopHistograms();
  handlers['resetHops'] = () => {
    resetHops();
    return true;
  };
  info['nodeId'] = node.nodeId;
  // Stop gracefully when told to exit, so the node leaves the registry and its Redis entries go.
  handlers['exit'] = async () => {
    await Promise.race([node.stop(), sleep(2000)]);
    setImmediate(() => process.exit(0));
    return true;
  };
  serve(handlers, info);
} catch (err) {
  failStart(err);
}
