/**
 * The gateway's routes, built from the registry: every method of every live
 * service is an HTTP route, every WebSocket service a WebSocket path. Rebuilt
 * when the set of services changes, so routes come and go with the services:
 * a service with no live instance keeps its routes (503, retry later) for a
 * grace period, then they are removed (404).
 */
import type { ContractDescriptor, MethodDescriptor, ParamDescriptor } from '../contract/contract.js';
import { routeKey, type HttpVerb } from '../contract/routes.js';
import type { RegistryView } from '../registry/registry.js';
import { callTarget } from '../rpc/proxy.js';
import type { CallTarget } from '../rpc/rpc-client.js';
import type { Attributes } from '../tracing/tracing.js';

export interface HttpRoute {
  service: string;
  method: MethodDescriptor;
  target: CallTarget;
  /** The request span's name and attributes, made once with the route. */
  spanName: string;
  spanAttributes: Attributes;
  /** The parameter the JSON body binds to, if any. */
  bodyParam: ParamDescriptor | undefined;
  /** Path split into segments; `null` marks a parameter segment. */
  segments: (string | null)[];
  /** Parameter names of the `null` segments, in order. */
  paramNames: string[];
}

export interface WebSocketRoute {
  service: string;
  /** The path template, literal segments lower-cased (`/api/{tenant}/room`). */
  path: string;
  /** Does the service run session hooks (and so need the handshake's headers and query)? */
  hooks: boolean;
  /** What it keeps of pushes for resuming clients (from its oldest host's record); undefined: none. */
  history?: { maxEntries: number; ttlMs: number } | undefined;
}

/** A WebSocket route and the values of its `{param}` segments. */
export interface WebSocketMatch extends WebSocketRoute {
  params: Record<string, string>;
}

/** A WebSocket path template, split for matching. */
interface WebSocketTemplate {
  route: WebSocketRoute;
  /** `null` marks a parameter segment. */
  segments: (string | null)[];
  paramNames: string[];
  literals: number;
}

/** Literal segments lower-cased, `{param}` segments as written. */
function templatePath(path: string): string {
  return (
    '/' +
    splitPath(path)
      .map((s) => (/^\{.+\}$/.test(s) ? s : s.toLowerCase()))
      .join('/')
  );
}

/** A path template split for matching: literal segments lower-cased, `null` for each `{param}`, whose names follow in order. */
function parseTemplate(path: string): { segments: (string | null)[]; paramNames: string[] } {
  const paramNames: string[] = [];
  const segments = splitPath(path).map((p) => {
    const m = /^\{(.+)\}$/.exec(p);
    if (m === null) return p.toLowerCase();
    paramNames.push(m[1]!);
    return null;
  });
  return { segments, paramNames };
}

function literalCount(segments: readonly (string | null)[]): number {
  return segments.filter((s) => s !== null).length;
}

function compileTemplate(route: WebSocketRoute): WebSocketTemplate {
  const { segments, paramNames } = parseTemplate(route.path);
  return { route, segments, paramNames, literals: literalCount(segments) };
}

/** The path parameters of `parts` (lower-cased in `lower`) under `segments`, or undefined when it does not match. Throws URIError on a bad escape. */
function matchSegments(
  segments: readonly (string | null)[],
  paramNames: readonly string[],
  parts: readonly string[],
  lower: readonly string[],
): Record<string, string> | undefined {
  if (segments.length !== parts.length) return undefined;
  const params: Record<string, string> = {};
  let p = 0;
  for (let i = 0; i < parts.length; i++) {
    const seg = segments[i];
    if (seg === null) params[paramNames[p++]!] = decodeURIComponent(parts[i]!);
    else if (seg !== lower[i]) return undefined;
  }
  return params;
}

export interface RouteMatch {
  route: HttpRoute;
  pathParams: Record<string, string>;
}

function splitPath(path: string): string[] {
  return path.split('/').filter((s) => s !== '');
}

/** A path as static routes are keyed: lower case, no empty segment. One with none is its own key, unsplit. */
function staticPath(path: string): string {
  const clean = path.charCodeAt(0) === 0x2f && !path.includes('//') && (path.length === 1 || path.charCodeAt(path.length - 1) !== 0x2f);
  return clean ? path.toLowerCase() : `/${splitPath(path.toLowerCase()).join('/')}`;
}

/** Two live contracts that declare the same route; the older keeps it. */
export interface RouteConflict {
  route: string;
  kept: string;
  refused: string;
}

