/**
 * Test fixtures: real listeners on 127.0.0.1 port 0, real WebSocket clients,
 * real Redis and real child processes. Everything started is stopped by
 * `t.after` or the returned cleanup.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import net from 'node:net';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { WebSocket } from 'ws';
import assert from 'node:assert/strict';
import { isWeftError, type Logger, type ValidError, type WeftError } from '../../src/index.js';

export const REDIS_URL = process.env['WEFT_REDIS_URL'] ?? 'redis://127.0.0.1:6379';

/** A logger that drops everything (set WEFT_TEST_LOG=debug to see it). */
export function quietLogger(): Logger {
  const level = process.env['WEFT_TEST_LOG'];
  return level === undefined ? pino({ level: 'silent' }) : pino({ level }, pino.destination(2));
}

/** A logger whose lines can be read back. */
export function captureLogger(): { logger: Logger; lines: () => Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString('utf8').split('\n')) if (line.trim() !== '') lines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  return { logger: pino({ level: 'debug' }, stream), lines: () => lines };
}

let redisChecked: Promise<boolean> | undefined;

/** Does a Redis answer PING at host:port? */
export function redisPing(host: string, port: number): Promise<boolean> {
  return new Promise<boolean>((resolve) => {
    const socket = net.connect({ host, port });
    const done = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1000, () => done(false));
    socket.once('error', () => done(false));
    socket.once('connect', () => {
      socket.write('PING\r\n');
      socket.once('data', (d) => done(d.toString().startsWith('+PONG')));
    });
  });
}

/** Is Redis reachable? Checked once per process. */
export function redisReachable(): Promise<boolean> {
  const url = new URL(REDIS_URL);
  redisChecked ??= redisPing(url.hostname, Number(url.port || 6379));
  return redisChecked;
}

/**
 * Options for a test that needs Redis: skipped without it, unless
 * WEFT_REQUIRE_REDIS=1 (as in CI), where a missing Redis fails the test.
 */
export async function redisTest(): Promise<{ skip?: string }> {
  if (await redisReachable()) return {};
  if (process.env['WEFT_REQUIRE_REDIS'] === '1') throw new Error(`WEFT_REQUIRE_REDIS=1 but Redis is not reachable at ${REDIS_URL}`);
  return { skip: `Redis not reachable at ${REDIS_URL}` };
}

/**
 * A cluster secret as a real deployment makes one (`openssl rand -base64 32`):
 * 32 random bytes. Give every node of one test's cluster the same one.
 */
export function testSecret(): string {
  return randomBytes(32).toString('base64');
}

/** The secret node processes of this test process share (spawnNode passes it as WEFT_SECRET unless told otherwise). */
export const PROCESS_SECRET = testSecret();

/** A key prefix of its own for each test, so tests never see each other's nodes. */
export function uniquePrefix(): string {
  return `weft-test-${randomBytes(4).toString('hex')}`;
}

export interface OpenedClient {
  ws: WebSocket;
  /** Text messages received so far (binary ones as `binary:<length>`). */
  messages: string[];
  /** Resolves with the close code and reason. */
  closed: Promise<{ code: number; reason: string }>;
  /** Resolves once `n` messages have arrived (or rejects after `timeoutMs`). */
  waitFor(n: number, timeoutMs?: number): Promise<string[]>;
}

export interface RefusedHandshake {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** Opens a WebSocket; resolves when open, rejects with the refusal (status, headers, body). */
export function connectWs(
  url: string,
  options: { headers?: Record<string, string>; autoPong?: boolean; protocols?: string[] } = {},
): Promise<OpenedClient> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, options.protocols ?? [], { headers: options.headers ?? {}, autoPong: options.autoPong ?? true });
    const messages: string[] = [];
    const waiters: { n: number; resolve: (m: string[]) => void }[] = [];
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      messages.push(isBinary ? `binary:${data.length}` : data.toString('utf8'));
      for (const w of [...waiters]) {
        if (messages.length >= w.n) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve(messages);
        }
      }
    });
    const closed = new Promise<{ code: number; reason: string }>((r) => ws.once('close', (code, reason) => r({ code, reason: reason.toString() })));
    ws.once('open', () =>
      resolve({
        ws,
        messages,
        closed,
        waitFor(n, timeoutMs = 5000) {
          if (messages.length >= n) return Promise.resolve(messages);
          return new Promise((res, rej) => {
            const timer = setTimeout(() => rej(new Error(`timed out waiting for ${n} messages; have ${JSON.stringify(messages)}`)), timeoutMs);
            waiters.push({
              n,
              resolve: (m) => {
                clearTimeout(timer);
                res(m);
              },
            });
          });
        },
      }),
    );
    ws.once('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () =>
        reject(Object.assign(new Error(`handshake refused: ${res.statusCode}`), { status: res.statusCode ?? 0, headers: res.headers, body })),
      );
    });
    ws.once('error', (err) => reject(err));
  });
}

/** The gateway's answer on a route (src/gateway/responses.ts): the result, or the error. */
export interface GatewayBody {
  result: unknown;
  status: number;
  code: string;
  errorMessage: string | null;
  validErrors: ValidError[] | null;
}

/** What a gateway's GET /healthz answers. */
export interface HealthBody {
  status: 'ok' | 'draining';
  nodeId: string;
  cluster: string;
  services: string[];
  sessions: number;
}

/** What the tests read of a gateway's GET /swagger.json. */
export interface OpenApiBody {
  openapi: string;
  /** Operations by verb (`get`, `post`, ...) by path. */
  paths: Record<string, Record<string, unknown>>;
}

