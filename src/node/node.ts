/**
 * What every weft process is made of, whatever its role: an identity, a link
 * server, links to peers, a place in the registry, and an RPC client.
 * Hosts add an RPC server and modules; gateways add HTTP and WebSockets.
 */
import net from 'node:net';
import os from 'node:os';
import tls from 'node:tls';
import { randomBytes } from 'node:crypto';
import { WeftError } from '../errors.js';
import { createDefaultLogger, type Logger } from '../logger.js';
import { LIMITS } from '../limits.js';
import type { LinkTlsOptions, ResolvedNodeOptions } from './node-options.js';
import { FrameType, PROTOCOL_VERSION } from '../protocol/frames.js';
import type { LiveNodes, NodeRecord, NodeRole, RegistryView, ServiceRecord } from '../registry/registry.js';
import type { SessionDirectory } from '../directory/session-directory.js';
import type { HistoryStore } from '../history/history-store.js';
import { Endpoints } from '../rpc/endpoints.js';
import { RpcClient } from '../rpc/rpc-client.js';
import type { FrameRoutes, NodeLinks } from '../transport/peer-link.js';
import { Peers } from '../transport/peers.js';
import { FrameRouter } from './frame-router.js';
import { defaultCluster, type Cluster, type ClusterBackend, type ClusterMembership } from './cluster.js';

export type { NodeOptions, ResolvedNodeOptions } from './node-options.js';

/** Counters a host or gateway reports. */
export interface NodeStats {
  nodeId: string;
  /** Frames received from other nodes, by frame type name. */
  framesReceived: Record<string, number>;
  /** Links open now: TCP ones to other processes, direct ones to nodes of this process. */
  links: { tcp: number; direct: number };
  /** Calls in flight (served, on a host; made, on a gateway). */
  callsInFlight: number;
  /** WebSocket sessions held (gateways). */
  sessions: number;
}

function firstExternalAddress(): string {
  for (const list of Object.values(os.networkInterfaces())) {
    for (const a of list ?? []) if (a.family === 'IPv4' && !a.internal) return a.address;
  }
  return '127.0.0.1';
}

/**
 * `server.listen`, with the errors a person can act on said in words: a port
 * in use or not allowed names the option that changes it (`option` is put in
 * the error's `data`, so a command line can name its own flag instead).
 */
export function listenOrExplain(
  server: net.Server,
  host: string,
  port: number,
  options: { host: string; port: string },
  what: string,
): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException): void => {
      const where = `${host.includes(':') ? `[${host}]` : host}:${port}`;
      const [option, why] =
        err.code === 'EADDRINUSE'
          ? [options.port, `${where} is already in use by another process; choose another port, or 0 for any free one`]
          : err.code === 'EACCES'
            ? [options.port, `${where} may not be opened by this user (ports below 1024 need privileges); choose another port`]
            : err.code === 'EADDRNOTAVAIL'
              ? [options.host, `${host} is not an address of this machine`]
              : [undefined, undefined];
      if (option === undefined) return reject(err);
      reject(new WeftError('InvalidOption', `option "${option}": the ${what} cannot listen: ${why} (${err.code})`, { cause: err, data: { option } }));
    };
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      resolve();
    });
  });
}

/**
 * The parts every role builds on. Roles (host, gateway) hold the node and
 * hand each of their parts only the narrow pieces it needs: `frames` to claim
 * frame types, `links` to reach peers, `liveNodes`, `endpoints`, `directory`.
 */
