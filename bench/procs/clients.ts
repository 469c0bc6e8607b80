/**
 * WebSocket clients, as cheap as they can be: each message costs a parse of
 * the send time at its start, one histogram increment and a counter.
 * `kind` is `ws` (plain WebSocket: weft and the raw ws baselines), `sio`
 * (socket.io-client, websocket transport only) or `weft` (weft/client over
 * ws: the weft.v1 subprotocol, each push with its position).
 *
 * Commands: connect, reset, report, feedback, close, count; and for the
 * history scenario's resume part (weft/client whatever the kind):
 * resumePrepare, resumeTime. And for the cluster scenario's kill phase: connect with `track`
 * (weft/client sessions that reconnect, each push's id and position recorded), gatewayDown,
 * openTracked, tracked.
 */
import { WebSocket } from 'ws';
import { connectSession, type ClientSession, type Position } from '../../src/client/index.js';
import { childArgs, emit, failStart, serve } from '../lib/child.js';
import { nowUs, sentUsOfBytes, sentUsOfString } from '../lib/clock.js';
import { Histogram } from '../lib/histogram.js';
import type { TrackedRecord } from '../lib/clients.js';

interface Args {
  kind: 'ws' | 'sio' | 'weft';
  /** Source address for this process's sockets (127.0.0.x), so ephemeral ports do not run out. */
  localAddress?: string;
}

interface ConnectArgs {
  /** One entry per session: the URL to open (ws), the server URL (sio) or the service URL (weft), and its businessId. */
  sessions: { url: string; businessId: string; ports?: number[] }[];
  concurrency: number;
  /** weft/client sessions that reconnect (to the first of their `ports` not down) and record every push. */
  track?: boolean;
  timeoutMs?: number;
}

interface Closable {
  close(): void;
}

const args = childArgs<Args>();
/** What a request-reply call carries (about a typing notice's size). */
const PING_TEXT = 'ping '.padEnd(64, 'x');
const hist = new Histogram();
let received = 0;
let lastUs = 0;
let foreign = 0;
let closedEarly = 0;
const sockets: Closable[] = [];
/** Per open session (ws, sio, weft; not tracked ones): one request and its reply, for the request-reply scenario. */
const callers: (() => Promise<unknown>)[] = [];
let feedbackTimer: NodeJS.Timeout | undefined;

function record(sentUs: number): void {
  const now = nowUs();
  received += 1;
  lastUs = now;
  if (sentUs === 0) foreign += 1;
  else hist.record(now - sentUs);
}

function onWsMessage(data: Buffer): void {
  record(sentUsOfBytes(data));
}

function onSioMessage(payload: string): void {
  record(sentUsOfString(payload));
}

type Opener = (url: string, businessId: string) => Promise<Closable>;

function openWs(url: string): Promise<Closable> {
  return new Promise((resolve, reject) => {
    const options: ConstructorParameters<typeof WebSocket>[2] = { perMessageDeflate: false };
    if (args.localAddress !== undefined) options.localAddress = args.localAddress;
    const ws = new WebSocket(url, options);
    ws.on('message', onWsMessage);
    ws.once('open', () => {
      ws.on('close', () => {
        closedEarly += 1;
      });
      // The raw server's echo: one message out, the next one in.
      callers.push(() => new Promise<void>((done) => (ws.once('message', () => done()), ws.send(PING_TEXT))));
      resolve(ws);
    });
    ws.once('unexpected-response', (_req, res) => {
      reject(new Error(`HTTP ${res.statusCode}`));
      ws.terminate();
    });
    ws.once('error', (err) => reject(err));
  });
}

/** ws as weft/client constructs it (url, protocols), with this process's socket options. */
class ClientWebSocket extends WebSocket {
  constructor(url: string, protocols?: string | string[]) {
    super(url, protocols, { perMessageDeflate: false, ...(args.localAddress === undefined ? {} : { localAddress: args.localAddress }) });
  }
}

