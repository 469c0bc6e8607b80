/**
 * The parent side: starts benchmark processes (each its own Node process,
 * with --expose-gc and an IPC channel), calls their commands, reads their
 * CPU time from /proc, and kills every one of them when the harness exits
 * or fails.
 */
import { execFileSync, fork, type ChildProcess } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { GcPauses } from './child.js';

const PROCS_DIR = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'procs');

let clkTck = 0;
/** Clock ticks per second of /proc/<pid>/stat (getconf CLK_TCK, normally 100). */
export function clockTicks(): number {
  if (clkTck === 0) {
    try {
      clkTck = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      clkTck = 100;
    }
  }
  return clkTck;
}

/**
 * utime + stime of a process, in seconds, plus those of its children that
 * ended (cutime + cstime: wrk, run by the HTTP load process); NaN if it is gone.
 */
export function cpuSecondsOf(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // After "pid (comm) ", field 3 (state) is index 0: utime, stime, cutime, cstime are fields 14-17.
    return (Number(fields[11]) + Number(fields[12]) + Number(fields[13]) + Number(fields[14])) / clockTicks();
  } catch {
    return Number.NaN;
  }
}

/** CPU of a server the harness did not start (NATS for moleculer-web), found by its command name. */
export class ServerCpuWatch {
  readonly #pid: number;
  #mark = 0;

  /** Watches the first process named `comm` (/proc/<pid>/comm); its CPU reads NaN when there is none. */
  constructor(comm: string) {
    this.#pid = pidByName(comm);
  }

  markCpu(): void {
    this.#mark = this.#pid === 0 ? 0 : cpuSecondsOf(this.#pid);
  }

  cpuSinceMark(): number {
    return this.#pid === 0 ? Number.NaN : Math.round((cpuSecondsOf(this.#pid) - this.#mark) * 100) / 100;
  }
}

function pidByName(comm: string): number {
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/comm`, 'utf8').trim() === comm) return Number(entry);
    } catch {
      // gone meanwhile
    }
  }
  return 0;
}

/** Resident set size from /proc/<pid>/status, in bytes. */
export function rssOf(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m === null ? Number.NaN : Number(m[1]) * 1024;
  } catch {
    return Number.NaN;
  }
}

/** CPU seconds the whole machine was busy (all CPUs; /proc/stat, idle and iowait excluded). */
export function boxBusySeconds(): number {
  try {
    const f = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!.trim().split(/\s+/).slice(1).map(Number);
    // user nice system idle iowait irq softirq steal
    return ((f[0] ?? 0) + (f[1] ?? 0) + (f[2] ?? 0) + (f[5] ?? 0) + (f[6] ?? 0) + (f[7] ?? 0)) / clockTicks();
  } catch {
    return Number.NaN;
  }
}

const live = new Set<ChildProcess>();
let cleanupInstalled = false;
const interruptHooks = new Set<() => Promise<unknown>>();

/** Runs `fn` (at most 3 s) if the harness is interrupted; returns a function that unregisters it. */
export function onInterrupt(fn: () => Promise<unknown>): () => void {
  interruptHooks.add(fn);
  return () => interruptHooks.delete(fn);
}

function killAllNow(): void {
  for (const child of live) {
    try {
      child.kill('SIGKILL');
    } catch {
      // already gone
    }
  }
  live.clear();
}

function installCleanup(): void {
  if (cleanupInstalled) return;
  cleanupInstalled = true;
  process.on('exit', killAllNow);
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.on(sig, () => {
      process.stderr.write(`\nbench: ${sig}, killing ${live.size} child processes and deleting this run's Redis keys\n`);
      killAllNow();
      const hooks = [...interruptHooks].map((fn) => fn().catch(() => undefined));
      const timeout = new Promise((r) => setTimeout(r, 3000));
      void Promise.race([Promise.all(hooks), timeout]).then(() => process.exit(130));
    });
  }
}

interface Pending {
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
}

export class Proc {
  readonly name: string;
  readonly child: ChildProcess;
  info: Record<string, unknown> = {};
  #nextId = 1;
  readonly #pending = new Map<number, Pending>();
  readonly #listeners = new Map<string, (data: unknown) => void>();
  #exited: string | undefined;
  #cpuMark = 0;

