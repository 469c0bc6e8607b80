/**
 * The raw `ws` baselines: a ws server keeping Map<businessId, Set<ws>>.
 * It is fed three ways:
 * - in-process (`generate`): the server itself picks random businessIds and
 *   ws.send()s, the limit of what a Node process can push;
 * - over one persistent TCP link from a pusher process: newline frames
 *   `<businessId> <payload>\n` (`feedPort`);
 * - over HTTP: GET /push?businessId=&payload= answers {"result": n}.
 * With `echo`, it sends each client's messages back (request-reply).
 *
 * It keeps its clients alive as ws's README shows (a ping to every socket
 * each interval, a socket that sent no pong since the last one is cut), at
 * weft's default interval: a server users run has a heartbeat, and a socket
 * that has received a frame costs ws a little more memory.
 */
import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';
import { DEFAULTS } from '../../src/defaults.js';
import { childArgs, failStart, onParentMessage, serve } from '../lib/child.js';
import { Generator, type GenSpec } from '../lib/generator.js';

const byBusiness = new Map<string, Set<WebSocket>>();
let sessions = 0;

type Kept = WebSocket & { isAlive?: boolean };
function heartbeat(this: Kept): void {
  this.isAlive = true;
}
setInterval(() => {
  for (const set of byBusiness.values()) {
    for (const ws of set as Set<Kept>) {
      if (ws.isAlive === false) {
        ws.terminate();
        continue;
      }
      ws.isAlive = false;
      ws.ping();
    }
  }
}, DEFAULTS.wsPingIntervalMs).unref();

function pushTo(businessId: string, payload: string | Buffer): number {
  const set = byBusiness.get(businessId);
  if (set === undefined) return 0;
  for (const ws of set) ws.send(payload);
  return set.size;
}

function query(url: string): URLSearchParams {
  const q = url.indexOf('?');
  return new URLSearchParams(q < 0 ? '' : url.slice(q + 1));
}

/** `echo`: every message a client sends comes back to it (the request-reply baseline). */
const args = childArgs<{ echo?: boolean }>();
try {
  const server = http.createServer((req, res) => {
    const url = req.url ?? '/';
    if (url.startsWith('/push?')) {
      const q = query(url);
      const n = pushTo(q.get('businessId') ?? '', q.get('payload') ?? '');
      const body = `{"result":${n}}`;
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': body.length });
      res.end(body);
      return;
    }
    res.writeHead(404).end();
  });
  const wss = new WebSocketServer({ server, perMessageDeflate: false, clientTracking: false });
  wss.on('connection', (ws, req) => {
    const businessId = query(req.url ?? '').get('businessId');
    if (businessId === null || businessId === '') return ws.close(1008, 'no businessId');
    let set = byBusiness.get(businessId);
    if (set === undefined) byBusiness.set(businessId, (set = new Set()));
    set.add(ws);
    sessions += 1;
    (ws as Kept).isAlive = true;
    ws.on('pong', heartbeat);
    if (args.echo === true) ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
    ws.on('close', () => {
      sessions -= 1;
      set.delete(ws);
      if (set.size === 0 && byBusiness.get(businessId) === set) byBusiness.delete(businessId);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));

  // The TCP feed: one persistent link, newline-framed.
  const feed = net.createServer((socket) => {
    socket.setNoDelay(true);
    let rest = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      const text = rest + chunk;
      let start = 0;
      for (let nl = text.indexOf('\n'); nl >= 0; nl = text.indexOf('\n', start)) {
        const sp = text.indexOf(' ', start);
        pushTo(text.slice(start, sp), text.slice(sp + 1, nl));
        start = nl + 1;
      }
      rest = text.slice(start);
    });
    socket.on('error', () => undefined);
  });
  await new Promise<void>((r) => feed.listen(0, '127.0.0.1', r));

  const gen = new Generator();
  onParentMessage('delivered', (n) => gen.onDelivered(n as number));
  serve(
    {
      count: () => sessions,
      generate: (spec: GenSpec) =>
        gen.run(spec, (bid, payload) => {
          pushTo(bid, payload);
        }),
    },
    { port: (server.address() as AddressInfo).port, feedPort: (feed.address() as AddressInfo).port },
  );
} catch (err) {
  failStart(err);
}
