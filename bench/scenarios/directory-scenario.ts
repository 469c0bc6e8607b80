/**
 * directory: what the session directory costs each WebSocket host, today's
 * full replica against the sharded directory, in the same run.
 *
 * Each host is a process with the directory alone (bench/procs/directory-node.ts),
 * registered as a host of the service; two gateway processes register 20,000
 * sessions (10,000 each, 10,000 businessIds with a session on each gateway)
 * through the directory API, as a gateway does when a WebSocket opens, in
 * bursts of 500 a tick (a gateway's writes are batched per tick); then, one
 * a tick, close 5,000 of them and open 5,000 new ones (churn). No sockets:
 * the directory is what is measured. Per host: heap after GC (after minus
 * before the sessions), directory updates received in each phase (messages
 * and bytes), sessions its replicas hold, and the time of 1,000 lookups of
 * businessIds one after the other (from memory for its shards, one Redis
 * read for the rest).
 */
import { sleep } from '../lib/clock.js';
import type { BenchOptions } from '../lib/options.js';
import { wants } from '../lib/options.js';
import { ProcGroup, type Proc } from '../lib/procs.js';
import { uniqueKey, type RedisWatch } from '../lib/redis.js';
import type { Row } from '../lib/result.js';

const SERVICE = 'IBenchWsAppService';
const SESSIONS_PER_GATEWAY = 10_000;
const BUSINESS_IDS = 10_000;
const CHURN = 2_500;
const LOOKUPS = 1_000;

interface Variant {
  system: string;
  fullReplica: boolean;
  hosts: number;
}

const VARIANTS: Variant[] = [
  { system: 'full replica (before)', fullReplica: true, hosts: 3 },
  { system: 'sharded', fullReplica: false, hosts: 3 },
  { system: 'sharded', fullReplica: false, hosts: 6 },
];

interface HostStats {
  messages: number;
  bytes: number;
  heapUsed: number;
  shards: number;
  sessions: number;
}

const mean = (values: number[]): number => values.reduce((a, b) => a + b, 0) / values.length;
const MB = 1024 * 1024;

async function until(what: string, check: () => Promise<boolean>, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`directory bench: ${what} did not happen within ${timeoutMs} ms`);
    await sleep(100);
  }
}

async function runVariant(v: Variant, o: BenchOptions, redis: RedisWatch, log: (s: string) => void): Promise<Row> {
  const prefix = uniqueKey('bench-dir');
  const group = new ProcGroup();
  try {
    const common = { redisUrl: o.redisUrl, prefix, service: SERVICE, fullReplica: v.fullReplica };
    const hosts: Proc[] = [];
    for (let i = 0; i < v.hosts; i++)
      hosts.push(await group.start(`dir-host-${i}`, 'directory-node', { ...common, role: 'host', nodeId: `dir-host-${i}` }));
    const gateways: Proc[] = [];
    for (let i = 0; i < 2; i++)
      gateways.push(await group.start(`dir-gw-${i}`, 'directory-node', { ...common, role: 'gateway', nodeId: `dir-gw-${i}` }));
    await until('every host seeing every host', async () =>
      (await Promise.all(hosts.map((h) => h.call<number>('hosts')))).every((n) => n === v.hosts),
    );
    await Promise.all(hosts.map((h) => h.call('watch')));
    const before = await Promise.all(hosts.map((h) => h.call<HostStats>('stats')));
    log(`directory: ${v.system}, ${v.hosts} hosts: opening ${2 * SESSIONS_PER_GATEWAY} sessions`);
    group.markCpu();
    await Promise.all(gateways.map((g) => g.call('open', { from: 0, to: SESSIONS_PER_GATEWAY, businessIds: BUSINESS_IDS, batch: 500 })));
    const listed = async (expected: number): Promise<boolean> => {
      const stats = await Promise.all(hosts.map((h) => h.call<HostStats>('stats')));
      return v.fullReplica ? stats.every((s) => s.sessions === expected) : stats.reduce((n, s) => n + s.sessions, 0) === expected;
    };
    await until('every session listed', () => listed(2 * SESSIONS_PER_GATEWAY));
    const burst = await Promise.all(hosts.map((h) => h.call<HostStats>('stats')));
    // Churn, one change a tick: a quarter of the sessions close, as many new ones open.
    await Promise.all(gateways.map((g) => g.call('close', { from: 0, to: CHURN, batch: 1 })));
    await Promise.all(
      gateways.map((g) => g.call('open', { from: SESSIONS_PER_GATEWAY, to: SESSIONS_PER_GATEWAY + CHURN, businessIds: BUSINESS_IDS, batch: 1 })),
    );
    await until('the churn listed', () => listed(2 * SESSIONS_PER_GATEWAY));
    await sleep(300);
    const cpu = group.cpu();
    const after = await Promise.all(hosts.map((h) => h.call<HostStats>('stats')));
    const lookups = await Promise.all(
      hosts.map((h) => h.call<{ ms: number; found: number }>('lookups', { count: LOOKUPS, businessIds: BUSINESS_IDS })),
    );
    const heapDelta = after.map((a, i) => (a.heapUsed - before[i]!.heapUsed) / MB);
    const row: Row = {
      system: v.system,
      phase: `${v.hosts} hosts`,
      metrics: {
        'sessions kept/host': Math.round(mean(after.map((a) => a.sessions))),
        'heap MB/host': Math.round(mean(after.map((a) => a.heapUsed / MB)) * 10) / 10,
        'directory heap MB/host': Math.round(mean(heapDelta) * 10) / 10,
        'max directory heap MB': Math.round(Math.max(...heapDelta) * 10) / 10,
        'burst updates/host': Math.round(mean(burst.map((a, i) => a.messages - before[i]!.messages))),
        'burst KB/host': Math.round(mean(burst.map((a, i) => (a.bytes - before[i]!.bytes) / 1024))),
        'churn updates/host': Math.round(mean(after.map((a, i) => a.messages - burst[i]!.messages))),
        'churn KB/host': Math.round(mean(after.map((a, i) => (a.bytes - burst[i]!.bytes) / 1024))),
        'lookup us': Math.round((mean(lookups.map((l) => l.ms)) / LOOKUPS) * 1000),
      },
      cpu,
      notes: [
        `${2 * SESSIONS_PER_GATEWAY} sessions over ${BUSINESS_IDS} businessIds from 2 gateway processes in bursts of 500 a tick, ` +
          `then ${2 * CHURN} closed and ${2 * CHURN} opened one a tick; registered through the directory API (no sockets)`,
        v.fullReplica ? 'every host keeps every session' : `shards owned per host: ${after.map((a) => a.shards).join(', ')}`,
      ],
    };
    log(`directory: ${v.system}, ${v.hosts} hosts: ${JSON.stringify(row.metrics)}`);
    return row;
  } finally {
    await group.stopAll();
    await redis.deletePrefix(prefix);
  }
}

export async function directory(o: BenchOptions, redis: RedisWatch, log: (s: string) => void): Promise<Row[]> {
  const rows: Row[] = [];
  for (const v of VARIANTS) {
    if (!wants(o, v.system)) continue;
    rows.push(await runVariant(v, o, redis, log));
  }
  return rows;
}
