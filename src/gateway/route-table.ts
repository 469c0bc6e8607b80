/**
 * The gateway's routes, built from the registry: every method of every live
 * service is an HTTP route, every WebSocket service a WebSocket path. Rebuilt
 * when the set of services changes, so routes come and go with the services.
 */
import type { ContractDescriptor, MethodDescriptor } from '../contract/contract.js';
import type { HttpVerb } from '../contract/routes.js';
import type { RegistryView } from '../registry/registry.js';
import { callTarget } from '../rpc/proxy.js';
import type { CallTarget } from '../rpc/rpc-client.js';

export interface HttpRoute {
  service: string;
  method: MethodDescriptor;
  target: CallTarget;
  /** Path split into segments; `null` marks a parameter segment. */
  segments: (string | null)[];
  /** Parameter names of the `null` segments, in order. */
  paramNames: string[];
}

export interface WebSocketRoute {
  service: string;
  /** Does the service run session hooks (and so need the handshake's headers and query)? */
  hooks: boolean;
}

export interface RouteMatch {
  route: HttpRoute;
  pathParams: Record<string, string>;
}

function splitPath(path: string): string[] {
  return path.split('/').filter((s) => s !== '');
}

export class RouteTable {
  #signature = '';
  #static = new Map<string, HttpRoute>();
  #dynamic = new Map<HttpVerb, HttpRoute[]>();
  #websocket = new Map<string, WebSocketRoute>();
  /**
   * Every contract and WebSocket path seen since start. A route whose hosts
   * are all gone still matches, and the call answers 503 (retry later), not
   * 404: during a rolling restart of the only host, clients see "try again".
   */
  readonly #knownContracts = new Map<string, ContractDescriptor>();
  readonly #knownWebsocket = new Map<string, WebSocketRoute>();
  #contracts: ContractDescriptor[] = [];

  /** Rebuilds from a registry view; returns true if the routes changed. */
  update(view: RegistryView): boolean {
    const contracts = new Map<string, ContractDescriptor>();
    const websocket = new Map<string, WebSocketRoute>();
    for (const record of view.values()) {
      if (record.role !== 'host') continue;
      for (const s of record.services) {
        if (!contracts.has(s.contract.name)) contracts.set(s.contract.name, s.contract);
        if (s.websocket !== undefined) {
          // A record from before `hooks` existed counts as having hooks.
          websocket.set(s.websocket.path.toLowerCase(), { service: s.contract.name, hooks: s.websocket.hooks !== false });
        }
      }
    }
    for (const [path, name] of websocket) this.#knownWebsocket.set(path, name);
    for (const [name, contract] of contracts) this.#knownContracts.set(name, contract);
    const names = [...contracts.keys()].sort();
    const signature = JSON.stringify([names.map((n) => contracts.get(n)), [...websocket].sort((a, b) => (a[0] < b[0] ? -1 : 1))]);
    if (signature === this.#signature) return false;
    this.#signature = signature;

    // Live contracts first, so they win a route over one that is gone.
    const gone = [...this.#knownContracts.keys()].filter((n) => !contracts.has(n)).sort();
    const staticRoutes = new Map<string, HttpRoute>();
    const dynamic = new Map<HttpVerb, HttpRoute[]>();
    for (const name of [...names, ...gone]) {
      const contract = contracts.get(name) ?? this.#knownContracts.get(name)!;
      for (const method of contract.methods) {
        const parts = splitPath(method.path);
        const paramNames: string[] = [];
        const segments = parts.map((p) => {
          const m = /^\{(.+)\}$/.exec(p);
          if (m === null) return p.toLowerCase();
          paramNames.push(m[1]!);
          return null;
        });
        const route: HttpRoute = { service: name, method, target: callTarget(name, method), segments, paramNames };
        if (paramNames.length === 0) {
          const key = `${method.verb} /${segments.join('/')}`;
          if (!staticRoutes.has(key)) staticRoutes.set(key, route);
        } else {
          let list = dynamic.get(method.verb);
          if (list === undefined) dynamic.set(method.verb, (list = []));
          list.push(route);
        }
      }
    }
    // More literal segments first, so /api/user/me wins over /api/user/{id}.
    for (const list of dynamic.values()) {
      list.sort((a, b) => b.segments.filter((s) => s !== null).length - a.segments.filter((s) => s !== null).length);
    }
    this.#static = staticRoutes;
    this.#dynamic = dynamic;
    this.#websocket = websocket;
    this.#contracts = names.map((n) => contracts.get(n)!);
    return true;
  }

  /** The route for a request, or undefined. Throws URIError on a malformed escape in the path. */
  match(verb: string, path: string): RouteMatch | undefined {
    const parts = splitPath(path);
    const lower = parts.map((p) => p.toLowerCase());
    const found = this.#static.get(`${verb} /${lower.join('/')}`);
    if (found !== undefined) return { route: found, pathParams: {} };
    const list = this.#dynamic.get(verb as HttpVerb);
    if (list === undefined) return undefined;
    for (const route of list) {
      if (route.segments.length !== parts.length) continue;
      let ok = true;
      const pathParams: Record<string, string> = {};
      let p = 0;
      for (let i = 0; i < parts.length; i++) {
        const seg = route.segments[i];
        if (seg === null) {
          pathParams[route.paramNames[p++]!] = decodeURIComponent(parts[i]!);
        } else if (seg !== lower[i]) {
          ok = false;
          break;
        }
      }
      if (ok) return { route, pathParams };
    }
    return undefined;
  }

  /** The WebSocket service at `path` (live, or seen before and now without hosts), if any. */
  websocketService(path: string): WebSocketRoute | undefined {
    const normalized = '/' + splitPath(path).join('/').toLowerCase();
    return this.#websocket.get(normalized) ?? this.#knownWebsocket.get(normalized);
  }

  contracts(): readonly ContractDescriptor[] {
    return this.#contracts;
  }
}