export class RouteTable {
  readonly #goneGraceMs: number;
  #signature = '';
  #static = new Map<string, HttpRoute>();
  #dynamic = new Map<HttpVerb, HttpRoute[]>();
  /** WebSocket routes by their key (`routeKey`: parameters unnamed). */
  #websocket = new Map<string, WebSocketRoute>();
  /** The templated ones among them and the gone ones, most literal segments first. */
  #websocketTemplates: WebSocketTemplate[] = [];
  /**
   * Contracts and WebSocket paths whose services have no live instance now,
   * with when they were last seen live. Their routes still match and answer
   * 503 (retry later), not 404, for the grace period: during a rolling
   * restart of the only host, clients see "try again".
   */
  readonly #goneContracts = new Map<string, { contract: ContractDescriptor; lastSeenAt: number }>();
  readonly #goneWebsocket = new Map<string, { route: WebSocketRoute; lastSeenAt: number }>();
  #live = new Map<string, ContractDescriptor>();
  #liveWebsocket = new Map<string, WebSocketRoute>();
  #contracts: ContractDescriptor[] = [];
  #conflicts: RouteConflict[] = [];

  constructor(goneGraceMs: number) {
    this.#goneGraceMs = goneGraceMs;
  }

  /** Live contracts that declare a route another one already has (the older record keeps it). */
  get conflicts(): readonly RouteConflict[] {
    return this.#conflicts;
  }

