/** Command-line options shared by run.js and run-all.js. */
import { execFileSync } from 'node:child_process';

function hasWrk(): boolean {
  try {
    execFileSync('wrk', ['--version'], { stdio: 'ignore' });
    return true;
  } catch (err) {
    // wrk --version exits 1 after printing its usage; only a missing binary is ENOENT.
    return (err as { code?: string }).code !== 'ENOENT';
  }
}
export interface BenchOptions {
  /** Seconds each measured phase lasts. */
  durationS: number;
  /** push / push-http: sessions and businessIds (2 sessions each by default). */
  sessions: number;
  businessIds: number;
  /** sessions scenario: idle sessions. */
  idleSessions: number;
  /** fan-out: sessions of the one businessId, and most pushes in flight. */
  fanout: number;
  fanoutWindow: number;
  /** Fixed-rate mode, pushes per second. */
  rate: number;
  /** Most pushes in flight in the max mode. */
  window: number;
  payloadBytes: number;
  /** http-rpc connections and warm-up seconds. */
  httpConnections: number;
  warmupS: number;
  /** http-rpc's load generator: wrk when installed, else autocannon. */
  httpTool: 'wrk' | 'autocannon';
  /** push-http: keep-alive connections of the generator. */
  pushConnections: number;
  /** maxConcurrentCalls of weft's hosts; undefined: weft's default (10,000, the size of the push window). */
  hostMaxCalls: number | undefined;
  /** WebSocket client processes. */
  clientProcs: number;
  /** Runs per scenario; the summary is the median. */
  runs: number;
  /**
   * Only these systems (weft, weft-colocated, raw-ws-inproc, raw-ws-tcp, raw-ws-http, raw-http, moleculer-web,
   * moleculer-web-1-process, raw-ws, socketio; history: "history off", "history on", "history on (weft/client)", resume, memory); all when undefined.
   */
  systems: string[] | undefined;
  /** push, push-http: only these phases (max, max-10k, rate); all when undefined. */
  phases: string[] | undefined;
  redisUrl: string;
  /** http-rpc: the NATS server moleculer-web's remote layout talks through. */
  natsUrl: string;
  /** Where run-all writes <timestamp>.json; empty for nowhere. */
  outDir: string;
  /** Most seconds to wait for deliveries still under way after a phase. */
  drainS: number;
  /** history: most pushes in flight (both phases, and the memory fill). */
  historyWindow: number;
  /** history: reconnects timed for each resume figure (median). */
  reconnects: number;
  /** cluster: `redis` (one server) or `cluster` (a Redis Cluster); both when undefined. */
  engine: string | undefined;
}

export const DEFAULT_OPTIONS: BenchOptions = {
  durationS: 10,
  sessions: 2000,
  businessIds: 1000,
  idleSessions: 10_000,
  fanout: 1000,
  fanoutWindow: 100,
  rate: 2000,
  window: 10_000,
  payloadBytes: 100,
  httpConnections: 50,
  warmupS: 3,
  httpTool: hasWrk() ? 'wrk' : 'autocannon',
  pushConnections: 100,
  hostMaxCalls: undefined,
  clientProcs: 2,
  runs: 1,
  systems: undefined,
  phases: undefined,
  redisUrl: process.env['WEFT_REDIS_URL'] ?? 'redis://127.0.0.1:6379',
  natsUrl: process.env['WEFT_NATS_URL'] ?? 'nats://127.0.0.1:4222',
  outDir: '',
  drainS: 10,
  historyWindow: 500,
  reconnects: 20,
  engine: undefined,
};

const FLAGS: Record<string, keyof BenchOptions> = {
  duration: 'durationS',
  sessions: 'sessions',
  'business-ids': 'businessIds',
  'idle-sessions': 'idleSessions',
  fanout: 'fanout',
  'fanout-window': 'fanoutWindow',
  rate: 'rate',
  window: 'window',
  'payload-bytes': 'payloadBytes',
  'http-connections': 'httpConnections',
  warmup: 'warmupS',
  'http-tool': 'httpTool',
  'push-connections': 'pushConnections',
  'client-procs': 'clientProcs',
  'host-max-calls': 'hostMaxCalls',
  runs: 'runs',
  systems: 'systems',
  phases: 'phases',
  redis: 'redisUrl',
  nats: 'natsUrl',
  out: 'outDir',
  drain: 'drainS',
  'history-window': 'historyWindow',
  reconnects: 'reconnects',
  engine: 'engine',
};

