/**
 * registry: the bytes Redis moves to keep every node's view of the cluster,
 * for 10, 50 and 100 simulated nodes, the previous design and the current
 * one in the same run (docs/architecture.md, "Registry cost").
 *
 * A simulated node is a real registry (its own RedisConnection: a command
 * and a subscriber socket, as a node has) that registers a record like a
 * host's with 10 services of 10 methods, and serves nothing: no link server,
 * no directory. Registrations are spread over one heartbeat interval, as
 * nodes started at different times are. Each phase has a Redis of its own
 * (redis-server on a free port, saving nothing), so INFO counts only the
 * registries: `total_net_input_bytes` / `total_net_output_bytes` and
 * `total_commands_processed` deltas over `--duration` seconds, from
 * SETTLE_MS after the last registration.
 *
 * - previous: bench/lib/previous-redis-registry.ts, the design before
 *   versioned records (each heartbeat rewrites the record and reloads every
 *   record). Not shipped. At the default interval its 100 nodes would ask
 *   for over 700 MiB/s; its heartbeats overlap when they cannot keep up, and
 *   this machine would queue GiBs of replies. So it runs at the default
 *   interval only where it asks for at most PREVIOUS_MAX_BYTES_PER_SEC, and
 *   at a multiple of it (TTL scaled alike) elsewhere, said in a note. What a
 *   heartbeat moves does not depend on the interval: `B/s due` is bytes per
 *   heartbeat x heartbeats due per second at the default interval (nodes /
 *   2 s), what the design asks of Redis. A phase stops early if Redis holds
 *   more than MEMORY_GUARD_BYTES.
 * - current: src/registry/redis-registry.ts, at the default interval.
 *
 * A heartbeat is counted by Redis (INFO commandstats): the previous design's
 * MGET of every record, the current one's EVALSHA of its heartbeat script.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import net from 'node:net';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { Type, defineContract, param, type Logger } from '../../src/index.js';
import { DEFAULTS } from '../../src/defaults.js';
import { RedisConnection } from '../../src/redis/redis-connection.js';
import { RedisRegistry } from '../../src/registry/redis-registry.js';
import type { NodeRecord, Registry, ServiceRecord } from '../../src/registry/registry.js';
import { sleep } from '../lib/clock.js';
import type { BenchOptions } from '../lib/options.js';
import { wants } from '../lib/options.js';
import { PreviousRedisRegistry } from '../lib/previous-redis-registry.js';
import { cpuSecondsOf } from '../lib/procs.js';
import type { RedisWatch } from '../lib/redis.js';
import type { Row } from '../lib/result.js';

const NODE_COUNTS = [10, 50, 100];
const SERVICES_PER_NODE = 10;
const METHODS_PER_SERVICE = 10;
/**
 * The previous design's heartbeat is stretched so that what it asks of Redis stays under this (its
 * heartbeats overlap, and 100 nodes at 2 s would queue GiBs of replies on this machine); its
 * bytes per heartbeat do not depend on the interval, and `B/s due` gives them at the default one.
 */
const PREVIOUS_MAX_BYTES_PER_SEC = 80 * 1024 ** 2;
/** Past this much Redis memory a phase stops: the previous design's queued replies would grow without bound. */
const MEMORY_GUARD_BYTES = 3 * 1024 ** 3;

interface Design {
  system: 'previous' | 'current';
  nodeCounts: number[];
  /** The heartbeat interval to run `nodes` at, given the default and a record's size. */
  heartbeatMs(nodes: number, defaultMs: number, recordBytes: number): number;
  /** The command each heartbeat sends once (INFO commandstats name). */
  heartbeatCommand: string;
  create(redis: RedisConnection, options: { prefix: string; ttlMs: number; heartbeatMs: number; logger: Logger }): Registry;
}

const DESIGNS: Design[] = [
  {
    system: 'previous',
    // Not 100: this process would hold 100 views of 100 records, as strings and parsed (GiBs), and
    // did not reach a steady state in 5 minutes; bench/RESULTS.md gives its figure from the 50's.
    nodeCounts: [10, 50],
    // Each heartbeat of each node reads every record: nodes^2 records per interval.
    heartbeatMs: (nodes, defaultMs, recordBytes) =>
      defaultMs * Math.max(1, Math.ceil((nodes * nodes * recordBytes) / (defaultMs / 1000) / PREVIOUS_MAX_BYTES_PER_SEC)),
    heartbeatCommand: 'mget',
    create: (redis, options) => new PreviousRedisRegistry(redis, options),
  },
  {
    system: 'current',
    nodeCounts: NODE_COUNTS,
    heartbeatMs: (_nodes, defaultMs) => defaultMs,
    heartbeatCommand: 'evalsha',
    create: (redis, options) => new RedisRegistry(redis, options),
  },
];

