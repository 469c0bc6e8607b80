/** WebSocket client processes, driven together: connect, reset, drain, report. */
import { Histogram, type SparseHistogram } from './histogram.js';
import { sleep } from './clock.js';
import type { Proc, ProcGroup } from './procs.js';

export interface SessionSpec {
  url: string;
  businessId: string;
}

/** One open of a tracked session (clients `connect` with `track`). */
export interface TrackedOpen {
  us: number;
  resumed: boolean;
  recovered: boolean;
  reason: string | undefined;
  replayed: number;
}

/** What one tracked session saw: each push's id (from its payload), position and times, each open and close. */
export interface TrackedRecord {
  businessId: string;
  ids: string[];
  positions: string[];
  sentUs: number[];
  recvUs: number[];
  opens: TrackedOpen[];
  closes: number[];
  /** Per close: `<code> <reason>`, and ` (gave up)` when the client does not reconnect. */
  closeCodes: string[];
}

export interface ClientsReport {
  received: number;
  lastUs: number;
  foreign: number;
  closedEarly: number;
  hist: Histogram;
}

export class ClientGroup {
  readonly procs: Proc[];
  readonly #latest = new Map<Proc, number>();
  #relayTo: Proc | undefined;

  private constructor(procs: Proc[]) {
    this.procs = procs;
    for (const p of procs) {
      p.on('count', (n) => {
        this.#latest.set(p, n as number);
        if (this.#relayTo !== undefined) {
          let total = 0;
          for (const v of this.#latest.values()) total += v;
          this.#relayTo.send('delivered', total);
        }
      });
    }
  }

  /**
   * Starts `count` client processes. With `spreadAddresses`, process i binds
   * its sockets to 127.0.0.(i+1), so no source address runs out of ports.
   */
  static async start(group: ProcGroup, kind: 'ws' | 'sio' | 'weft', count: number, spreadAddresses = false): Promise<ClientGroup> {
    const procs: Proc[] = [];
    for (let i = 0; i < count; i++) {
      const args: Record<string, unknown> = { kind };
      if (spreadAddresses) args['localAddress'] = `127.0.0.${i + 1}`;
      procs.push(await group.start(`clients-${i + 1}`, 'clients', args));
    }
    return new ClientGroup(procs);
  }

  /** Opens the sessions, dealt round-robin over the processes; throws if any failed. `extra`: more connect arguments (`track`). */
  async connect(sessions: SessionSpec[], concurrencyPerProc = 100, extra: Record<string, unknown> = {}): Promise<{ opened: number; ms: number }> {
    const shares: SessionSpec[][] = this.procs.map(() => []);
    sessions.forEach((s, i) => shares[i % shares.length]!.push(s));
    const results = await Promise.all(
      this.procs.map((p, i) =>
        p.call<{ opened: number; failed: number; errors: string[]; ms: number }>(
          'connect',
          { ...extra, sessions: shares[i], concurrency: concurrencyPerProc },
          300_000,
        ),
      ),
    );
    const opened = results.reduce((s, r) => s + r.opened, 0);
    const failed = results.reduce((s, r) => s + r.failed, 0);
    if (failed > 0) throw new Error(`${failed} of ${sessions.length} sessions failed to open: ${results.flatMap((r) => r.errors).join('; ')}`);
    return { opened, ms: Math.max(...results.map((r) => r.ms)) };
  }

  async reset(): Promise<void> {
    this.#latest.clear();
    await Promise.all(this.procs.map((p) => p.call('reset')));
  }

  /** Relays delivery counts (every 20 ms) to a generator that paces by them. */
  async relayTo(generator: Proc | undefined): Promise<void> {
    this.#relayTo = generator;
    this.#latest.clear();
    await Promise.all(this.procs.map((p) => p.call('feedback', { ms: generator === undefined ? 0 : 20 })));
  }

  async received(): Promise<number> {
    const counts = await Promise.all(this.procs.map((p) => p.call<{ received: number }>('count')));
    return counts.reduce((s, c) => s + c.received, 0);
  }

  /** Waits until `expected` messages arrived, nothing arrived for 2 s, or `maxMs` passed. */
  async drain(expected: number, maxMs: number): Promise<number> {
    const deadline = Date.now() + maxMs;
    let last = -1;
    let lastChange = Date.now();
    for (;;) {
      const got = await this.received();
      if (got >= expected) return got;
      if (got !== last) {
        last = got;
        lastChange = Date.now();
      }
      if (Date.now() - lastChange > 2000 || Date.now() > deadline) return got;
      await sleep(50);
    }
  }

  async report(): Promise<ClientsReport> {
    const reports = await Promise.all(
      this.procs.map((p) =>
        p.call<{ received: number; lastUs: number; foreign: number; closedEarly: number; max: number; hist: SparseHistogram }>('report'),
      ),
    );
    const hist = new Histogram();
    for (const r of reports) hist.add(r.hist, r.max);
    return {
      received: reports.reduce((s, r) => s + r.received, 0),
      lastUs: Math.max(...reports.map((r) => r.lastUs)),
      foreign: reports.reduce((s, r) => s + r.foreign, 0),
      closedEarly: reports.reduce((s, r) => s + r.closedEarly, 0),
      hist,
    };
  }

  /** Every session makes one request at a time for `durationMs`; round trips, their latency and errors across the processes. */
  async calls(durationMs: number): Promise<{ calls: number; errors: Record<string, number>; hist: Histogram }> {
    const results = await Promise.all(
      this.procs.map((p) =>
        p.call<{ calls: number; errors: Record<string, number>; max: number; hist: SparseHistogram }>('calls', { durationMs }, durationMs + 60_000),
      ),
    );
    const hist = new Histogram();
    const errors: Record<string, number> = {};
    for (const r of results) {
      hist.add(r.hist, r.max);
      for (const [code, n] of Object.entries(r.errors)) errors[code] = (errors[code] ?? 0) + n;
    }
    return { calls: results.reduce((s, r) => s + r.calls, 0), errors, hist };
  }

  async close(): Promise<void> {
    await Promise.all(this.procs.map((p) => p.call('close')));
  }
}
