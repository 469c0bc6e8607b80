/**
 * hops: where a push's time and CPU go on the layout users run (two
 * gateways, a WebSocket host, a pusher calling through the typed proxy,
 * bare ws clients), at the fixed rate and in the 500-push window. Latency
 * per hop from weft's own spans, read by a bench-only tracer
 * (bench/lib/hop-tracer.ts, one push in 10 traced); CPU per delivery per
 * process from the same phase. `npm run bench:one -- hops`.
 */
import { Histogram, type SparseHistogram } from '../lib/histogram.js';
import type { BenchOptions } from '../lib/options.js';
import type { RedisWatch } from '../lib/redis.js';
import type { Row } from '../lib/result.js';
import { pushPhase, specFor, startWeftPush } from '../lib/stacks.js';
import { perPushOf } from './push-scenarios.js';

/** One push in this many is traced: enough samples, and the others pay nothing. */
const SAMPLE_EVERY = 10;

export async function hops(o: BenchOptions, redis: RedisWatch, log: (s: string) => void): Promise<Row[]> {
  const perPush = perPushOf(o.sessions, o.businessIds);
  log('  weft: starting (two gateways, hop tracer on)');
  const system = await startWeftPush(o, redis, 'weft', o.sessions, o.businessIds, 'rpc', { gateways: 2, clients: 'ws', hops: SAMPLE_EVERY });
  const rows: Row[] = [];
  try {
    const traced = system.group.procs.filter((p) => p.name === 'pusher' || p.name === 'ws-host' || p.name.startsWith('gateway'));
    const phases = [
      { phase: 'rate', spec: specFor(o, 'rate', o.businessIds, perPush) },
      { phase: 'max', spec: specFor(o, 'max', o.businessIds, perPush, o.historyWindow) },
    ];
    for (const { phase, spec } of phases) {
      log(`  weft: ${phase} for ${spec.durationMs / 1000} s`);
      await Promise.all(traced.map((p) => p.call('resetHops')));
      const push = await pushPhase(system, redis, phase, spec, o);
      const merged = new Map<string, Histogram>();
      for (const p of traced) {
        for (const [hop, sparse] of Object.entries(await p.call<Record<string, SparseHistogram>>('hops'))) {
          let h = merged.get(hop);
          if (h === undefined) merged.set(hop, (h = new Histogram()));
          h.add(sparse);
        }
      }
      const latency = (h: Histogram): Record<string, number> => {
        const s = h.summaryMs();
        return { p50Ms: s.p50Ms, p99Ms: s.p99Ms, samples: h.total };
      };
      rows.push({
        system: 'end to end (at the clients)',
        phase,
        metrics: { p50Ms: push.metrics['p50Ms']!, p99Ms: push.metrics['p99Ms']!, samples: push.metrics['received']! },
        cpu: {},
        notes: push.notes,
      });
      for (const hop of [...merged.keys()].sort()) rows.push({ system: hop, phase, metrics: latency(merged.get(hop)!), cpu: {}, notes: [] });
      // CPU per delivery, process by process (clients included: they are the sockets' other end).
      const received = push.metrics['received']!;
      for (const [name, seconds] of Object.entries(push.cpu)) {
        if (name === 'rest-of-box' || Number.isNaN(seconds)) continue;
        rows.push({
          system: `CPU: ${name}`,
          phase,
          metrics: { deliveriesPerSec: push.metrics['deliveriesPerSec']!, cpuUsPerDelivery: Math.round((seconds * 1e6) / received) },
          cpu: {},
          notes: [],
        });
      }
    }
  } finally {
    await system.close();
  }
  return rows;
}
