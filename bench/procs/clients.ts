/**
 * WebSocket clients, as cheap as they can be: each message costs a parse of
 * the send time at its start, one histogram increment and a counter.
 * `kind` is `ws` (plain WebSocket: weft and the raw ws baselines) or `sio`
 * (socket.io-client, websocket transport only).
 *
 * Commands: connect, reset, report, feedback, close, count.
 */
import { WebSocket } from 'ws';
import { childArgs, emit, failStart, serve } from '../lib/child.js';
import { nowUs, sentUsOfBytes, sentUsOfString } from '../lib/clock.js';
import { Histogram } from '../lib/histogram.js';

interface Args {
  kind: 'ws' | 'sio';
  /** Source address for this process's sockets (127.0.0.x), so ephemeral ports do not run out. */
  localAddress?: string;
}

interface ConnectArgs {
  /** One entry per session: the URL to open (ws) or the server URL (sio), and its businessId. */
  sessions: { url: string; businessId: string }[];
  concurrency: number;
  timeoutMs?: number;
}

interface Closable {
  close(): void;
}

const args = childArgs<Args>();
const hist = new Histogram();
let received = 0;
let lastUs = 0;
let foreign = 0;
let closedEarly = 0;
const sockets: Closable[] = [];
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
      resolve(ws);
    });
    ws.once('unexpected-response', (_req, res) => {
      reject(new Error(`HTTP ${res.statusCode}`));
      ws.terminate();
    });
    ws.once('error', (err) => reject(err));
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
      resolve({ close: () => socket.close() });
    });
    socket.once('connect_error', (err) => {
      socket.close();
      reject(err);
    });
  });
}

async function connect(a: ConnectArgs): Promise<{ opened: number; failed: number; errors: string[]; ms: number }> {
  const open: Opener = args.kind === 'sio' ? openSio : openWs;
  const started = Date.now();
  let next = 0;
  let opened = 0;
  let failed = 0;
  const errors = new Map<string, number>();
  const worker = async (): Promise<void> => {
    while (next < a.sessions.length) {
      const s = a.sessions[next++]!;
      try {
        sockets.push(await open(s.url, s.businessId));
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
        return n;
      },
      sockets: () => sockets.length,
    },
    { kind: args.kind },
  );
} catch (err) {
  failStart(err);
}