export interface HttpAnswer<TBody> {
  status: number;
  headers: Headers;
  /** The parsed JSON body (the text itself if it is not JSON). */
  body: TBody;
}

type HttpInit = { method?: string; body?: string; headers?: Record<string, string> };

async function fetchJson(url: string, init: HttpInit): Promise<HttpAnswer<unknown>> {
  const res = await fetch(url, init);
  const text = await res.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // not JSON: keep the text
  }
  return { status: res.status, headers: res.headers, body };
}

/** GET/POST a gateway route; the status and the gateway's wrapper. */
export function httpJson(url: string, init: HttpInit = {}): Promise<HttpAnswer<GatewayBody>> {
  return fetchJson(url, init) as Promise<HttpAnswer<GatewayBody>>;
}

/** GET /healthz of the gateway at `baseUrl`. */
export function getHealth(baseUrl: string): Promise<HttpAnswer<HealthBody>> {
  return fetchJson(`${baseUrl}/healthz`, {}) as Promise<HttpAnswer<HealthBody>>;
}

/** GET /swagger.json of the gateway at `baseUrl`. */
export function getOpenApi(baseUrl: string): Promise<HttpAnswer<OpenApiBody>> {
  return fetchJson(`${baseUrl}/swagger.json`, {}) as Promise<HttpAnswer<OpenApiBody>>;
}

/** Polls `check` until it returns a truthy value or `timeoutMs` passes. */
export async function eventually<T>(check: () => T | Promise<T>, timeoutMs = 5000, what = 'condition'): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value) return value;
      last = value;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; last: ${String(last)}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

export interface NodeProcess {
  child: ChildProcess;
  /** What the process printed when ready. */
  info: { nodeId: string; httpPort?: number; [key: string]: unknown };
  /** Lines printed on stdout after the ready line. */
  lines: string[];
  /** Sends a command line to the process (see fixtures/node-process.ts). */
  command(line: string): void;
  /** Waits for a stdout line starting with `prefix`. */
  waitForLine(prefix: string, timeoutMs?: number): Promise<string>;
  /** SIGKILL, no goodbye. */
  kill(): Promise<void>;
  /** Graceful stop; resolves when the process exits. */
  stop(): Promise<void>;
  exited: Promise<number | null>;
}

const FIXTURE = fileURLToPath(new URL('../fixtures/node-process.js', import.meta.url));

/**
 * Starts a weft node in its own process (fixtures/node-process.ts), with
 * `env` describing it, and resolves once it is serving.
 */
export async function spawnNode(env: Record<string, string>, timeoutMs = 15000): Promise<NodeProcess> {
  const child = spawn(process.execPath, [FIXTURE], {
    env: { ...process.env, WEFT_SECRET: PROCESS_SECRET, ...env },
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const lines: string[] = [];
  const lineWaiters: { prefix: string; resolve: (l: string) => void }[] = [];
  let buffer = '';
  let readyResolve: (info: NodeProcess['info']) => void = () => {};
  const ready = new Promise<NodeProcess['info']>((r) => (readyResolve = r));
  child.stdout.on('data', (chunk: Buffer) => {
    buffer += chunk.toString('utf8');
    let cut;
    while ((cut = buffer.indexOf('\n')) >= 0) {
      const line = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 1);
      if (line.startsWith('READY ')) {
        readyResolve(JSON.parse(line.slice(6)) as NodeProcess['info']);
        continue;
      }
      lines.push(line);
      for (const w of [...lineWaiters]) {
        if (line.startsWith(w.prefix)) {
          lineWaiters.splice(lineWaiters.indexOf(w), 1);
          w.resolve(line);
        }
      }
    }
  });
  const exited = once(child, 'exit').then(([code]) => code as number | null);
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  const info = await Promise.race([
    ready,
    exited.then((code) => {
      throw new Error(`node process exited with ${code} before it was ready (env ${JSON.stringify(env)})`);
    }),
  ]);
  clearTimeout(timer);
  return {
    child,
    info,
    lines,
    exited,
    command(line) {
      child.stdin.write(`${line}\n`);
    },
    waitForLine(prefix, waitMs = 10000) {
      const found = lines.find((l) => l.startsWith(prefix));
      if (found !== undefined) return Promise.resolve(found);
      return new Promise((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`no line starting with ${prefix}`)), waitMs);
        lineWaiters.push({
          prefix,
          resolve: (l) => {
            clearTimeout(t);
            resolve(l);
          },
        });
      });
    },
    async kill() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    },
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.stdin.write('stop\n');
      await exited;
    },
  };
}

/** A handshake that must be refused: its status, headers and parsed JSON body. */
export async function refusedWs(
  url: string,
  options: { headers?: Record<string, string>; protocols?: string[] } = {},
): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: GatewayBody }> {
  try {
    const opened = await connectWs(url, options);
    opened.ws.terminate();
  } catch (e) {
    const refusal = e as Partial<RefusedHandshake>;
    assert.ok(refusal.status !== undefined, `expected an HTTP refusal, got ${String(e)}`);
    return { status: refusal.status, headers: refusal.headers ?? {}, body: JSON.parse(refusal.body ?? '') as GatewayBody };
  }
  return assert.fail(`expected ${url} to be refused, but it opened`);
}

/** The rejection of `p` as a WeftError (fails the test if `p` resolves or rejects with something else). */
export async function rejection(p: Promise<unknown>): Promise<WeftError> {
  try {
    const value = await p;
    assert.fail(`expected a rejection, got ${JSON.stringify(value)}`);
  } catch (e) {
    assert.ok(isWeftError(e), `expected a WeftError, got ${String(e)}`);
    return e;
  }
}
