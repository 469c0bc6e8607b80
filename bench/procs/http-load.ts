/**
 * The HTTP load generator, its own process:
 * - `pushes`: push-http's generator, GET <path>?businessId=&payload= over
 *   keep-alive connections (bench/lib/http-pool.ts), `max` or `rate` mode;
 * - `autocannon`: http-rpc's load, autocannon's programmatic API;
 * - `wrk`: the same with Debian's wrk (one thread), when installed: it takes
 *   less CPU from the servers it measures, and its latencies are in µs.
 */
import { spawn } from 'node:child_process';
import autocannon from 'autocannon';
import { childArgs, failStart, serve } from '../lib/child.js';
import { nowUs } from '../lib/clock.js';
import { Generator, type GenSpec } from '../lib/generator.js';
import { Histogram } from '../lib/histogram.js';
import { HttpPool } from '../lib/http-pool.js';

childArgs<Record<string, never>>();

interface PushArgs {
  port: number;
  path: string;
  connections: number;
  spec: GenSpec;
}

const RESULT = Buffer.from('"result":');

function resultOf(body: Buffer): number {
  const i = body.indexOf(RESULT);
  if (i < 0) return 0;
  let n = 0;
  for (let j = i + RESULT.length; j < body.length; j++) {
    const c = body[j]!;
    if (c < 48 || c > 57) break;
    n = n * 10 + (c - 48);
  }
  return n;
}

async function pushes(a: PushArgs) {
  const pool = new HttpPool('127.0.0.1', a.port, a.connections);
  const hist = new Histogram();
  const gen = new Generator();
  try {
    const result = await gen.run(a.spec, (bid, payload) => {
      const t0 = nowUs();
      return pool.get(`${a.path}?businessId=${bid}&payload=${encodeURIComponent(payload)}`).then((r) => {
        hist.record(nowUs() - t0);
        if (r.status !== 200) throw Object.assign(new Error(`HTTP ${r.status}`), { code: `HTTP ${r.status}` });
        return resultOf(r.body);
      });
    });
    const s = hist.summaryMs();
    return { ...result, httpP50Ms: s.p50Ms, httpP99Ms: s.p99Ms };
  } finally {
    pool.close();
  }
}

function cannon(o: { url: string; connections: number; seconds: number }): Promise<autocannon.Result> {
  return new Promise((resolve, reject) => {
    autocannon({ url: o.url, connections: o.connections, duration: o.seconds }, (err: Error | null, result) => (err ? reject(err) : resolve(result)));
  });
}

/** `635.00us`, `3.10ms`, `1.02s` in milliseconds. */
function wrkMs(text: string): number {
  const m = /([\d.]+)(us|ms|s)\b/.exec(text);
  if (m === null) return Number.NaN;
  const v = Number(m[1]);
  return m[2] === 'us' ? v / 1000 : m[2] === 'ms' ? v : v * 1000;
}

function wrk(o: { url: string; connections: number; seconds: number }) {
  return new Promise<Record<string, number>>((resolve, reject) => {
    const child = spawn('wrk', ['-t1', `-c${o.connections}`, `-d${o.seconds}s`, '--latency', o.url], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.on('error', reject);
    child.on('exit', (code) => {
      if (code !== 0) return reject(new Error(`wrk exited with ${code}: ${out}`));
      const line = (re: RegExp): string => re.exec(out)?.[1] ?? '';
      const total = Number(line(/(\d+) requests in/));
      const socketErrors = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
      resolve({
        requests: total,
        requestsPerSec: Math.round(Number(line(/Requests\/sec:\s+([\d.]+)/))),
        p50Ms: wrkMs(line(/\s50%\s+(\S+)/)),
        p99Ms: wrkMs(line(/\s99%\s+(\S+)/)),
        non2xx: Number(line(/Non-2xx or 3xx responses: (\d+)/) || 0),
        errors: socketErrors === null ? 0 : Number(socketErrors[1]) + Number(socketErrors[2]) + Number(socketErrors[3]),
        timeouts: socketErrors === null ? 0 : Number(socketErrors[4]),
      });
    });
  });
}

try {
  serve({
    wrk: (a: { url: string; connections: number; durationS: number }) => wrk({ url: a.url, connections: a.connections, seconds: a.durationS }),
    pushes,
    autocannon: async (a: { url: string; connections: number; durationS: number }) => {
      const r = await cannon({ url: a.url, connections: a.connections, seconds: a.durationS });
      return {
        requests: r.requests.total,
        requestsPerSec: Math.round(r.requests.total / r.duration),
        p50Ms: r.latency.p50,
        p99Ms: r.latency.p99,
        non2xx: r.non2xx,
        errors: r.errors,
        timeouts: r.timeouts,
      };
    },
  });
} catch (err) {
  failStart(err);
}