  constructor(name: string, child: ChildProcess) {
    this.name = name;
    this.child = child;
    child.on('message', (m: { id?: number; ok?: boolean; result?: unknown; error?: string; type?: string; data?: unknown }) => {
      if (m.type !== undefined) {
        this.#listeners.get(m.type)?.(m.data);
        return;
      }
      const p = this.#pending.get(m.id ?? -1);
      if (p === undefined) return;
      this.#pending.delete(m.id!);
      clearTimeout(p.timer);
      if (m.ok === true) p.resolve(m.result);
      else p.reject(new Error(`${this.name}: ${m.error ?? 'failed'}`));
    });
    child.on('exit', (code, signal) => {
      live.delete(child);
      this.#exited = `${this.name} (pid ${child.pid}) exited with ${signal ?? `code ${code}`}`;
      for (const p of this.#pending.values()) {
        clearTimeout(p.timer);
        p.reject(new Error(this.#exited));
      }
      this.#pending.clear();
    });
  }

  get pid(): number {
    return this.child.pid!;
  }

  get exited(): string | undefined {
    return this.#exited;
  }

  on(type: string, fn: (data: unknown) => void): void {
    this.#listeners.set(type, fn);
  }

  /** An unsolicited message to the child. */
  send(type: string, data: unknown): void {
    if (this.#exited === undefined && this.child.connected) this.child.send({ type, data });
  }

  call<T = unknown>(cmd: string, args: unknown = {}, timeoutMs = 120_000): Promise<T> {
    if (this.#exited !== undefined) return Promise.reject(new Error(this.#exited));
    return new Promise<T>((resolve, reject) => {
      const id = this.#nextId++;
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(new Error(`${this.name}: ${cmd} took over ${timeoutMs} ms`));
      }, timeoutMs);
      this.#pending.set(id, { resolve: resolve as (v: unknown) => void, reject, timer });
      this.child.send({ id, cmd, args });
    });
  }

  /** CPU seconds since the last mark (or since start). */
  cpuSinceMark(): number {
    return cpuSecondsOf(this.pid) - this.#cpuMark;
  }

  markCpu(): void {
    this.#cpuMark = cpuSecondsOf(this.pid);
  }

  /** Asks it to exit, then kills it if it has not within `graceMs`. */
  async stop(graceMs = 3000): Promise<void> {
    if (this.#exited !== undefined) return;
    const gone = new Promise<void>((r) => this.child.once('exit', () => r()));
    this.call('exit', {}, graceMs).catch(() => undefined);
    const timer = setTimeout(() => this.child.kill('SIGKILL'), graceMs);
    await gone;
    clearTimeout(timer);
  }
}

/**
 * Starts `bench/procs/<script>.js` as its own process and waits until it
 * says it is ready.
 */
export function startProc(name: string, script: string, args: Record<string, unknown> = {}, readyTimeoutMs = 30_000): Promise<Proc> {
  installCleanup();
  // BENCH_PROFILE=gateway,ws-host writes a CPU profile of those processes to bench/out/profiles.
  // BENCH_HEAP_PROFILE=ws-host writes a sampling heap (allocation) profile the same way.
  const profiled = (process.env['BENCH_PROFILE'] ?? '').split(',').includes(name);
  const heapProfiled = (process.env['BENCH_HEAP_PROFILE'] ?? '').split(',').includes(name);
  const profileDir = path.resolve('bench/out/profiles');
  // BENCH_NODE_ARGS_<name> (dashes as underscores) adds Node flags to one process, e.g.
  // BENCH_NODE_ARGS_ws_host='--trace-gc'.
  const extra = process.env[`BENCH_NODE_ARGS_${name.replace(/-/g, '_')}`] ?? '';
  const execArgv = ['--expose-gc', ...extra.split(' ').filter((a) => a !== '')];
  if (profiled) execArgv.push('--cpu-prof', `--cpu-prof-dir=${profileDir}`, `--cpu-prof-name=${name}-${Date.now()}.cpuprofile`);
  if (heapProfiled) execArgv.push('--heap-prof', `--heap-prof-dir=${profileDir}`, `--heap-prof-name=${name}-${Date.now()}.heapprofile`);
  // BENCH_SURVIVORS=gateway: where what survives the scavenges was allocated (survivors.ts).
  if ((process.env['BENCH_SURVIVORS'] ?? '').split(',').includes(name)) {
    mkdirSync(profileDir, { recursive: true });
    execArgv.push('--import', pathToFileURL(path.join(path.dirname(fileURLToPath(import.meta.url)), 'survivors.js')).href);
  }
  const child = fork(path.join(PROCS_DIR, `${script}.js`), [], {
    execArgv,
    env: { ...process.env, BENCH_ARGS: JSON.stringify(args), BENCH_NAME: name },
    // Children never write to our stdout: it carries the JSON line.
    stdio: ['ignore', 2, 2, 'ipc'],
    serialization: 'advanced',
  });
  live.add(child);
  const proc = new Proc(name, child);
  return new Promise<Proc>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${name} did not become ready within ${readyTimeoutMs} ms`));
    }, readyTimeoutMs);
    proc.on('ready', (data) => {
      clearTimeout(timer);
      proc.info = data as Record<string, unknown>;
      proc.markCpu();
      resolve(proc);
    });
    child.once('exit', () => {
      clearTimeout(timer);
      reject(new Error(proc.exited ?? `${name} exited before it was ready`));
    });
  });
}

/** The processes of one system under test, stopped together. */
export class ProcGroup {
  readonly procs: Proc[] = [];
  #boxMark = 0;

  async start(name: string, script: string, args: Record<string, unknown> = {}): Promise<Proc> {
    const p = await startProc(name, script, args);
    this.procs.push(p);
    return p;
  }

  markCpu(): void {
    for (const p of this.procs) p.markCpu();
    this.#boxMark = boxBusySeconds();
  }

  /**
   * CPU seconds the machine spent since the mark outside the processes in
   * `cpu` (other people's work on a shared machine, the harness itself): a
   * large value means the figures of that phase were disturbed.
   */
  restOfBox(cpu: Record<string, number>): number {
    const ours = Object.values(cpu)
      .filter((v) => !Number.isNaN(v))
      .reduce((a, b) => a + b, 0);
    return Math.max(0, Math.round((boxBusySeconds() - this.#boxMark - ours) * 100) / 100);
  }

  /** CPU seconds per process since the last mark. */
  cpu(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const p of this.procs) out[p.name] = Math.round(p.cpuSinceMark() * 100) / 100;
    return out;
  }

  /** Starts every process's GC pause count afresh. */
  async resetGc(): Promise<void> {
    await Promise.all(this.procs.map((p) => p.call('resetGc')));
  }

  /** GC pauses per process since the last `resetGc`. */
  async gcPauses(): Promise<Record<string, GcPauses>> {
    const each = await Promise.all(this.procs.map(async (p) => [p.name, await p.call<GcPauses>('gc')] as const));
    return Object.fromEntries(each);
  }

  /** Throws if any process died. */
  check(): void {
    for (const p of this.procs) if (p.exited !== undefined) throw new Error(p.exited);
  }

  async stopAll(): Promise<void> {
    await Promise.all(this.procs.map((p) => p.stop()));
    this.procs.length = 0;
  }
}
