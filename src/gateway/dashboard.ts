/**
 * The live dashboard a gateway serves at /dashboard when `dashboard` is set
 * (docs/operations.md): the page (dashboard-page.ts) polls /dashboard/data
 * once a second. Both pass the gateway's auth gate, as HTTP routes do, and
 * `dashboard.requireClaim` on top. The data is what this gateway knows: its
 * registry view, its links, the sessions it holds, and rates sampled once a
 * second from this process's counters (src/metrics/metrics.ts).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { WeftError } from '../errors.js';
import type { Logger } from '../logger.js';
import { counts, metricsRegistry } from '../metrics/metrics.js';
import type { RegistryView } from '../registry/registry.js';
import { DirectLink } from '../transport/direct-link.js';
import type { PeerLink } from '../transport/peer-link.js';
import type { AuthGate } from './auth/auth-gate.js';
import { dashboardPage } from './dashboard-page.js';
import type { SessionSummary } from './front-door/front-door.js';
import { sendError, sendJson } from './responses.js';

/** Seconds of rates kept (and charted). */
export const DASHBOARD_SAMPLES = 60;
/** The data endpoint recomputes at most this often, however many pages poll it. */
const DATA_CACHE_MS = 500;

/** What the dashboard reads of the links: transport/peers.ts `Peers`, as far as it needs. */
export interface DashboardLinks {
  openLinks(): PeerLink[];
  isUnreachable(nodeId: string): boolean;
  isRefused(nodeId: string): boolean;
  isBackingOff(nodeId: string): boolean;
}

export interface DashboardSources {
  nodeId: string;
  cluster: string;
  view(): RegistryView;
  links: DashboardLinks | undefined;
  /** Services whose routes answer 503 for want of a live host. */
  unavailable(): readonly string[];
  sessions(top: number): SessionSummary;
  draining(): boolean;
}

export interface DashboardSettings {
  gate: AuthGate;
  /** Claims the token must have, exactly (`dashboard.requireClaim`). */
  requireClaim: Readonly<Record<string, string>> | undefined;
  topBusinessIds: number;
  retryAfterSeconds: number;
  logger: Logger;
}

interface Sample {
  at: number;
  pushes: number;
  deliveries: number;
  rpcCalls: number;
  linkFramesIn: number;
  linkFramesOut: number;
}

const SERIES = ['pushes', 'deliveries', 'rpcCalls', 'linkFramesIn', 'linkFramesOut'] as const;

/** RPC calls made by this process so far: the count of the client histogram, all labels summed. */
async function rpcCallsMade(): Promise<number> {
  const metric = metricsRegistry().getSingleMetric('weft_rpc_client_call_seconds');
  if (metric === undefined) return 0;
  let n = 0;
  for (const v of (await metric.get()).values) if ((v as { metricName?: string }).metricName?.endsWith('_count') === true) n += v.value;
  return n;
}

type LinkState = 'open' | 'draining' | 'refused' | 'unreachable' | 'backing off' | 'none';

export class Dashboard {
  readonly #src: DashboardSources;
  readonly #o: DashboardSettings;
  readonly #page: { html: string; scriptHash: string };
  readonly #samples: Sample[] = [];
  #timer: NodeJS.Timeout | undefined;
  #sampling = false;
  #cached: { at: number; body: string } | undefined;

  constructor(sources: DashboardSources, settings: DashboardSettings) {
    this.#src = sources;
    this.#o = settings;
    this.#page = dashboardPage({ tokens: settings.gate.tokens });
  }

