/**
 * The gateway: HTTP routes to services and the WebSocket front door, both
 * built from the registry, plus /healthz (alive), /readyz (ready, or what
 * is missing) and /swagger.json.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { WeftError } from '../errors.js';
import { buildOpenApi, type OpenApiSecurity } from '../contract/openapi.js';
import { buildAsyncApi } from '../contract/asyncapi.js';
import type { Logger } from '../logger.js';
import { resolveOptions } from '../options/schema.js';
import { WeftNode, listenOrExplain, type NodeStats } from '../node/node.js';
import type { RegistryView } from '../registry/registry.js';
import { GATEWAY_OPTIONS, type GatewayOptions } from './gateway-options.js';
import { AuthGate } from './auth/auth-gate.js';
import { ClientAddresses } from './auth/client-address.js';
import { Cors } from './cors.js';
import type { JwtSettings } from './auth/jwt-keys.js';
import { JwtVerifier } from './auth/jwt-verifier.js';
import { clientScript, serveClientScript } from './client-script.js';
import { serveMetrics } from '../metrics/metrics-server.js';
import { Dashboard } from './dashboard.js';
import { demoPage } from './demo-page.js';
import { demoToken } from './demo-token.js';
import { HttpApi, parseQuery } from './http-api.js';
import { errorBody, sendError, sendJson, successBody } from './responses.js';
import { RouteTable } from './route-table.js';
import { FrontDoor } from './front-door/front-door.js';
import { Peers } from '../transport/peers.js';
import type { HandshakePolicy } from './front-door/handshake.js';

export type { GatewayOptions } from './gateway-options.js';

export interface Gateway {
  readonly nodeId: string;
  readonly logger: Logger;
  /** `http://host:port`, once started. */
  readonly url: string;
  readonly port: number;
  /** Sessions held by this gateway. */
  readonly sessionCount: number;
  /**
   * Listens and joins the cluster; resolves with this gateway.
   *
   * @example
   * const gateway = await createGateway({ cluster, http: { port: 5000 } }).start();
   * console.log(`listening on ${gateway.url}`);
   */
  start(): Promise<Gateway>;
  /**
   * Drains (503 to new requests and handshakes, 1001 to sessions) and stops.
   *
   * @example
   * const gateway = await createGateway({ cluster }).start();
   * process.once('SIGTERM', () => void gateway.stop());
   */
  stop(): Promise<void>;
  /**
   * Counters for monitoring and tests.
   *
   * @example
   * const gateway = await createGateway({ cluster }).start();
   * console.log(`${gateway.stats().sessions} sessions, ${gateway.stats().callsInFlight} calls in flight`);
   */
  stats(): NodeStats;
}

class GatewayImpl implements Gateway {
  readonly #node: WeftNode;
  readonly #routes: RouteTable;
  #routeExpiry: NodeJS.Timeout | undefined;
  readonly #reportedConflicts = new Set<string>();
  readonly #api: HttpApi;
  readonly #door: FrontDoor;
  readonly #server: http.Server;
  readonly #httpHost: string;
  readonly #httpPort: number;
  readonly #stopTimeoutMs: number;
  readonly #retryAfterSeconds: number;
  readonly #metrics: boolean;
  readonly #demoHtml: string | undefined;
  /** The key demo tokens are signed with (`demo.issueTokens`). */
  readonly #demoTokens: JwtSettings | undefined;
  readonly #openApiInfo: { title: string; version: string };
  readonly #openApiSecurity: OpenApiSecurity;
  #openApiJson: string | undefined;
  #asyncApiJson: string | undefined;
  #port = 0;
  #draining = false;
  #starting: Promise<Gateway> | undefined;
  #stopping: Promise<void> | undefined;
  #activeRequests = 0;
  readonly #cors: Cors | undefined;
  readonly #dashboard: Dashboard | undefined;