/** A contract like a real service's: 10 methods, each with a path id, a body object and a result object, described. */
function simulatedService(i: number): ServiceRecord {
  const item = Type.Object({
    id: Type.String({ minLength: 1, maxLength: 64, description: 'The stable id of the item' }),
    name: Type.String({ maxLength: 200 }),
    quantity: Type.Integer({ minimum: 0 }),
    price: Type.Number({ minimum: 0 }),
    tags: Type.Array(Type.String({ maxLength: 32 }), { maxItems: 20 }),
  });
  const methods = Object.fromEntries(
    Array.from({ length: METHODS_PER_SERVICE }, (_, m) => [
      `operation${m}`,
      {
        params: [
          param('accountId', Type.String({ minLength: 1, maxLength: 64 }), { description: 'The account the operation acts for' }),
          param('item', item),
          param('dryRun', Type.Optional(Type.Boolean()), { description: 'Check the change and return it without storing it' }),
        ],
        returns: Type.Object({ item, version: Type.Integer(), warnings: Type.Array(Type.String()) }),
        timeoutMs: 5000,
        description: `Operation ${m} of service ${i}: changes one item of an account and returns it as stored.`,
      },
    ]),
  );
  return { contract: defineContract({ name: `ISimulated${i}AppService`, methods }).descriptor };
}

function simulatedRecord(nodeId: string, services: ServiceRecord[]): NodeRecord {
  return { nodeId, role: 'host', address: { host: '10.0.0.1', port: 7000 }, services, startedAt: Date.now(), protocol: 1 };
}