  /** Samples the counters once a second from now on. */
  start(): void {
    if (this.#timer !== undefined) return;
    void this.#sample();
    this.#timer = setInterval(() => void this.#sample(), 1000);
    this.#timer.unref();
  }

  stop(): void {
    clearInterval(this.#timer);
  }

  /** Serves `GET /dashboard` and `GET /dashboard/data`; false for any other path. */
  handles(path: string): boolean {
    return path === '/dashboard' || path === '/dashboard/' || path === '/dashboard/data';
  }

  /** Answers a request whose path `handles`, once the gate let it in. */
  async serve(req: IncomingMessage, res: ServerResponse, path: string, query: Record<string, string>): Promise<void> {
    req.resume();
    const refused = await this.#refusal(req, path, query);
    if (refused !== undefined) return sendError(res, refused.error, this.#o.retryAfterSeconds, refused.headers);
    if (path === '/dashboard/data') {
      const now = Date.now();
      if (this.#cached === undefined || now - this.#cached.at >= DATA_CACHE_MS) this.#cached = { at: now, body: JSON.stringify(this.data(now)) };
      return sendJson(res, 200, this.#cached.body, { 'cache-control': 'no-store' });
    }
    const html = this.#page.html;
    res.writeHead(200, {
      'content-type': 'text/html; charset=utf-8',
      'content-length': Buffer.byteLength(html),
      'cache-control': 'no-store',
      'referrer-policy': 'no-referrer',
      'x-content-type-options': 'nosniff',
      'content-security-policy': `default-src 'none'; script-src '${this.#page.scriptHash}'; style-src 'unsafe-inline'; connect-src 'self'; img-src data:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'`,
    });
    res.end(html);
  }

  /** Why the request may not see the dashboard; undefined when it may. */
  async #refusal(
    req: IncomingMessage,
    path: string,
    query: Record<string, string>,
  ): Promise<{ error: WeftError; headers: Record<string, string> } | undefined> {
    const gate = this.#o.gate;
    if (!gate.active) return undefined;
    const decided = await gate.admit({
      kind: 'http',
      method: req.method ?? 'GET',
      path,
      params: {},
      headers: req.headers,
      query,
      remoteAddress: req.socket.remoteAddress ?? '',
      givenBusinessIds: [],
    });
    if ('error' in decided) return decided;
    const required = this.#o.requireClaim;
    if (required === undefined) return undefined;
    for (const [claim, value] of Object.entries(required)) {
      if (decided.identity?.[claim] !== value) {
        return {
          error: new WeftError('Unauthorized', `the dashboard needs a token whose "${claim}" claim is ${JSON.stringify(value)}`),
          headers: {},
        };
      }
    }
    return undefined;
  }

  async #sample(): Promise<void> {
    if (this.#sampling) return;
    this.#sampling = true;
    try {
      const rpcCalls = await rpcCallsMade();
      this.#samples.push({
        at: Date.now(),
        pushes: counts.pushSession + counts.pushBusiness + counts.pushService,
        deliveries: counts.deliveredLive + counts.deliveredReplay,
        rpcCalls,
        linkFramesIn: counts.linkFramesIn,
        linkFramesOut: counts.linkFramesOut,
      });
      if (this.#samples.length > DASHBOARD_SAMPLES + 1) this.#samples.shift();
    } catch (err) {
      this.#o.logger.debug({ err: (err as Error).message }, 'dashboard could not sample the counters');
    } finally {
      this.#sampling = false;
    }
  }

  /** Per-second rates between consecutive samples, oldest first. */
  #rates(): Record<(typeof SERIES)[number], number[]> {
    const out = Object.fromEntries(SERIES.map((k) => [k, [] as number[]])) as Record<(typeof SERIES)[number], number[]>;
    const s = this.#samples;
    for (let i = 1; i < s.length; i++) {
      const seconds = Math.max(0.001, (s[i]!.at - s[i - 1]!.at) / 1000);
      for (const k of SERIES) out[k].push(Math.round(((s[i]![k] - s[i - 1]![k]) / seconds) * 10) / 10);
    }
    return out;
  }

  #linkOf(nodeId: string, open: Map<string, PeerLink[]>): { state: LinkState; kind?: 'tcp' | 'direct'; count: number; queuedBytes: number } {
    const list = open.get(nodeId) ?? [];
    const links = this.#src.links;
    if (list.length > 0) {
      const draining = list.some((l) => l.peerDraining);
      return {
        state: draining ? 'draining' : 'open',
        kind: list.some((l) => l instanceof DirectLink) ? 'direct' : 'tcp',
        count: list.length,
        queuedBytes: list.reduce((sum, l) => sum + l.queuedBytes, 0),
      };
    }
    let state: LinkState = 'none';
    if (links?.isRefused(nodeId) === true) state = 'refused';
    else if (links?.isUnreachable(nodeId) === true) state = 'unreachable';
    else if (links?.isBackingOff(nodeId) === true) state = 'backing off';
    return { state, count: 0, queuedBytes: 0 };
  }

  /** What /dashboard/data answers. */
  data(now: number = Date.now()): unknown {
    const src = this.#src;
    const view = src.view();
    const open = new Map<string, PeerLink[]>();
    for (const link of src.links?.openLinks() ?? []) {
      if (link.peerNodeId === '') continue;
      let list = open.get(link.peerNodeId);
      if (list === undefined) open.set(link.peerNodeId, (list = []));
      list.push(link);
    }
    const sessions = src.sessions(this.#o.topBusinessIds);
    const nodes = [...view.values()]
      .sort((a, b) => (a.role === b.role ? a.startedAt - b.startedAt : a.role === 'gateway' ? -1 : 1))
      .map((r) => {
        const self = r.nodeId === src.nodeId;
        const link = self ? undefined : this.#linkOf(r.nodeId, open);
        let health: string;
        if (self) health = src.draining() ? 'draining' : 'ok (this gateway)';
        else if (link!.state === 'open') health = 'ok';
        else if (link!.state === 'none') health = r.role === 'host' ? 'no link yet' : 'ok (no link needed)';
        else health = link!.state;
        return {
          nodeId: r.nodeId,
          role: r.role,
          address: `${r.address.host}:${r.address.port}`,
          protocol: r.protocol,
          startedAt: r.startedAt,
          services: r.services.map((s) => s.contract.name),
          self,
          health,
          ...(link === undefined ? {} : { link }),
        };
      });
    const services = new Map<string, { name: string; hosts: number; http: { verb: string; path: string }[]; websocket: string | undefined }>();
    for (const r of view.values()) {
      if (r.role !== 'host') continue;
      for (const s of r.services) {
        let entry = services.get(s.contract.name);
        if (entry === undefined) {
          entry = {
            name: s.contract.name,
            hosts: 0,
            http: s.contract.methods.map((m) => ({ verb: m.verb, path: m.path })),
            websocket: s.websocket?.path,
          };
          services.set(s.contract.name, entry);
        }
        entry.hosts += 1;
      }
    }
    const unavailable = src.unavailable();
    const serviceList = [
      ...[...services.values()].map((s) => ({ ...s, available: true })),
      ...unavailable.filter((n) => !services.has(n)).map((name) => ({ name, hosts: 0, http: [], websocket: undefined, available: false })),
    ]
      .sort((a, b) => (a.name < b.name ? -1 : 1))
      .map((s) => ({ ...s, sessions: sessions.byService[s.name] ?? 0 }));
    const links = [...new Set([...open.keys(), ...[...view.keys()].filter((id) => id !== src.nodeId)])].sort().map((nodeId) => ({
      nodeId,
      role: view.get(nodeId)?.role ?? 'not in the registry',
      ...this.#linkOf(nodeId, open),
    }));
    const last = this.#samples.at(-1);
    return {
      now,
      gateway: { nodeId: src.nodeId, cluster: src.cluster, draining: src.draining() },
      nodes,
      services: serviceList,
      sessions,
      rates: {
        intervalMs: 1000,
        series: this.#rates(),
        totals:
          last === undefined
            ? undefined
            : {
                pushes: last.pushes,
                deliveries: last.deliveries,
                rpcCalls: last.rpcCalls,
                linkFramesIn: last.linkFramesIn,
                linkFramesOut: last.linkFramesOut,
              },
      },
      links,
    };
  }
}
