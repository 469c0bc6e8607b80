/**
 * The child side of a benchmark process: commands arrive over the IPC
 * channel as {id, cmd, args} and are answered with {id, ok, result|error}.
 * The process exits when its parent goes away (IPC disconnect), so a
 * crashed or killed harness leaves no orphans.
 */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { PerformanceObserver } from 'node:perf_hooks';
import { writeHeapSnapshot } from 'node:v8';
import { pino } from 'pino';
import type { Logger } from '../../src/index.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Handler = (args: any) => unknown;

interface Command {
  id?: number;
  cmd?: string;
  type?: string;
  args?: unknown;
}

const listeners = new Map<string, (data: unknown) => void>();

/** GC pauses since the last reset: a pause lands in the latency of whatever frame waits behind it. */
export interface GcPauses {
  /** Every kind of pause: scavenges, mark-compact, incremental marking steps. */
  pausedMs: number;
  longestMs: number;
  /** Wall time the counts cover. */
  sinceMs: number;
}

let gcSince = performance.now();
let gcPausedMs = 0;
let gcLongestMs = 0;
// Every bench process counts its pauses the same way, weft's and the baselines' alike.
new PerformanceObserver((list) => {
  for (const entry of list.getEntries()) {
    gcPausedMs += entry.duration;
    gcLongestMs = Math.max(gcLongestMs, entry.duration);
  }
}).observe({ entryTypes: ['gc'] });

function resetGcPauses(): true {
  gcPausedMs = 0;
  gcLongestMs = 0;
  gcSince = performance.now();
  return true;
}

/** The arguments the parent started this process with. */
export function childArgs<T>(): T {
  return JSON.parse(process.env['BENCH_ARGS'] ?? '{}') as T;
}

/** Logs only warnings and errors, to stderr, so logging does not distort figures. */
export function benchLogger(): Logger {
  return pino({ level: process.env['BENCH_LOG'] ?? 'warn' }, pino.destination(2));
}

/** Memory after a forced GC (the process runs with --expose-gc). */
export function memoryAfterGc(): NodeJS.MemoryUsage {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc === undefined) throw new Error('start this process with --expose-gc');
  gc();
  gc();
  return process.memoryUsage();
}

/** Sends an unsolicited message to the parent (for example delivery counts). */
export function emit(type: string, data: unknown): void {
  process.send?.({ type, data });
}

/** Handles an unsolicited message from the parent. */
export function onParentMessage(type: string, fn: (data: unknown) => void): void {
  listeners.set(type, fn);
}

/** Serves commands; tells the parent it is ready with `info`. */
export function serve(handlers: Record<string, Handler>, info: Record<string, unknown> = {}): void {
  if (process.send === undefined) throw new Error('a benchmark process must be started by the harness (IPC)');
  const all: Record<string, Handler> = {
    mem: () => settledMemory(),
    resetGc: () => resetGcPauses(),
    gc: (): GcPauses => ({ pausedMs: gcPausedMs, longestMs: gcLongestMs, sinceMs: performance.now() - gcSince }),
    exit: () => {
      setImmediate(() => process.exit(0));
      return true;
    },
    ...handlers,
  };
  process.on('message', (m: Command) => {
    if (m.type !== undefined) {
      listeners.get(m.type)?.((m as { data?: unknown }).data);
      return;
    }
    const id = m.id!;
    const handler = all[m.cmd ?? ''];
    if (handler === undefined) {
      process.send!({ id, ok: false, error: `unknown command ${m.cmd}` });
      return;
    }
    Promise.resolve()
      .then(() => handler(m.args ?? {}))
      .then(
        (result) => process.send!({ id, ok: true, result }),
        (err: unknown) => process.send!({ id, ok: false, error: err instanceof Error ? `${err.message}\n${err.stack}` : String(err) }),
      );
  });
  process.on('disconnect', () => process.exit(0));
  process.send({ type: 'ready', data: { pid: process.pid, ...info } });
}

/**
 * Memory once the heap has settled: four full GCs 250 ms apart. One GC
 * right after a burst leaves pages V8 has freed but not yet returned
 * (its unmapper and memory reducer work in the background), which showed
 * as tens of MB of RSS that a later reading no longer had.
 */
export async function settledMemory(): Promise<NodeJS.MemoryUsage> {
  for (let round = 0; round < 3; round++) {
    memoryAfterGc();
    await new Promise((r) => setTimeout(r, 250));
  }
  const memory = memoryAfterGc();
  // BENCH_HEAP_SNAPSHOT=gateway: a heap snapshot at each reading, in bench/out/profiles (diff two in DevTools).
  const name = process.env['BENCH_NAME'] ?? '';
  if ((process.env['BENCH_HEAP_SNAPSHOT'] ?? '').split(',').includes(name)) {
    const dir = path.resolve('bench/out/profiles');
    mkdirSync(dir, { recursive: true });
    writeHeapSnapshot(path.join(dir, `${name}-${Date.now()}.heapsnapshot`));
  }
  return memory;
}

/** Reports a startup failure to the parent and exits. */
export function failStart(err: unknown): never {
  process.stderr.write(`bench child failed to start: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(2);
}