export const USAGE = `options:
  --duration S          seconds per measured phase (10)
  --sessions N          push/push-http sessions (2000); --business-ids N (sessions/2)
  --idle-sessions N     sessions scenario (10000)
  --fanout N            fan-out sessions of one businessId (1000)
  --fanout-window N     fan-out: most pushes in flight (100)
  --rate N              fixed-rate mode pushes/s (2000)
  --window N            most pushes in flight in max mode (10000)
  --payload-bytes N     push payload size (100)
  --http-connections N  http-rpc connections (50); --warmup S (3)
  --http-tool T         http-rpc load: wrk (default when installed) or autocannon
  --push-connections N  push-http generator connections (100)
  --client-procs N      WebSocket client processes (2)
  --host-max-calls N    maxConcurrentCalls of weft's hosts (default: weft's own, 10000)
  --runs N              runs per scenario, median reported (1)
  --systems a,b         only these: weft, weft-colocated, raw-ws-inproc, raw-ws-tcp, raw-ws-http, raw-http, raw-ws, socketio;
                        http-rpc: moleculer-web (remote over NATS), moleculer-web-1-process;
                        history: "history off", "history on", "history on (weft/client)", resume, memory; cluster: scaling, kill
  --phases a,b          push, push-http: only these phases (max, max-10k, rate)
  --redis URL           (redis://127.0.0.1:6379)
  --nats URL            http-rpc: NATS for moleculer-web's remote layout (nats://127.0.0.1:4222)
  --out DIR             write <timestamp>.json there
  --drain S             most seconds to wait for late deliveries (10)
  --history-window N    history and cluster: most pushes in flight (500)
  --reconnects N        history: reconnects per resume figure, median reported (20)
  --engine E            cluster: redis (one server) or cluster (a Redis Cluster); both by default`;

/** Parses `--name value` flags; the rest are positional. */
export function parseArgs(argv: string[], defaults: Partial<BenchOptions> = {}): { options: BenchOptions; positional: string[] } {
  const options: BenchOptions = { ...DEFAULT_OPTIONS, ...defaults };
  const positional: string[] = [];
  let businessIdsGiven = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (!a.startsWith('--')) {
      positional.push(a);
      continue;
    }
    const [name, inline] = a.slice(2).split('=', 2) as [string, string | undefined];
    if (name === 'help') {
      console.log(USAGE);
      process.exit(0);
    }
    const key = FLAGS[name];
    if (key === undefined) throw new Error(`unknown option --${name}\n${USAGE}`);
    const value = inline ?? argv[++i];
    if (value === undefined) throw new Error(`--${name} needs a value`);
    if (key === 'systems' || key === 'phases') options[key] = value.split(',').map((s) => s.trim());
    else if (key === 'redisUrl' || key === 'natsUrl' || key === 'outDir' || key === 'engine') options[key] = value;
    else if (key === 'httpTool') {
      if (value !== 'wrk' && value !== 'autocannon') throw new Error('--http-tool is wrk or autocannon');
      if (value === 'wrk' && !hasWrk()) throw new Error('wrk is not installed (apt-get install wrk)');
      options.httpTool = value;
    } else {
      const n = Number(value);
      if (!Number.isFinite(n) || n <= 0) throw new Error(`--${name} must be a positive number`);
      (options as unknown as Record<string, number>)[key] = n;
      if (key === 'businessIds') businessIdsGiven = true;
    }
  }
  if (!businessIdsGiven) options.businessIds = Math.max(1, Math.floor(options.sessions / 2));
  return { options, positional };
}

export function wants(options: BenchOptions, system: string): boolean {
  return options.systems === undefined || options.systems.includes(system);
}