  constructor(input: GatewayOptions) {
    const options = resolveOptions(GATEWAY_OPTIONS, input, 'createGateway');
    this.#routes = new RouteTable(options.goneRouteGraceMs);
    this.#node = new WeftNode('gateway', options);
    const node = this.#node;
    const logger = node.logger;
    this.#httpHost = options.http.host;
    this.#httpPort = options.http.port;
    this.#stopTimeoutMs = options.stopTimeoutMs;
    this.#retryAfterSeconds = options.retryAfterSeconds;
    this.#metrics = options.metrics;
    const jwt = options.auth?.jwt;
    const addresses = new ClientAddresses(options.trustedProxies);
    const handshakePolicy: HandshakePolicy = Object.freeze({
      allowedOrigins: options.allowedOrigins,
      forwardHeaders: options.forwardHeaders,
      addresses,
    });
    this.#cors = options.cors === undefined ? undefined : new Cors(options.cors);
    const gate = new AuthGate({
      addresses,
      jwt: jwt === undefined ? undefined : new JwtVerifier(jwt, options.authTimeoutMs),
      authenticate: options.authenticate,
      timeoutMs: options.authTimeoutMs,
      logger,
    });
    this.#api = new HttpApi(node.rpc, {
      maxBodyBytes: options.maxBodyBytes,
      forwardHeaders: options.forwardHeaders,
      retryAfterSeconds: options.retryAfterSeconds,
      gate,
      logger,
      addresses,
    });
    const ws = options.websocket;
    this.#door = new FrontDoor(
      {
        nodeId: node.nodeId,
        frames: node.frames,
        links: node.links,
        liveNodes: node.liveNodes,
        directory: node.directory,
        history: node.history,
        ringOf: (service) => node.endpoints.ring(service),
        findService: (path) => {
          const route = this.#routes.websocketService(path);
          return route === undefined ? undefined : { ...route, policy: handshakePolicy };
        },
      },
      {
        maxMessageBytes: ws.maxMessageBytes,
        maxBufferedBytes: ws.maxBufferedBytes,
        pingIntervalMs: ws.pingIntervalMs,
        sessionOpenTimeoutMs: ws.sessionOpenTimeoutMs,
        maxQueuedMessages: ws.maxQueuedMessages,
        maxHandshakesPerIpPerSecond: ws.maxHandshakesPerIpPerSecond,
        maxSessionsPerIp: ws.maxSessionsPerIp,
        maxSessionsPerBusinessId: ws.maxSessionsPerBusinessId,
        maxRoomsPerSession: ws.maxRoomsPerSession,
        maxRoomNameLength: ws.maxRoomNameLength,
        retryAfterSeconds: options.retryAfterSeconds,
        gate,
        logger,
      },
    );
    const demo = options.demo;
    if (demo !== undefined) {
      this.#demoHtml = demoPage(demo, { tokens: jwt !== undefined, issueTokens: demo.issueTokens, clientIntegrity: clientScript()?.integrity });
      if (demo.issueTokens) this.#demoTokens = jwt;
    }
    const dashboard = options.dashboard;
    if (dashboard !== undefined) {
      this.#dashboard = new Dashboard(
        {
          nodeId: node.nodeId,
          cluster: node.cluster.kind,
          view: () => node.view,
          links: node.links instanceof Peers ? node.links : undefined,
          unavailable: () => this.#routes.unavailable(),
          sessions: (top) => this.#door.sessionSummary(top),
          draining: () => this.#draining,
        },
        {
          gate,
          requireClaim: dashboard.requireClaim,
          topBusinessIds: dashboard.topBusinessIds ?? 10,
          retryAfterSeconds: options.retryAfterSeconds,
          logger,
        },
      );
      if (!gate.active)
        logger.warn('the dashboard at /dashboard is open: this gateway has neither auth.jwt nor authenticate, so anyone who reaches it sees it');
    }
    this.#openApiInfo = options.openApi;
    this.#openApiSecurity =
      jwt === undefined
        ? { bearerJwt: false }
        : {
            bearerJwt: true,
            description: `A JWT (${jwt.algorithms?.join(', ') ?? 'signed with the key the gateway was given'}) whose \`${jwt.businessIdClaim}\` claim is the businessId.`,
          };
    this.#node.onView((view) => this.#updateRoutes(view));
    this.#server = http.createServer((req, res) => this.#onRequest(req, res));
    this.#server.on('upgrade', (req, socket, head) => this.#door.handleUpgrade(req, socket, head));
    this.#server.on('clientError', (err, socket) => {
      if (socket.writable)
        socket.end(
          `HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-type: application/json\r\n\r\n${errorBody(new WeftError('BadRequest', 'malformed HTTP request'))}`,
        );
      else socket.destroy();
      logger.debug({ err: err.message }, 'malformed HTTP request');
    });
  }

  get nodeId(): string {
    return this.#node.nodeId;
  }

  get logger(): Logger {
    return this.#node.logger;
  }

  get port(): number {
    return this.#port;
  }

  get url(): string {
    return `http://${this.#httpHost.includes(':') ? `[${this.#httpHost}]` : this.#httpHost}:${this.#port}`;
  }

  get sessionCount(): number {
    return this.#door.sessionCount;
  }

  stats(): NodeStats {
    return { nodeId: this.nodeId, ...this.#node.linkStats(), callsInFlight: this.#node.rpc.inFlight, sessions: this.#door.sessionCount };
  }

  start(): Promise<Gateway> {
    if (this.#starting !== undefined) return Promise.reject(new WeftError('InvalidOption', 'gateway already started'));
    this.#starting = (async () => {
      try {
        await this.#node.start([]);
        this.#updateRoutes(this.#node.view);
        await listenOrExplain(this.#server, this.#httpHost, this.#httpPort, { host: 'http.host', port: 'http.port' }, 'gateway (HTTP)');
      } catch (err) {
        await this.#node.close();
        throw err;
      }
      this.#port = (this.#server.address() as AddressInfo).port;
      this.#door.start();
      this.#dashboard?.start();
      this.#node.logger.info({ url: this.url }, 'gateway listening');
      return this;
    })();
    return this.#starting;
  }

  /** Drains and stops; every caller gets the same promise, and a stop during start waits for it. */
  stop(): Promise<void> {
    this.#stopping ??= this.#stop();
    return this.#stopping;
  }

  async #stop(): Promise<void> {
    this.#draining = true;
    clearTimeout(this.#routeExpiry);
    this.#dashboard?.stop();
    if (this.#starting === undefined) return;
    if (
      (await this.#starting.then(
        () => true,
        () => false,
      )) === false
    )
      return;
    this.#node.announceDraining();
    await this.#node.deregister();
    await this.#door.drain(this.#stopTimeoutMs);
    const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()));
    this.#server.closeIdleConnections();
    const deadline = Date.now() + this.#stopTimeoutMs;
    while (this.#activeRequests > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    this.#server.closeAllConnections();
    await closed;
    await this.#node.close();
    this.#node.logger.info('gateway stopped');
  }

  /** Routes follow the registry; a gone service's routes expire by a timer, since no view change may come. */
  #updateRoutes(view: RegistryView): void {
    const logger = this.#node.logger;
    if (this.#routes.update(view)) {
      this.#openApiJson = undefined;
      this.#asyncApiJson = undefined;
      if (this.#starting !== undefined) logger.info({ services: this.#routes.contracts().map((c) => c.name) }, 'routes changed');
      for (const c of this.#routes.conflicts) {
        const key = `${c.route} ${c.refused}`;
        if (this.#reportedConflicts.has(key)) continue;
        this.#reportedConflicts.add(key);
        logger.error(c, `route ${c.route} is declared by ${c.kept} and ${c.refused}; ${c.kept} keeps it`);
      }
    }
    clearTimeout(this.#routeExpiry);
    const at = this.#routes.nextExpiryAt();
    if (at === undefined || this.#stopping !== undefined) return;
    this.#routeExpiry = setTimeout(() => this.#updateRoutes(this.#node.view), Math.max(0, at - Date.now()) + 1);
    this.#routeExpiry.unref();
  }

  #onRequest(req: http.IncomingMessage, res: http.ServerResponse): void {
    this.#activeRequests += 1;
    // One listener for all: a second on 'close' or 'finish' would make each emit copy a listener array.
    let served: (() => void) | undefined = undefined; // set below, once the request is routed
    res.on('close', () => {
      this.#activeRequests -= 1;
      served?.();
    });
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const path = q < 0 ? url : url.slice(0, q);
    const method = req.method ?? 'GET';
    const cors = this.#cors;
    if (cors !== undefined) {
      cors.decorate(req, res);
      if (cors.isPreflight(req)) return this.#preflight(cors, req, res, path);
    }
    if (method === 'GET') {
      if (path === '/healthz') return this.#health(res);
      if (path === '/metrics' && this.#metrics) return serveMetrics(res);
      if (path === '/readyz') return void this.#ready(res);
      if (path === '/swagger.json') return this.#openApi(res);
      if (path === '/asyncapi.json') return this.#asyncApi(res);
      if (path === '/demo' && this.#demoHtml !== undefined) {
        res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'content-length': Buffer.byteLength(this.#demoHtml) });
        res.end(this.#demoHtml);
        return;
      }
      if (this.#dashboard?.handles(path) === true) return void this.#dashboard.serve(req, res, path, parseQuery(q < 0 ? '' : url.slice(q + 1)));
      if (path === '/demo/token' && this.#demoTokens !== undefined) return this.#demoToken(this.#demoTokens, url, q, res);
      if (path === '/weft-client.js') {
        const script = clientScript();
        if (script !== null) return serveClientScript(script, req.headers['if-none-match'], res);
        return sendError(res, new WeftError('NotFound', 'weft-client.js was not built: run npm run build'), this.#retryAfterSeconds);
      }
    }
    if (this.#draining) {
      res.setHeader('connection', 'close');
      return sendError(res, new WeftError('Draining', 'gateway is shutting down'), this.#retryAfterSeconds);
    }
    let match;
    try {
      match = this.#routes.match(method, path);
    } catch {
      // decodeURIComponent of a path parameter
      return sendError(res, new WeftError('BadRequest', 'malformed URL encoding in the path'), this.#retryAfterSeconds);
    }
    const query = parseQuery(q < 0 ? '' : url.slice(q + 1));
    if (match === undefined) {
      req.resume();
      if ((method === 'GET' || method === 'HEAD') && this.#isWebSocketPath(path)) return this.#upgradeRequired(req, res, url);
      return sendError(res, new WeftError('NotFound', `no route for ${method} ${path}`), this.#retryAfterSeconds);
    }
    served = this.#api.handle(req, res, match, query, path);
  }

  /** A preflight from an allowed origin: 204 with the methods routed at `path`, or 404 when none is. */
  #preflight(cors: Cors, req: http.IncomingMessage, res: http.ServerResponse, path: string): void {
    const methods: string[] = [];
    try {
      for (const verb of ['GET', 'POST', 'PUT', 'PATCH', 'DELETE']) if (this.#routes.match(verb, path) !== undefined) methods.push(verb);
    } catch {
      // a malformed escape: no route
    }
    if (methods.length === 0) {
      req.resume();
      return sendError(res, new WeftError('NotFound', `no route for ${path}`), this.#retryAfterSeconds);
    }
    cors.preflight(req, res, methods);
  }

  #demoToken(jwt: JwtSettings, url: string, q: number, res: http.ServerResponse): void {
    const businessId = parseQuery(q < 0 ? '' : url.slice(q + 1))['businessid'];
    demoToken(jwt, businessId).then(
      (issued) => sendJson(res, 200, successBody(issued), { 'cache-control': 'no-store' }),
      (e: unknown) =>
        sendError(res, e instanceof WeftError ? e : new WeftError('ServerError', 'could not sign a demo token'), this.#retryAfterSeconds),
    );
  }

  /** A plain GET on a WebSocket path: 426, with the URL to open a WebSocket on. */
  /** Is a WebSocket service at `path` (a bad escape in a parameter segment: no)? */
  #isWebSocketPath(path: string): boolean {
    try {
      return this.#routes.websocketService(path) !== undefined;
    } catch {
      return false;
    }
  }

  #upgradeRequired(req: http.IncomingMessage, res: http.ServerResponse, url: string): void {
    const host = req.headers.host ?? new URL(this.url).host;
    const wsUrl = `ws://${host}${url}`;
    sendError(
      res,
      new WeftError('UpgradeRequired', `this is a WebSocket endpoint: open a WebSocket to ${wsUrl} (a plain HTTP GET has nothing to answer here)`, {
        data: { url: wsUrl },
      }),
      this.#retryAfterSeconds,
      { upgrade: 'websocket', connection: 'Upgrade' },
    );
  }

  /** Liveness: the process answers. 200 while it serves at all, draining included (see /readyz for routing). */
  #health(res: http.ServerResponse): void {
    const body = JSON.stringify({
      status: this.#draining ? 'draining' : 'ok',
      nodeId: this.#node.nodeId,
      cluster: this.#node.cluster.kind,
      services: this.#routes.contracts().map((c) => c.name),
      sessions: this.#door.sessionCount,
    });
    sendJson(res, 200, body, { 'cache-control': 'no-store' });
  }

  /**
   * Readiness: 200 when this gateway can do its work now, 503 with what is
   * missing otherwise: Redis reachable (when the cluster uses it), at least
   * one host known and one live host for every service it routes, not draining.
   */
  async #ready(res: http.ServerResponse): Promise<void> {
    const missing: string[] = [];
    if (this.#draining) missing.push('the gateway is draining (shutting down)');
    const backend = this.#node.backend;
    let backendProblem: string | undefined;
    if (backend !== undefined) {
      backendProblem = await backend.check();
      if (backendProblem !== undefined) missing.push(`${backend.name} is not reachable: ${backendProblem}`);
    }
    const hostsByService: Record<string, number> = {};
    let hosts = 0;
    for (const record of this.#node.view.values()) {
      if (record.role !== 'host') continue;
      hosts += 1;
      for (const s of record.services) hostsByService[s.contract.name] = (hostsByService[s.contract.name] ?? 0) + 1;
    }
    const unavailable = this.#routes.unavailable();
    for (const name of unavailable) hostsByService[name] = 0;
    if (hosts === 0) missing.push('no host is known: no service has registered with this cluster yet');
    for (const name of unavailable) missing.push(`service ${name} has no live host (its routes answer 503)`);
    const ready = missing.length === 0;
    const body = JSON.stringify({
      status: ready ? 'ready' : 'not ready',
      ready,
      nodeId: this.#node.nodeId,
      cluster: this.#node.cluster.kind,
      missing,
      checks: {
        draining: this.#draining,
        ...(backend === undefined
          ? {}
          : {
              backend: {
                name: backend.name,
                reachable: backendProblem === undefined,
                ...(backendProblem === undefined ? {} : { problem: backendProblem }),
              },
            }),
        hosts,
        services: hostsByService,
      },
    });
    sendJson(res, ready ? 200 : 503, body, { 'cache-control': 'no-store' });
  }

  #openApi(res: http.ServerResponse): void {
    this.#openApiJson ??= JSON.stringify(
      buildOpenApi(this.#routes.contracts(), this.#openApiInfo, this.#openApiSecurity, this.#routes.websocketServices()),
    );
    sendJson(res, 200, this.#openApiJson);
  }

  /** AsyncAPI 3.0.0 of the WebSocket services: their pushes and client messages. */
  #asyncApi(res: http.ServerResponse): void {
    this.#asyncApiJson ??= JSON.stringify(buildAsyncApi(this.#routes.websocketServices(), this.#openApiInfo, this.#openApiSecurity));
    sendJson(res, 200, this.#asyncApiJson);
  }
}

/**
 * Creates a gateway.
 *
 * @example
 * const gateway = await createGateway({ http: { port: 5000 } }).start();
 * // GET http://127.0.0.1:5000/api/greeter/greet?name=ann
 */
export function createGateway(options: GatewayOptions = {}): Gateway {
  return new GatewayImpl(options);
}