  /** When the next route of a gone service expires (for a timer), or undefined. */
  nextExpiryAt(): number | undefined {
    let next: number | undefined;
    for (const { lastSeenAt } of [...this.#goneContracts.values(), ...this.#goneWebsocket.values()]) {
      const at = lastSeenAt + this.#goneGraceMs;
      if (next === undefined || at < next) next = at;
    }
    return next;
  }

  /** Rebuilds from a registry view; returns true if the routes changed. */
  update(view: RegistryView, nowMs: number = Date.now()): boolean {
    const contracts = new Map<string, ContractDescriptor>();
    const websocket = new Map<string, WebSocketRoute>();
    // Oldest records first: the first contract to declare a route keeps it.
    const records = [...view.values()].filter((r) => r.role === 'host').sort((a, b) => a.startedAt - b.startedAt || (a.nodeId < b.nodeId ? -1 : 1));
    for (const record of records) {
      for (const s of record.services) {
        if (!contracts.has(s.contract.name)) contracts.set(s.contract.name, s.contract);
        const path = s.websocket === undefined ? undefined : templatePath(s.websocket.path);
        // Keyed with parameters unnamed: `/api/{tenant}/room` and `/api/{org}/room` are one path.
        const key = path === undefined ? undefined : routeKey('GET', path);
        if (path !== undefined && key !== undefined && !websocket.has(key)) {
          // A record from before `hooks` existed counts as having hooks.
          websocket.set(key, { service: s.contract.name, path, hooks: s.websocket!.hooks !== false, history: s.websocket!.history });
        }
      }
    }
    // What was live and is not any more starts its grace period; what is back is live again.
    for (const [name, contract] of this.#live) if (!contracts.has(name)) this.#goneContracts.set(name, { contract, lastSeenAt: nowMs });
    for (const [path, route] of this.#liveWebsocket) if (!websocket.has(path)) this.#goneWebsocket.set(path, { route, lastSeenAt: nowMs });
    for (const name of contracts.keys()) this.#goneContracts.delete(name);
    for (const path of websocket.keys()) this.#goneWebsocket.delete(path);
    for (const [name, gone] of this.#goneContracts) if (nowMs - gone.lastSeenAt >= this.#goneGraceMs) this.#goneContracts.delete(name);
    for (const [path, gone] of this.#goneWebsocket) if (nowMs - gone.lastSeenAt >= this.#goneGraceMs) this.#goneWebsocket.delete(path);
    this.#live = contracts;
    this.#liveWebsocket = websocket;
    // Outside the signature: a gone route's expiry changes them too.
    this.#websocketTemplates = this.#templates(websocket);

    const order = [...contracts.keys()];
    const gone = [...this.#goneContracts.keys()].sort();
    const signature = JSON.stringify([order.map((n) => contracts.get(n)), [...websocket].sort((a, b) => (a[0] < b[0] ? -1 : 1)), gone]);
    if (signature === this.#signature) return false;
    this.#signature = signature;

    // Live contracts first (oldest first), so they win a route over one that is gone.
    const staticRoutes = new Map<string, HttpRoute>();
    const dynamic = new Map<HttpVerb, HttpRoute[]>();
    const claimed = new Map<string, string>();
    const conflicts: RouteConflict[] = [];
    for (const name of [...order, ...gone]) {
      const contract = contracts.get(name) ?? this.#goneContracts.get(name)!.contract;
      for (const method of contract.methods) {
        const key = routeKey(method.verb, method.path);
        const owner = claimed.get(key);
        if (owner !== undefined && owner !== name) {
          if (contracts.has(name)) conflicts.push({ route: key, kept: owner, refused: name });
          continue;
        }
        claimed.set(key, name);
        const { segments, paramNames } = parseTemplate(method.path);
        const route: HttpRoute = {
          service: name,
          method,
          target: callTarget(name, method),
          spanName: `${method.verb} ${method.path}`,
          spanAttributes: { 'http.request.method': method.verb, 'http.route': method.path },
          bodyParam: method.params.find((p) => p.from === 'body'),
          segments,
          paramNames,
        };
        if (paramNames.length === 0) {
          staticRoutes.set(`${method.verb} /${segments.join('/')}`, route);
        } else {
          let list = dynamic.get(method.verb);
          if (list === undefined) dynamic.set(method.verb, (list = []));
          list.push(route);
        }
      }
    }
    // More literal segments first, so /api/user/me wins over /api/user/{id}.
    for (const list of dynamic.values()) {
      list.sort((a, b) => literalCount(b.segments) - literalCount(a.segments));
    }
    this.#static = staticRoutes;
    this.#dynamic = dynamic;
    this.#websocket = websocket;
    this.#contracts = [...contracts.keys()].sort().map((n) => contracts.get(n)!);
    this.#conflicts = conflicts;
    return true;
  }

  /** The route for a request, or undefined. Throws URIError on a malformed escape in the path. */
  match(verb: string, path: string): RouteMatch | undefined {
    const found = this.#static.get(`${verb} ${staticPath(path)}`);
    if (found !== undefined) return { route: found, pathParams: {} };
    const parts = splitPath(path);
    const lower = parts.map((p) => p.toLowerCase());
    const list = this.#dynamic.get(verb as HttpVerb);
    if (list === undefined) return undefined;
    for (const route of list) {
      const pathParams = matchSegments(route.segments, route.paramNames, parts, lower);
      if (pathParams !== undefined) return { route, pathParams };
    }
    return undefined;
  }

  /** Live templated WebSocket routes, then gone ones; most literal segments first within each (`/api/me/room` before `/api/{tenant}/room`). */
  #templates(websocket: ReadonlyMap<string, WebSocketRoute>): WebSocketTemplate[] {
    const compiled = (routes: Iterable<WebSocketRoute>): WebSocketTemplate[] =>
      [...routes]
        .filter((r) => r.path.includes('{'))
        .map(compileTemplate)
        .sort((a, b) => b.literals - a.literals);
    return [...compiled(websocket.values()), ...compiled([...this.#goneWebsocket.values()].map((g) => g.route))];
  }

  /**
   * The WebSocket service at `path` (live, or seen before and now without
   * hosts), with the values of its template's `{param}` segments, if any.
   * Throws URIError on a malformed escape in a parameter segment.
   */
  websocketService(path: string): WebSocketMatch | undefined {
    const parts = splitPath(path);
    const lower = parts.map((p) => p.toLowerCase());
    const key = '/' + lower.join('/');
    const exact = this.#websocket.get(`GET ${key}`) ?? this.#goneWebsocket.get(`GET ${key}`)?.route;
    if (exact !== undefined && !exact.path.includes('{')) return { ...exact, params: {} };
    for (const t of this.#websocketTemplates) {
      const params = matchSegments(t.segments, t.paramNames, parts, lower);
      if (params !== undefined) return { ...t.route, params };
    }
    return undefined;
  }

  /** Services whose routes still answer (503) though no live host serves them: in their grace period. */
  unavailable(): string[] {
    const names = new Set<string>(this.#goneContracts.keys());
    for (const { route } of this.#goneWebsocket.values()) if (!this.#live.has(route.service)) names.add(route.service);
    return [...names].sort();
  }

  contracts(): readonly ContractDescriptor[] {
    return this.#contracts;
  }

  /** The live WebSocket services with their contracts and paths, for OpenAPI and AsyncAPI. */
  websocketServices(): { contract: ContractDescriptor; path: string }[] {
    const out: { contract: ContractDescriptor; path: string }[] = [];
    for (const route of this.#liveWebsocket.values()) {
      const contract = this.#live.get(route.service);
      if (contract !== undefined) out.push({ contract, path: route.path });
    }
    return out.sort((a, b) => (a.contract.name < b.contract.name ? -1 : a.contract.name > b.contract.name ? 1 : 0));
  }
}
