/**
 * Prometheus metrics of this process (docs/metrics.md), for every weft node
 * it runs. Hot paths only add to plain numbers here; prom-client reads them
 * when `/metrics` is scraped, so a push or a frame costs an addition, not a
 * label lookup. Durations go to weft's own histograms (seconds-histogram.ts)
 * as they happen, printed in prom-client's format at scrape.
 */
import { Counter, Gauge, Registry, collectDefaultMetrics, type Metric } from 'prom-client';
import { SecondsHistogram, type SecondsSeries } from './seconds-histogram.js';

/** Totals the hot paths add to. */
export const counts = {
  linkFramesIn: 0,
  linkFramesOut: 0,
  linkBytesIn: 0,
  linkBytesOut: 0,
  /** Frames a full link refused (`Overloaded`). */
  linkOverloads: 0,
  /** Times a gateway stopped reading a client's socket: its host's window of messages was full, or its link to the host was. */
  clientPausesWindow: 0,
  clientPausesLink: 0,
  /** Pushes sent by this process, by kind. */
  pushSession: 0,
  pushBusiness: 0,
  pushService: 0,
  pushRoom: 0,
  /** Pushes written to client sockets by this process's gateways: live, and replayed from history on resume. */
  deliveredLive: 0,
  deliveredReplay: 0,
  redisReconnects: 0,
  directoryResyncs: 0,
};

/** Handshakes by outcome (`accepted`, `refused`) and HTTP status. */
const handshakes = new Map<string, number>();
/** Session closes by close code. */
const closes = new Map<number, number>();
/**
 * Why a client message reached no onMessage: `no_handler` (its service has
 * no hooks), `host_gone` (the link to its host closed), `closed` (its
 * session had ended), `queue_full` (over `websocket.maxQueuedMessages` at
 * the host; the session is closed 1013), `unknown_session` (no such session
 * on the host).
 */
export type ClientMessageDrop = 'no_handler' | 'host_gone' | 'closed' | 'queue_full' | 'unknown_session';
/** Client messages dropped, by reason. */
const clientMessageDrops = new Map<ClientMessageDrop, number>();
/** Per gateway: its open sessions by service, read at scrape time. */
const sessionSources = new Set<() => Iterable<readonly [string, number]>>();

export function countHandshake(status: number): void {
  const key = `${status === 101 ? 'accepted' : 'refused'} ${status}`;
  handshakes.set(key, (handshakes.get(key) ?? 0) + 1);
}

export function countClose(code: number): void {
  closes.set(code, (closes.get(code) ?? 0) + 1);
}

export function countClientMessageDrop(reason: ClientMessageDrop, n = 1): void {
  clientMessageDrops.set(reason, (clientMessageDrops.get(reason) ?? 0) + n);
}

/** A gateway's session counts join the `weft_sessions` gauge until the returned function is called. */
export function addSessionSource(source: () => Iterable<readonly [string, number]>): () => void {
  sessionSources.add(source);
  return () => sessionSources.delete(source);
}

let registry: Registry | undefined;
let rpcClient: SecondsHistogram<'service' | 'method' | 'code'> | undefined;
let rpcServer: SecondsHistogram<'service' | 'method' | 'code'> | undefined;
let http: SecondsHistogram<'route' | 'method' | 'status'> | undefined;
let pushAck: Record<'session' | 'business' | 'service' | 'room', SecondsSeries> | undefined;

const SECONDS_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** A counter whose value is a total kept elsewhere (read at scrape time). */
function totalCounter(r: Registry, name: string, help: string, read: () => number): void {
  new Counter({
    name,
    help,
    registers: [r],
    collect() {
      this.reset();
      this.inc(read());
    },
  });
}

/** A counter with one label whose values and totals are kept elsewhere (read at scrape time). */
function labelledCounter(r: Registry, name: string, help: string, label: string, read: () => Iterable<readonly [string, number]>): void {
  new Counter({
    name,
    help,
    labelNames: [label],
    registers: [r],
    collect() {
      this.reset();
      for (const [value, n] of read()) this.inc({ [label]: value }, n);
    },
  });
}

