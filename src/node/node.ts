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
import { DEFAULTS } from '../options.js';
import type { LinkTlsOptions, ResolvedNodeOptions } from '../options/node-options.js';
import { FrameType, PROTOCOL_VERSION, type Frame } from '../protocol/frames.js';
import type { NodeRecord, NodeRole, RegistryView, ServiceRecord } from '../registry/registry.js';
import { Endpoints } from '../rpc/endpoints.js';
import { RpcClient, type LocalInvoke } from '../rpc/rpc-client.js';
import type { Link } from '../transport/link.js';
import type { PushFrame } from '../sessions/push-client.js';
import { Peers } from '../transport/peers.js';
import { defaultCluster, type Cluster, type ClusterMembership } from './cluster.js';

export type { NodeOptions, ResolvedNodeOptions } from '../options/node-options.js';

type FrameHandler = (frame: Frame, link: Link) => void;

/** Started nodes of this process that take direct calls, by node id. */
const localNodes = new Map<string, WeftNode>();

/** Counters a host or gateway reports. */
export interface NodeStats {
  nodeId: string;
  /** Frames received from other nodes, by frame type name. */
  framesReceived: Record<string, number>;
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

export class WeftNode {
  readonly nodeId: string;
  readonly role: NodeRole;
  readonly logger: Logger;
  readonly cluster: Cluster;
  readonly endpoints = new Endpoints();
  readonly peers: Peers;
  readonly rpc: RpcClient;
  readonly maxFrameBytes: number;
  /** Set by a host: serves a call from a node of this process without a link. */
  localInvoke: LocalInvoke | undefined;
  /** Set by a gateway: delivers a push from a node of this process without a link; returns sessions reached. */
  localPush: ((frame: PushFrame) => number) | undefined;
  readonly #direct: boolean;
  /** Frame handlers by frame type, set by the role (host sessions, gateway pushes). */
  readonly #handlers: (FrameHandler | undefined)[] = [];
  /** Frames received, by frame type. */
  readonly #framesIn = new Map<number, number>();
  readonly #viewListeners = new Set<(view: RegistryView) => void>();
  readonly #linkClosedListeners = new Set<(link: Link) => void>();
  readonly #listenHost: string;
  readonly #listenPort: number;
  readonly #advertiseHost: string | undefined;
  readonly #tls: LinkTlsOptions | undefined;
  #membership: ClusterMembership | undefined;
  #server: net.Server | undefined;
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
    this.maxFrameBytes = options.maxFrameBytes;
    this.peers = new Peers({
      nodeId: this.nodeId,
      secret: this.cluster.secret,
      maxFrameBytes: options.maxFrameBytes,
      handshakeTimeoutMs: DEFAULTS.handshakeTimeoutMs,
      pingIntervalMs: options.linkPingIntervalMs,
      maxQueuedBytes: DEFAULTS.maxLinkQueuedBytes,
      logger: this.logger,
      connectTimeoutMs: options.connectTimeoutMs,
      backoffInitialMs: DEFAULTS.backoffInitialMs,
      backoffMaxMs: DEFAULTS.backoffMaxMs,
      ...(options.tls === undefined ? {} : { tls: options.tls.client }),
      resolve: (nodeId) => this.#view.get(nodeId)?.address,
    });
    this.rpc = new RpcClient(this.peers, this.endpoints, {
      nodeId: this.nodeId,
      defaultTimeoutMs: options.callTimeoutMs,
      maxAttempts: options.maxAttempts,
      breaker: options.breaker,
      logger: this.logger,
    });
    this.rpc.setDrainingCheck((nodeId) => this.peers.get(nodeId)?.peerDraining === true);
    this.#direct = options.directInProcess;
    this.rpc.setLocalInvoker((nodeId) => this.local(nodeId)?.localInvoke);
    this.peers.onFrame = (frame, link) => this.#onFrame(frame, link);
    this.peers.onLinkClosed = (link) => {
      this.rpc.onLinkClosed(link);
      for (const l of this.#linkClosedListeners) l(link);
    };
  }