/** Gateway ports the parent said are down: a tracked session reconnects to the next of its ports instead. */
const downPorts = new Set<number>();

/** ws as weft/client constructs it, aimed at the first of the session's ports that is not down (the options weft/client passes on). */
class RoutedWebSocket extends WebSocket {
  constructor(url: string, protocols?: string | string[], socketOptions?: { ports?: number[] }) {
    const target = new URL(url);
    const port = socketOptions?.ports?.find((p) => !downPorts.has(p));
    if (port !== undefined) target.port = String(port);
    super(target.toString(), protocols, {
      perMessageDeflate: false,
      ...(args.localAddress === undefined ? {} : { localAddress: args.localAddress }),
    });
  }
}

const tracked: { record: TrackedRecord; session: ClientSession; open: boolean }[] = [];

/** The id a payload `<sentUs> <id> ...` carries. */
function idOf(payload: string): string {
  const from = payload.indexOf(' ') + 1;
  const to = payload.indexOf(' ', from);
  return payload.slice(from, to < 0 ? undefined : to);
}

/** A weft/client session that reconnects and resumes, recording what it got; resolves at its first open. */
function openTracked(url: string, businessId: string, ports: number[]): Promise<Closable> {
  return new Promise((resolve, reject) => {
    const rec: TrackedRecord = { businessId, ids: [], positions: [], sentUs: [], recvUs: [], opens: [], closes: [], closeCodes: [] };
    const entry = { record: rec, session: undefined as unknown as ClientSession, open: false };
    let opened = false;
    // Set before connectSession: its callbacks come on later turns.
    let lastError = 'no error';
    let lastClose = 'none';
    const timer = setTimeout(() => {
      entry.session.close();
      reject(new Error(`not open within 60 s (last error: ${lastError}; last close: ${lastClose})`));
    }, 60_000);
    entry.session = connectSession(url, {
      businessId,
      WebSocket: RoutedWebSocket,
      socketOptions: { ports },
      initialDelayMs: 100,
      maxDelayMs: 1000,
      onMessage: (data, info) => {
        const text = typeof data === 'string' ? data : Buffer.from(data as Uint8Array).toString();
        const sent = sentUsOfString(text);
        record(sent);
        rec.ids.push(idOf(text));
        rec.positions.push(info.position === undefined ? '' : `${info.position.epoch}:${info.position.offset}`);
        rec.sentUs.push(sent);
        rec.recvUs.push(lastUs);
      },
      onOpen: (info) => {
        entry.open = true;
        rec.opens.push({ us: nowUs(), resumed: info.resumed, recovered: info.recovered, reason: info.reason, replayed: info.replayed });
        if (!opened) {
          opened = true;
          clearTimeout(timer);
          tracked.push(entry);
          resolve(entry.session);
        }
      },
      onError: (err) => {
        lastError = `${err.status ?? ''} ${err.message}`.trim();
      },
      onClose: (code, reason, willReconnect) => {
        if (!opened) lastClose = `${code} ${reason}`;
        entry.open = false;
        rec.closes.push(nowUs());
        rec.closeCodes.push(`${code} ${reason}${willReconnect ? '' : ' (gave up)'}`);
        if (!opened && !willReconnect) reject(new Error(`closed before it opened: ${code} ${reason}`));
      },
    });
  });
}

function onWeftMessage(data: unknown): void {
  record(typeof data === 'string' ? sentUsOfString(data) : sentUsOfBytes(data as Uint8Array));
}

/** A weft/client session that does not reconnect (as the bare ones): a close after the open counts as closed early. */
function openWeft(url: string, businessId: string): Promise<Closable> {
  return new Promise((resolve, reject) => {
    let opened = false;
    const session = connectSession(url, {
      businessId,
      WebSocket: ClientWebSocket,
      maxRetries: 0,
      onMessage: onWeftMessage,
      onOpen: () => {
        if (!opened) callers.push(() => session.call('ping', { t: PING_TEXT }));
        opened = true;
        resolve(session);
      },
      onClose: (code, reason) => {
        if (opened) closedEarly += 1;
        else reject(new Error(`closed before it opened: ${code} ${reason}`));
      },
    });
  });
}