/** The process's registry, made on first use (the first scrape or the first duration observed). */
export function metricsRegistry(): Registry {
  if (registry !== undefined) return registry;
  const r = new Registry();
  registry = r;
  collectDefaultMetrics({ register: r, prefix: 'weft_' });
  new Gauge({
    name: 'weft_sessions',
    help: 'WebSocket sessions held by this process’s gateways, by service (opening ones included).',
    labelNames: ['service'],
    registers: [r],
    collect() {
      this.reset();
      const sum = new Map<string, number>();
      for (const source of sessionSources) for (const [service, n] of source()) sum.set(service, (sum.get(service) ?? 0) + n);
      for (const [service, n] of sum) this.set({ service }, n);
    },
  });
  new Counter({
    name: 'weft_handshakes_total',
    help: 'WebSocket handshakes answered, by outcome and HTTP status (101 accepted).',
    labelNames: ['outcome', 'status'],
    registers: [r],
    collect() {
      this.reset();
      for (const [key, n] of handshakes) {
        const [outcome, status] = key.split(' ');
        this.inc({ outcome: outcome!, status: status! }, n);
      }
    },
  });
  labelledCounter(
    r,
    'weft_session_closes_total',
    'WebSocket sessions closed, by close code (1008 slow consumer, 4001 token expired, 4002 ping timeout, ...).',
    'code',
    () => [...closes].map(([code, n]) => [String(code), n] as const),
  );
  labelledCounter(
    r,
    'weft_client_messages_dropped_total',
    'Client WebSocket messages that reached no onMessage, by reason (no_handler, host_gone, closed, queue_full, unknown_session).',
    'reason',
    () => clientMessageDrops,
  );
  labelledCounter(r, 'weft_pushes_total', 'Pushes sent by this process, by kind (session, business, service, room).', 'kind', () => [
    ['session', counts.pushSession],
    ['business', counts.pushBusiness],
    ['service', counts.pushService],
    ['room', counts.pushRoom],
  ]);
  labelledCounter(
    r,
    'weft_deliveries_total',
    'Pushes written to client sockets by this process’s gateways: live, or replayed from history when a client resumed.',
    'kind',
    () => [
      ['live', counts.deliveredLive],
      ['replay', counts.deliveredReplay],
    ],
  );
  totalCounter(r, 'weft_link_frames_in_total', 'Frames received over TCP links.', () => counts.linkFramesIn);
  totalCounter(r, 'weft_link_frames_out_total', 'Frames sent over TCP links.', () => counts.linkFramesOut);
  totalCounter(r, 'weft_link_bytes_in_total', 'Bytes received over TCP links.', () => counts.linkBytesIn);
  totalCounter(r, 'weft_link_bytes_out_total', 'Bytes sent over TCP links (frame bodies and headers).', () => counts.linkBytesOut);
  totalCounter(r, 'weft_link_overloads_total', 'Frames a full link refused with Overloaded.', () => counts.linkOverloads);
  labelledCounter(
    r,
    'weft_client_read_pauses_total',
    'Times a gateway stopped reading a client’s socket for back-pressure, by cause (window: its onMessage is behind; link: the link to its host is full).',
    'cause',
    () => [
      ['window', counts.clientPausesWindow],
      ['link', counts.clientPausesLink],
    ],
  );
  totalCounter(r, 'weft_redis_reconnects_total', 'Times a Redis connection came back after it was lost.', () => counts.redisReconnects);
  totalCounter(
    r,
    'weft_directory_resyncs_total',
    'Times a session directory replica loaded its shard (or service) again (gap, check or failed load).',
    () => counts.directoryResyncs,
  );
  const seconds = <L extends string>(name: string, help: string, labelNames: L[]): SecondsHistogram<L> => {
    const histogram = new SecondsHistogram(name, help, labelNames, SECONDS_BUCKETS);
    // prom-client prints any object with its metrics' `get`.
    r.registerMetric(histogram as unknown as Metric);
    return histogram;
  };
  rpcClient = seconds(
    'weft_rpc_client_call_seconds',
    'RPC calls made by this process, from call to answer, by service, method and error code (Success when it succeeded).',
    ['service', 'method', 'code'],
  );
  rpcServer = seconds(
    'weft_rpc_server_call_seconds',
    'RPC calls served by this process, from arrival to answer, by service, method and error code.',
    ['service', 'method', 'code'],
  );
  http = seconds('weft_http_request_seconds', 'HTTP requests to service routes, by route template, method and status.', [
    'route',
    'method',
    'status',
  ]);
  const ack = seconds(
    'weft_push_ack_seconds',
    'Pushes from call to acknowledgement: the gateways wrote it to every socket they hold for it (or said they could not).',
    ['kind'],
  );
  // Bound once: a push observes without a label lookup.
  pushAck = { session: ack.series('session'), business: ack.series('business'), service: ack.series('service'), room: ack.series('room') };
  return r;
}

export function observeRpcClient(service: string, method: string, code: string, seconds: number): void {
  if (rpcClient === undefined) metricsRegistry();
  rpcClient!.series(service, method, code).observe(seconds);
}

export function observeRpcServer(service: string, method: string, code: string, seconds: number): void {
  if (rpcServer === undefined) metricsRegistry();
  rpcServer!.series(service, method, code).observe(seconds);
}

export function observeHttp(route: string, method: string, status: number, seconds: number): void {
  if (http === undefined) metricsRegistry();
  http!.series(route, method, String(status)).observe(seconds);
}

export function observePushAck(kind: 'session' | 'business' | 'service' | 'room', seconds: number): void {
  if (pushAck === undefined) metricsRegistry();
  pushAck![kind].observe(seconds);
}

/** The text a scrape answers with, and its content type. */
export async function scrape(): Promise<{ body: string; contentType: string }> {
  const r = metricsRegistry();
  return { body: await r.metrics(), contentType: r.contentType };
}