async function freePort(): Promise<number> {
  const server = net.createServer().listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as net.AddressInfo;
  server.close();
  return port;
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/** A redis-server of this phase's own, saving nothing. */
async function startRedis(): Promise<{ url: string; client: Redis; child: ChildProcess; stop: () => Promise<void> }> {
  const port = await freePort();
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
  const url = `redis://127.0.0.1:${port}`;
  for (let i = 0; !(await accepts(port)); i++) {
    if (i > 50 || child.exitCode !== null) {
      child.kill('SIGKILL');
      throw new Error(`redis-server on port ${port} did not start`);
    }
    await sleep(100);
  }
  const client = new Redis(url, { maxRetriesPerRequest: 1 });
  client.on('error', () => {});
  await client.ping();
  return {
    url,
    client,
    child,
    stop: async () => {
      client.disconnect();
      child.kill('SIGKILL');
      if (child.exitCode === null) await once(child, 'exit');
    },
  };
}

interface Counters {
  inBytes: number;
  outBytes: number;
  commands: number;
  heartbeats: number;
  atMs: number;
}

async function counters(redis: Redis, heartbeatCommand: string): Promise<Counters> {
  const stats = await redis.info('stats');
  const commandStats = await redis.info('commandstats');
  const field = (text: string, name: string): number => Number(new RegExp(`${name}(\\d+)`).exec(text)?.[1] ?? 0);
  return {
    inBytes: field(stats, 'total_net_input_bytes:'),
    outBytes: field(stats, 'total_net_output_bytes:'),
    commands: field(stats, 'total_commands_processed:'),
    heartbeats: field(commandStats, `cmdstat_${heartbeatCommand}:calls=`),
    atMs: Date.now(),
  };
}

const quiet: Logger = pino({ level: 'silent' });

/** How long after the last registration the window starts: every announcement handled, every timer running. */
const SETTLE_MS = 3000;

async function phase(design: Design, nodes: number, services: ServiceRecord[], o: BenchOptions, log: (s: string) => void): Promise<Row> {
  const defaultMs = DEFAULTS.registryHeartbeatMs;
  const recordBytes = Buffer.byteLength(JSON.stringify(simulatedRecord('sim-0', services)));
  const heartbeatMs = design.heartbeatMs(nodes, defaultMs, recordBytes);
  const ttlMs = (DEFAULTS.registryTtlMs * heartbeatMs) / defaultMs;
  const redis = await startRedis();
  const notes: string[] = [];
  const registries: Registry[] = [];
  try {
    const pid = Number(/process_id:(\d+)/.exec(await redis.client.info('server'))?.[1] ?? 0);
    for (let i = 0; i < nodes; i++) {
      const registry = design.create(new RedisConnection({ target: redis.url, logger: quiet }), {
        prefix: 'weft-bench-registry',
        ttlMs,
        heartbeatMs,
        logger: quiet,
      });
      registries.push(registry);
      await registry.start();
      await registry.register(simulatedRecord(`sim-${i}`, services));
      // Spread over one interval, as nodes started at different times are.
      await sleep(heartbeatMs / nodes);
    }
    await sleep(SETTLE_MS);
    const cpu0 = { bench: process.cpuUsage(), redis: cpuSecondsOf(pid) };
    const start = await counters(redis.client, design.heartbeatCommand);
    const endAt = start.atMs + o.durationS * 1000;
    while (Date.now() < endAt) {
      await sleep(500);
      const used = Number(/used_memory:(\d+)/.exec(await redis.client.info('memory'))?.[1] ?? 0);
      if (used > MEMORY_GUARD_BYTES) {
        notes.push(
          `stopped after ${((Date.now() - start.atMs) / 1000).toFixed(1)} s: Redis held ${(used / 1024 ** 3).toFixed(1)} GiB of queued replies`,
        );
        break;
      }
    }
    const end = await counters(redis.client, design.heartbeatCommand);
    const cpuBench = process.cpuUsage(cpu0.bench);
    const seconds = (end.atMs - start.atMs) / 1000;
    const heartbeats = end.heartbeats - start.heartbeats;
    const bytes = end.inBytes - start.inBytes + (end.outBytes - start.outBytes);
    const due = nodes / (defaultMs / 1000);
    const run = nodes / (heartbeatMs / 1000);
    const metrics: Record<string, number> = {
      nodes,
      redisInBytesPerSec: (end.inBytes - start.inBytes) / seconds,
      redisOutBytesPerSec: (end.outBytes - start.outBytes) / seconds,
      redisCommandsPerSec: (end.commands - start.commands) / seconds,
      heartbeatsPerSec: heartbeats / seconds,
      bytesPerHeartbeat: heartbeats === 0 ? Number.NaN : bytes / heartbeats,
      dueBytesPerSec: heartbeats === 0 ? Number.NaN : (bytes / heartbeats) * due,
    };
    if (heartbeatMs !== defaultMs) notes.push(`heartbeat ${heartbeatMs / 1000} s, TTL ${ttlMs / 1000} s (stretched: see PREVIOUS_MAX_BYTES_PER_SEC)`);
    if (heartbeats / seconds < run * 0.8)
      notes.push(`${(heartbeats / seconds).toFixed(1)} heartbeats/s of the ${run} it ran at: the machine did not keep up`);
    const cpu = {
      bench: Math.round(((cpuBench.user + cpuBench.system) / 1e6) * 100) / 100,
      redis: Math.round((cpuSecondsOf(pid) - cpu0.redis) * 100) / 100,
    };
    log(`  ${design.system} ${nodes} nodes: ${((metrics['redisInBytesPerSec']! + metrics['redisOutBytesPerSec']!) / 1024).toFixed(0)} KiB/s`);
    return { system: design.system, phase: `${nodes} nodes`, metrics, cpu, notes };
  } finally {
    await Promise.race([Promise.allSettled(registries.map((r) => r.close())), sleep(15_000)]);
    await redis.stop();
  }
}

/** The services each simulated node registers (10 of 10 methods). */
export function simulatedServices(): ServiceRecord[] {
  return Array.from({ length: SERVICES_PER_NODE }, (_, i) => simulatedService(i));
}

export async function registry(o: BenchOptions, _redis: RedisWatch, log: (s: string) => void): Promise<Row[]> {
  const services = simulatedServices();
  const recordBytes = Buffer.byteLength(JSON.stringify(simulatedRecord('sim-0', services)));
  log(`  a record: ${SERVICES_PER_NODE} services of ${METHODS_PER_SERVICE} methods, ${(recordBytes / 1024).toFixed(1)} KiB of JSON`);
  const rows: Row[] = [];
  for (const design of DESIGNS) {
    if (!wants(o, design.system)) continue;
    for (const nodes of design.nodeCounts) {
      const row = await phase(design, nodes, services, o, log);
      row.metrics['recordBytes'] = recordBytes;
      rows.push(row);
    }
  }
  return rows;
}