/** Where each businessId's stream stood when resumePrepare's session closed. */
const stoodAt = new Map<string, Position>();

/**
 * Opens a weft/client session, takes the position its welcome gives (the top of the stream),
 * and closes it: what the pushes that follow are missed from.
 */
function resumePrepare(a: { url: string; businessId: string; timeoutMs?: number }): Promise<Position> {
  return new Promise((resolve, reject) => {
    let position: Position | undefined;
    const session: ClientSession = connectSession(a.url, {
      businessId: a.businessId,
      WebSocket: ClientWebSocket,
      maxRetries: 0,
      onOpen: () => {
        position = session.position;
        session.close();
      },
      onClose: (code, reason) => {
        clearTimeout(timer);
        if (position === undefined) return reject(new Error(`resumePrepare ${a.businessId}: no position (${code} ${reason})`));
        stoodAt.set(a.businessId, position);
        resolve(position);
      },
    });
    const timer = setTimeout(() => {
      session.close();
      reject(new Error(`resumePrepare ${a.businessId}: no open within ${a.timeoutMs ?? 10_000} ms`));
    }, a.timeoutMs ?? 10_000);
  });
}

/**
 * Reconnects (to `url`, another gateway) from the position resumePrepare took, and times it:
 * from the call that connects to the welcome, and to the `expect`-th message (the last replayed).
 */
function resumeTime(a: {
  url: string;
  businessId: string;
  expect: number;
  timeoutMs?: number;
}): Promise<{ ms: number; welcomeMs: number; received: number; replayed: number; recovered: boolean; reason: string | undefined }> {
  const since = stoodAt.get(a.businessId);
  if (since === undefined) return Promise.reject(new Error(`resumeTime ${a.businessId}: no resumePrepare first`));
  return new Promise((resolve, reject) => {
    let welcomeUs = 0;
    let got = 0;
    let replayed = 0;
    let recovered = false;
    let reason: string | undefined;
    const t0 = nowUs();
    const done = (): void => {
      clearTimeout(timer);
      const ms = (nowUs() - t0) / 1000;
      session.close();
      resolve({ ms, welcomeMs: (welcomeUs - t0) / 1000, received: got, replayed, recovered, reason });
    };
    // The callbacks below run on later turns, once `session` and `timer` are set.
    const session: ClientSession = connectSession(a.url, {
      businessId: a.businessId,
      WebSocket: ClientWebSocket,
      maxRetries: 0,
      since,
      onOpen: (info) => {
        welcomeUs = nowUs();
        replayed = info.replayed;
        recovered = info.recovered;
        reason = info.reason;
        if (a.expect === 0) done();
      },
      onMessage: () => {
        got += 1;
        if (got === a.expect) done();
      },
    });
    const timer = setTimeout(() => {
      session.close();
      reject(
        new Error(
          `resumeTime ${a.businessId}: ${got} of ${a.expect} messages within ${a.timeoutMs ?? 10_000} ms (welcome: replayed ${replayed}, ${reason ?? 'recovered'})`,
        ),
      );
    }, a.timeoutMs ?? 10_000);
  });
}

let sioIo: typeof import('socket.io-client').io | undefined;

async function openSio(url: string, businessId: string): Promise<Closable> {
  sioIo ??= (await import('socket.io-client')).io;
  const io = sioIo;
  return new Promise((resolve, reject) => {
    const socket = io(url, { transports: ['websocket'], query: { businessId }, forceNew: true, reconnection: false, timeout: 20_000 });
    socket.on('m', onSioMessage);
    socket.once('connect', () => {
      socket.on('disconnect', () => {
        closedEarly += 1;
      });
      callers.push(() => socket.timeout(10_000).emitWithAck('ping', PING_TEXT));
      resolve({ close: () => socket.close() });
    });
    socket.once('connect_error', (err) => {
      socket.close();
      reject(err);
    });
  });
}