  get membership(): ClusterMembership {
    if (this.#membership === undefined) throw new WeftError('ServerError', 'node is not started');
    return this.#membership;
  }

  get view(): RegistryView {
    return this.#view;
  }

  get linkAddress(): { host: string; port: number } | undefined {
    return this.#record?.address;
  }

  /** Another started node of this process that takes direct calls (this one included), if `nodeId` is one. */
  local(nodeId: string): WeftNode | undefined {
    if (!this.#direct) return undefined;
    const node = localNodes.get(nodeId);
    return node !== undefined && node.#direct ? node : undefined;
  }

  /** Routes frames of `type` to `handler`. */
  handle(type: FrameType, handler: FrameHandler): void {
    this.#handlers[type] = handler;
  }

  onView(listener: (view: RegistryView) => void): void {
    this.#viewListeners.add(listener);
  }

  onLinkClosed(listener: (link: Link) => void): void {
    this.#linkClosedListeners.add(listener);
  }

  /** Listens, joins the cluster and publishes this node's record. */
  async start(services: ServiceRecord[], beforeRegister?: () => Promise<void>): Promise<void> {
    const server = this.#tls ? tls.createServer(this.#tls.server) : net.createServer();
    server.on(this.#tls ? 'secureConnection' : 'connection', (socket: net.Socket) => this.peers.accept(socket));
    server.on('error', (err) => this.logger.error({ err }, 'link server error'));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.#listenPort, this.#listenHost, () => {
        server.off('error', reject);
        resolve();
      });
    });
    this.#server = server;
    const port = (server.address() as net.AddressInfo).port;
    const wildcard = this.#listenHost === '0.0.0.0' || this.#listenHost === '::';
    const host = this.#advertiseHost ?? (wildcard ? firstExternalAddress() : this.#listenHost);

    const membership = this.cluster.join(this.nodeId, this.logger);
    this.#membership = membership;
    await membership.registry.start();
    membership.registry.onChange((view) => this.#setView(view));
    this.#setView(membership.registry.view());
    await membership.directory.start();
    await beforeRegister?.();
    this.#record = {
      nodeId: this.nodeId,
      role: this.role,
      address: { host, port },
      services,
      startedAt: Date.now(),
      protocol: PROTOCOL_VERSION,
    };
    localNodes.set(this.nodeId, this);
    await membership.registry.register(this.#record);
    this.#setView(new Map([...membership.registry.view(), [this.nodeId, this.#record]]));
    this.logger.info({ link: `${host}:${port}`, cluster: this.cluster.kind, services: services.map((s) => s.contract.name) }, 'node started');
  }

  /** Tells every peer on its link that this node takes no new work (they stop routing here at once). */
  announceDraining(): void {
    for (const link of this.peers.openLinks()) {
      try {
        link.send([FrameType.Draining]);
      } catch {
        // closing anyway
      }
    }
  }

  /** Leaves the registry (others stop routing here) without closing anything. */
  async deregister(): Promise<void> {
    try {
      await this.#membership?.registry.deregister();
    } catch (err) {
      this.logger.warn({ err: (err as Error).message }, 'could not deregister');
    }
  }

  /** Closes links, the link server and the cluster membership. */
  async close(): Promise<void> {
    localNodes.delete(this.nodeId);
    this.rpc.failAll(new WeftError('CommunicationError', 'node is stopping'));
    this.peers.closeAll();
    const server = this.#server;
    this.#server = undefined;
    if (server !== undefined) await new Promise<void>((resolve) => server.close(() => resolve()));
    const m = this.#membership;
    if (m !== undefined) {
      await m.directory.close();
      await m.registry.close();
    }
  }

  #setView(view: RegistryView): void {
    this.#view = view;
    this.endpoints.update(view);
    // Per-peer state of nodes that left goes with them (node ids never come back).
    const live = (id: string): boolean => view.has(id);
    this.peers.forgetAllBut(live);
    this.rpc.forgetAllBut(live);
    for (const l of this.#viewListeners) l(view);
  }

  /** Frames received since start, by frame type name. */
  framesReceived(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [name, type] of Object.entries(FrameType)) {
      const n = this.#framesIn.get(type);
      if (n !== undefined) out[name] = n;
    }
    return out;
  }

  #onFrame(frame: Frame, link: Link): void {
    this.#framesIn.set(frame[0], (this.#framesIn.get(frame[0]) ?? 0) + 1);
    switch (frame[0]) {
      case FrameType.Result:
        this.rpc.onResult(frame);
        return;
      case FrameType.Error:
        this.rpc.onError(frame);
        return;
      default: {
        const handler = this.#handlers[frame[0]];
        if (handler !== undefined) {
          handler(frame, link);
          return;
        }
        if (frame[0] === FrameType.Call) {
          link.send([FrameType.Error, frame[1], { code: 'NotFound', message: `node ${this.nodeId} serves no services` }]);
          return;
        }
        if (frame[0] !== FrameType.Draining) {
          this.logger.debug({ type: frame[0], peer: link.peerNodeId }, 'ignoring a frame this node does not handle');
        }
      }
    }
  }
}