export class WeftNode {
  readonly nodeId: string;
  readonly role: NodeRole;
  readonly logger: Logger;
  readonly cluster: Cluster;
  readonly endpoints = new Endpoints();
  readonly frames: FrameRoutes;
  readonly links: NodeLinks;
  readonly rpc: RpcClient;
  readonly maxFrameBytes: number;
  readonly directory: SessionDirectory;
  /** Push history of the cluster, if its backend keeps one. */
  readonly history: HistoryStore | undefined;
  readonly liveNodes: LiveNodes = { isLive: (nodeId) => this.#view.has(nodeId) };
  readonly #router: FrameRouter;
  readonly #peers: Peers;
  readonly #membership: ClusterMembership;
  readonly #viewListeners: ((view: RegistryView) => void)[] = [];
  readonly #listenHost: string;
  readonly #listenPort: number;
  readonly #advertiseHost: string | undefined;
  readonly #tls: LinkTlsOptions | undefined;
  #server: net.Server | undefined;
  /** Set once start() reached the cluster: only then is there membership to close. */
  #joined = false;
  #record: NodeRecord | undefined;
  #view: RegistryView = new Map();

  /** `options` come resolved (checked, defaults in) from the host or gateway, whose options include these. */
  constructor(role: NodeRole, options: ResolvedNodeOptions) {
    this.role = role;
    this.cluster = options.cluster ?? defaultCluster();
    this.nodeId = `${options.name ?? role}-${randomBytes(5).toString('hex')}`;
    this.logger = (options.logger ?? createDefaultLogger()).child({ node: this.nodeId });
    this.#listenHost = options.listen.host;
    this.#listenPort = options.listen.port;
    this.#advertiseHost = options.advertiseHost;
    this.#tls = options.tls;
    const maxFrameBytes = options.maxFrameBytes;
    this.maxFrameBytes = maxFrameBytes;
    this.#router = new FrameRouter(this.nodeId, this.logger);
    this.frames = this.#router;
    this.#peers = new Peers({
      nodeId: this.nodeId,
      secret: this.cluster.secret,
      maxFrameBytes,
      handshakeTimeoutMs: LIMITS.handshakeTimeoutMs,
      pingIntervalMs: options.linkPingIntervalMs,
      maxQueuedBytes: LIMITS.maxLinkQueuedBytes,
      logger: this.logger,
      connectTimeoutMs: options.connectTimeoutMs,
      backoffInitialMs: LIMITS.backoffInitialMs,
      backoffMaxMs: LIMITS.backoffMaxMs,
      ...(options.tls === undefined ? {} : { tls: options.tls.client }),
      resolve: (nodeId) => this.#view.get(nodeId)?.address,
      onFrame: this.#router.route,
      directInProcess: options.directInProcess,
      maxHandshakingLinks: LIMITS.maxHandshakingLinks,
      linkWarningIntervalMs: LIMITS.linkWarningIntervalMs,
      // Hosts in a hash ring: nothing else dials one that left the ring, so the links find out when it is back.
      redialUnreachable: (nodeId) => this.endpoints.inRing(nodeId),
    });
    this.links = this.#peers;
    // A host that cannot be dialed leaves the hash rings at once (new sessions, hashed calls go to live ones).
    this.#peers.onReachability((nodeId, reachable) => this.endpoints.setReachable(nodeId, reachable));
    this.rpc = new RpcClient(
      { links: this.links, endpoints: this.endpoints, frames: this.frames },
      {
        nodeId: this.nodeId,
        defaultTimeoutMs: options.callTimeoutMs,
        maxAttempts: options.maxAttempts,
        breaker: options.breaker,
        logger: this.logger,
      },
    );
    this.#membership = this.cluster.join(this.nodeId, this.logger);
    this.directory = this.#membership.directory;
    this.history = this.#membership.history;
  }

  /** The cluster's outside service (Redis), if it has one: for readiness. */
  get backend(): ClusterBackend | undefined {
    return this.#membership.backend;
  }

  get view(): RegistryView {
    return this.#view;
  }

  get linkAddress(): { host: string; port: number } | undefined {
    return this.#record?.address;
  }

  onView(listener: (view: RegistryView) => void): void {
    this.#viewListeners.push(listener);
  }

  /** Listens, joins the cluster and publishes this node's record. */
  async start(services: ServiceRecord[], beforeRegister?: () => Promise<void>): Promise<void> {
    const server = this.#tls ? tls.createServer(this.#tls.server) : net.createServer();
    server.on(this.#tls ? 'secureConnection' : 'connection', (socket: net.Socket) => this.#peers.accept(socket));
    await listenOrExplain(server, this.#listenHost, this.#listenPort, { host: 'listen.host', port: 'listen.port' }, 'link server');
    server.on('error', (err) => this.logger.error({ err }, 'link server error'));
    this.#server = server;
    const port = (server.address() as net.AddressInfo).port;
    const wildcard = this.#listenHost === '0.0.0.0' || this.#listenHost === '::';
    const host = this.#advertiseHost ?? (wildcard ? firstExternalAddress() : this.#listenHost);

    const { registry, directory, backend } = this.#membership;
    this.#joined = true;
    try {
      await registry.start();
      registry.onChange((view) => this.#setView(view));
      this.#setView(registry.view());
      await directory.start();
    } catch (err) {
      if (backend === undefined) throw err;
      // ioredis says only "Connection is closed."; the cause is in the error it reported before.
      const cause = backend.lastError() ?? (err as Error).message;
      throw new WeftError(
        'CommunicationError',
        `cannot reach ${backend.name}: ${cause} (is it running? is the cluster's "${backend.option}" right?)`,
        { cause: err, data: { option: backend.option } },
      );
    }
    await beforeRegister?.();
    this.#record = {
      nodeId: this.nodeId,
      role: this.role,
      address: { host, port },
      services,
      startedAt: Date.now(),
      protocol: PROTOCOL_VERSION,
    };
    this.#peers.acceptDirect();
    await registry.register(this.#record);
    this.#setView(new Map([...registry.view(), [this.nodeId, this.#record]]));
    this.logger.info({ link: `${host}:${port}`, cluster: this.cluster.kind, services: services.map((s) => s.contract.name) }, 'node started');
  }

  /** Tells every peer on its link that this node takes no new work (they stop routing here at once). */
  announceDraining(): void {
    for (const link of this.#peers.openLinks()) {
      try {
        link.send([FrameType.Draining]);
      } catch {
        // closing anyway
      }
    }
  }

  /** Leaves the registry (others stop routing here) without closing anything. */
  async deregister(): Promise<void> {
    if (this.#record === undefined) return;
    try {
      await this.#membership.registry.deregister();
    } catch (err) {
      this.logger.warn({ err: (err as Error).message }, 'could not deregister');
    }
  }

  /** Closes links, the link server and the cluster membership. */
  async close(): Promise<void> {
    this.rpc.failAll(new WeftError('CommunicationError', 'node is stopping'));
    this.#peers.closeAll();
    const server = this.#server;
    this.#server = undefined;
    if (server !== undefined) await new Promise<void>((resolve) => server.close(() => resolve()));
    if (!this.#joined) return;
    await this.#membership.history?.close();
    await this.#membership.directory.close();
    await this.#membership.registry.close();
  }

  #setView(view: RegistryView): void {
    this.#view = view;
    this.endpoints.update(view);
    // Per-peer state of nodes that left goes with them (node ids never come back).
    const live = (id: string): boolean => view.has(id);
    this.#peers.forgetAllBut(live);
    this.rpc.forgetAllBut(live);
    for (const l of this.#viewListeners) l(view);
  }

  /** What a node's stats() report of its links and frames. */
  linkStats(): Pick<NodeStats, 'framesReceived' | 'links'> {
    return { framesReceived: this.#router.received(), links: this.#peers.counts() };
  }
}