async function connect(a: ConnectArgs): Promise<{ opened: number; failed: number; errors: string[]; ms: number }> {
  const open: Opener = args.kind === 'sio' ? openSio : args.kind === 'weft' ? openWeft : openWs;
  const started = Date.now();
  let next = 0;
  let opened = 0;
  let failed = 0;
  const errors = new Map<string, number>();
  const worker = async (): Promise<void> => {
    while (next < a.sessions.length) {
      const s = a.sessions[next++]!;
      try {
        sockets.push(await (a.track === true ? openTracked(s.url, s.businessId, s.ports ?? []) : open(s.url, s.businessId)));
        opened += 1;
      } catch (err) {
        failed += 1;
        const msg = (err as Error).message;
        errors.set(msg, (errors.get(msg) ?? 0) + 1);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(a.concurrency, a.sessions.length) }, worker));
  return { opened, failed, errors: [...errors].map(([m, n]) => `${n}x ${m}`), ms: Date.now() - started };
}

try {
  serve(
    {
      connect,
      reset: () => {
        hist.reset();
        received = 0;
        lastUs = 0;
        foreign = 0;
        return true;
      },
      report: () => ({ received, lastUs, foreign, closedEarly, max: hist.max, hist: hist.sparse() }),
      count: () => ({ received, lastUs }),
      /** Reports the received count every `ms` (0 stops), for generators that pace by deliveries. */
      feedback: (a: { ms: number }) => {
        if (feedbackTimer !== undefined) clearInterval(feedbackTimer);
        feedbackTimer = undefined;
        if (a.ms > 0) feedbackTimer = setInterval(() => emit('count', received), a.ms);
        return true;
      },
      close: () => {
        for (const s of sockets) s.close();
        const n = sockets.length;
        sockets.length = 0;
        callers.length = 0;
        return n;
      },
      sockets: () => sockets.length,
      /**
       * Every session makes one request at a time for `durationMs` (weft/client `call`, Socket.IO
       * `emitWithAck`, bare ws: a message the raw server echoes); the round trips and their latency.
       */
      calls: async (a: { durationMs: number }) => {
        const rtt = new Histogram();
        const errors: Record<string, number> = {};
        let calls = 0;
        const endUs = nowUs() + a.durationMs * 1000;
        const loop = async (call: () => Promise<unknown>): Promise<void> => {
          while (nowUs() < endUs) {
            const t0 = nowUs();
            try {
              await call();
              rtt.record(nowUs() - t0);
              calls += 1;
            } catch (err) {
              const code = (err as { code?: string }).code ?? (err as Error).message;
              errors[code] = (errors[code] ?? 0) + 1;
            }
          }
        };
        await Promise.all(callers.map(loop));
        return { calls, errors, max: rtt.max, hist: rtt.sparse() };
      },
      resumePrepare,
      resumeTime,
      /** Tracked sessions reconnect elsewhere from now on when their gateway is `port`. */
      gatewayDown: (a: { port: number }) => {
        downPorts.add(a.port);
        return true;
      },
      openTracked: () => tracked.filter((t) => t.open).length,
      /** How many pushes the tracked sessions got so far (cheap: the parent polls it to see deliveries stop). */
      trackedCount: () => tracked.reduce((n, t) => n + t.record.ids.length, 0),
      tracked: () => tracked.map((t) => t.record),
      /** Forgets what the tracked sessions got so far (their opens too). */
      trackedReset: () => {
        for (const { record: r } of tracked) {
          for (const list of [r.ids, r.positions, r.sentUs, r.recvUs, r.opens, r.closes, r.closeCodes]) list.length = 0;
        }
        return true;
      },
    },
    { kind: args.kind },
  );
} catch (err) {
  failStart(err);
}
