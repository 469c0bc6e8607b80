/**
 * The links of one node: at most one per peer in the normal case, used in
 * both directions. A link is dialed when first needed and dialed again after
 * a failure, with exponential backoff per peer; while a peer is backing off,
 * `connect` fails at once so callers can fail over instead of waiting.
 *
 * A peer that is a node of this process (and of the same cluster) gets a
 * direct link instead of a TCP one, unless either side turned that off.
 *
 * A peer whose link fails authentication (it refused our proof, or we
 * refused its: another secret, another protocol version) is "refused": the
 * parts that choose nodes leave it out (`isRefused`) until a link to it
 * succeeds, in either direction; a probe dials it every backoffMaxMs to
 * find out. That is logged once per peer, not per attempt.
 *
 * A peer that cannot be dialed (a dial failed, or its last link closed and
 * was not dialed again yet) is "unreachable" until a link to it opens, in
 * either direction: `onReachability` tells the parts that build hash rings,
 * so new work goes to live nodes at once instead of after the registry
 * drops the dead one. A peer work is chosen for (`redialUnreachable`: hosts
 * that serve something) is dialed again at once when its last link closes,
 * then every backoffMaxMs while it stays unreachable and in the registry;
 * nothing else would dial it, since nothing chooses it.
 *
 * Inbound connections still in handshake are capped (`maxHandshakingLinks`);
 * one over the cap is closed at once. The warnings a peer can cause at will
 * are rate-limited per node (warn-limiter.ts).
 */
import net from 'node:net';
import tls from 'node:tls';
import { Backoff } from '../util/backoff.js';
import { WeftError } from '../errors.js';
import { DirectLink } from './direct-link.js';
import { Link, type LinkOptions } from './link.js';
import type { FrameSink, NodeLinks, PeerLink } from './peer-link.js';
import { WarnLimiter } from './warn-limiter.js';

export interface PeerAddress {
  host: string;
  port: number;
}

export interface PeersOptions extends LinkOptions {
  connectTimeoutMs: number;
  backoffInitialMs: number;
  backoffMaxMs: number;
  /** TLS for dialed links; when set, the link server must use TLS too. */
  tls?: tls.ConnectionOptions;
  /** Finds a peer's address (from the registry). */
  resolve: (nodeId: string) => PeerAddress | undefined;
  /** Where every frame received on any link goes. */
  onFrame: FrameSink;
  /** Take direct links to nodes of this process. */
  directInProcess: boolean;
  /** Inbound links in handshake at once; a connection beyond is closed at once. */
  maxHandshakingLinks: number;
  /** Warnings peers can cause at will are logged at most once per this (a count of the rest follows). */
  linkWarningIntervalMs: number;
  /** Should an unreachable peer be dialed again until it is back? Default: never. */
  redialUnreachable?: (nodeId: string) => boolean;
}

/** What is known of a peer whose link failed authentication. */
interface Refusal {
  reason: string;
  /** The next probe dial. */
  probe: NodeJS.Timeout | undefined;
}

/** Peers of this process's started nodes that take direct links, by node id. */
const inProcess = new Map<string, Peers>();

/**
 * A dialed link that closes sooner than this after its handshake counts as a
 * failed dial: a peer that accepts and then drops every link is backed off,
 * not redialed in a loop. One that lived longer is redialed at once.
 */
const LINK_HEALTHY_AFTER_MS = 2_000;

export class Peers implements NodeLinks {
  readonly #o: PeersOptions;
  readonly #links = new Map<string, PeerLink[]>();
  readonly #dialing = new Map<string, Promise<PeerLink>>();
  readonly #backoff = new Map<string, Backoff>();
  readonly #all = new Set<PeerLink>();
  readonly #closedListeners: ((link: PeerLink) => void)[] = [];
  readonly #refused = new Map<string, Refusal>();
  /** Peers that cannot be dialed now, with the timer of the next dial. */
  readonly #unreachable = new Map<string, NodeJS.Timeout | undefined>();
  readonly #reachabilityListeners: ((nodeId: string, reachable: boolean) => void)[] = [];
  /** Links that completed their handshake. */
  readonly #everOpened = new WeakSet<PeerLink>();
  readonly #warnings: WarnLimiter;
  /** What each TCP link is built with: the node's options and its one warning limiter. */
  readonly #linkOptions: LinkOptions;
  /** Inbound links not yet authenticated. */
  #handshaking = 0;
  #closed = false;

  constructor(options: PeersOptions) {
    this.#o = options;
    this.#warnings = options.warnings ?? new WarnLimiter(options.logger, options.linkWarningIntervalMs);
    this.#linkOptions = { ...options, warnings: this.#warnings };
  }

  onLinkClosed(listener: (link: PeerLink) => void): void {
    this.#closedListeners.push(listener);
  }

  /** Called when a peer becomes unreachable (false) and when a link to it opens again (true). */
  onReachability(listener: (nodeId: string, reachable: boolean) => void): void {
    this.#reachabilityListeners.push(listener);
  }

  /** Did the last dial of `nodeId` fail, or its last link close, with no link opening since? */
  isUnreachable(nodeId: string): boolean {
    return this.#unreachable.has(nodeId);
  }

  /** From now on, nodes of this process reach this one by direct links. */
  acceptDirect(): void {
    if (this.#o.directInProcess && !this.#closed) inProcess.set(this.#o.nodeId, this);
  }

  /** An open link to `nodeId`, if there is one now. */
  get(nodeId: string): PeerLink | undefined {
    const list = this.#links.get(nodeId);
    if (list === undefined) return undefined;
    for (const link of list) if (link.isOpen) return link;
    return undefined;
  }

  /** An open link to `nodeId`, dialing one if needed. */
  connect(nodeId: string): Promise<PeerLink> {
    const open = this.get(nodeId);
    if (open !== undefined) return Promise.resolve(open);
    const dialing = this.#dialing.get(nodeId);
    if (dialing !== undefined) return dialing;
    if (this.#closed) return Promise.reject(new WeftError('CommunicationError', 'node is stopped'));
    const local = this.#o.directInProcess ? inProcess.get(nodeId) : undefined;
    // Same cluster only: a node of another cluster in this process is not a peer.
    if (local !== undefined && local.#o.secret === this.#o.secret) return Promise.resolve(this.#pairWith(local));
    const backoff = this.#backoff.get(nodeId);
    const wait = backoff?.remainingMs() ?? 0;
    if (wait > 0) {
      return Promise.reject(new WeftError('CommunicationError', `peer ${nodeId} is unreachable; next attempt in ${Math.ceil(wait)} ms`));
    }
    const address = this.#o.resolve(nodeId);
    if (address === undefined) {
      return Promise.reject(new WeftError('CommunicationError', `peer ${nodeId} is not in the registry`));
    }
    const attempt = this.#dial(nodeId, address).finally(() => this.#dialing.delete(nodeId));
    this.#dialing.set(nodeId, attempt);
    return attempt;
  }

  /** Forgets what is known of peers that left the registry (their backoff and refusal state). */
  forgetAllBut(live: (nodeId: string) => boolean): void {
    for (const nodeId of this.#backoff.keys()) if (!live(nodeId)) this.#backoff.delete(nodeId);
    for (const nodeId of this.#refused.keys()) if (!live(nodeId)) this.#unrefuse(nodeId);
    for (const [nodeId, probe] of this.#unreachable) {
      if (live(nodeId)) continue;
      clearTimeout(probe);
      this.#unreachable.delete(nodeId);
    }
  }

  /** Did the last link to `nodeId` fail authentication, with none succeeding since? */
  isRefused(nodeId: string): boolean {
    return this.#refused.has(nodeId);
  }

  /** Is `nodeId` backing off after failures? */
  isBackingOff(nodeId: string): boolean {
    const b = this.#backoff.get(nodeId);
    return b !== undefined && b.remainingMs() > 0;
  }

  /** Takes an inbound connection from the link server. */
  accept(socket: net.Socket): void {
    if (this.#closed) {
      socket.destroy();
      return;
    }
    if (this.#handshaking >= this.#o.maxHandshakingLinks) {
      // Unauthenticated peers cannot make this node hold more than this many sockets and timers.
      this.#warnings.warn(
        { peer: `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? '?'}`, limit: this.#o.maxHandshakingLinks },
        'too many links in handshake; closing a new connection',
      );
      socket.destroy();
      return;
    }
    socket.setNoDelay(true);
    this.#handshaking += 1;
    const link = new Link(socket, 'acceptor', this.#linkOptions);
    const settled = (): void => {
      this.#handshaking -= 1;
    };
    this.#track(link, settled, settled);
  }

  /** Open links by kind. */
  counts(): { tcp: number; direct: number } {
    let tcp = 0;
    let direct = 0;
    for (const link of this.#all) {
      if (!link.isOpen) continue;
      if (link instanceof DirectLink) direct += 1;
      else tcp += 1;
    }
    return { tcp, direct };
  }

  /** Every open link (for announcements such as Draining). */
  openLinks(): PeerLink[] {
    return [...this.#all].filter((l) => l.isOpen);
  }

  /** Closes every link. */
  closeAll(): void {
    this.#closed = true;
    if (inProcess.get(this.#o.nodeId) === this) inProcess.delete(this.#o.nodeId);
    for (const refusal of this.#refused.values()) clearTimeout(refusal.probe);
    for (const probe of this.#unreachable.values()) clearTimeout(probe);
    this.#unreachable.clear();
    for (const link of [...this.#all]) link.close();
    this.#warnings.flush();
  }

  #pairWith(other: Peers): PeerLink {
    const [mine, theirs] = DirectLink.pair(this.#o.nodeId, this.#o.onFrame, this.#o, other.#o.nodeId, other.#o.onFrame, other.#o);
    this.#adopt(mine);
    if (other !== this) other.#adopt(theirs);
    else this.#adopt(theirs);
    return mine;
  }

  #adopt(link: DirectLink): void {
    this.#all.add(link);
    this.#opened(link);
    link.onClose = (l) => this.#forget(l);
  }

  #opened(link: PeerLink): void {
    this.#everOpened.add(link);
    this.#reachable(link.peerNodeId);
    // A link that authenticated, in either direction, ends a refusal.
    if (this.#refused.has(link.peerNodeId)) {
      this.#unrefuse(link.peerNodeId);
      this.#o.logger.info({ peer: link.peerNodeId }, 'a link to a refused peer succeeded; it is chosen again');
    }
    let list = this.#links.get(link.peerNodeId);
    if (list === undefined) this.#links.set(link.peerNodeId, (list = []));
    list.push(link);
  }

  #forget(link: PeerLink): void {
    this.#all.delete(link);
    const list = this.#links.get(link.peerNodeId);
    if (list !== undefined) {
      const i = list.indexOf(link);
      if (i >= 0) list.splice(i, 1);
      if (list.length === 0) this.#links.delete(link.peerNodeId);
    }
    // Its last link is gone: out of the rings until it is dialed again (before the listeners, which may choose a node).
    if (this.#everOpened.has(link) && this.get(link.peerNodeId) === undefined) this.#markUnreachable(link.peerNodeId, 0);
    if (link.peerNodeId !== '') for (const listener of this.#closedListeners) listener(link);
  }

  #dial(nodeId: string, address: PeerAddress): Promise<PeerLink> {
    return new Promise<PeerLink>((resolve, reject) => {
      const socket = this.#o.tls
        ? tls.connect({ ...this.#o.tls, host: address.host, port: address.port })
        : net.connect({ host: address.host, port: address.port });
      socket.setNoDelay(true);
      const timer = setTimeout(() => {
        socket.destroy();
        fail(
          new WeftError('CommunicationError', `could not reach ${nodeId} at ${address.host}:${address.port} within ${this.#o.connectTimeoutMs} ms`),
        );
      }, this.#o.connectTimeoutMs);
      let settled = false;
      const fail = (error: WeftError): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        this.#recordFailure(nodeId);
        if (error.code === 'LinkUnauthenticated') this.#refuse(nodeId, error.message);
        else this.#markUnreachable(nodeId, this.#o.backoffMaxMs);
        reject(error);
      };
      const link = new Link(socket, 'dialer', this.#linkOptions);
      let closedAfterOpen: (() => void) | undefined;
      this.#track(
        link,
        (opened) => {
          if (settled) return;
          settled = true;
          clearTimeout(timer);
          if (opened.peerNodeId !== nodeId) {
            // The address now belongs to another node (a restart on the same port).
            opened.close();
            this.#recordFailure(nodeId);
            this.#markUnreachable(nodeId, this.#o.backoffMaxMs);
            reject(new WeftError('CommunicationError', `expected node ${nodeId} at ${address.host}:${address.port}, found ${opened.peerNodeId}`));
            return;
          }
          // Kept until the link proves healthy: see LINK_HEALTHY_AFTER_MS.
          const openedAt = Date.now();
          closedAfterOpen = () => {
            if (Date.now() - openedAt >= LINK_HEALTHY_AFTER_MS) this.#backoff.delete(nodeId);
            else this.#recordFailure(nodeId);
          };
          resolve(opened);
        },
        fail,
        () => closedAfterOpen?.(),
      );
    });
  }

  /** `nodeId` failed authentication: left out of selection and logged, once; probed from now on. */
  #refuse(nodeId: string, reason: string): void {
    if (this.#refused.has(nodeId)) return;
    const refusal: Refusal = { reason, probe: undefined };
    this.#refused.set(nodeId, refusal);
    this.#o.logger.warn({ peer: nodeId, reason }, 'link to a peer failed authentication; it is left out of selection until a link to it succeeds');
    this.#scheduleProbe(nodeId, refusal);
  }

  /**
   * Dials a refused peer again every backoffMaxMs, whatever else happens: nothing
   * else would (no part chooses it), and one that links now is chosen again (#opened).
   */
  #scheduleProbe(nodeId: string, refusal: Refusal): void {
    if (this.#closed) return;
    refusal.probe = setTimeout(() => {
      refusal.probe = undefined;
      if (this.#refused.get(nodeId) !== refusal || this.#closed) return;
      const again = (): void => {
        if (this.#refused.get(nodeId) === refusal) this.#scheduleProbe(nodeId, refusal);
      };
      if (this.isBackingOff(nodeId)) return again();
      this.#o.logger.debug({ peer: nodeId, reason: refusal.reason }, 'dialing a refused peer again');
      this.connect(nodeId).then(again, again);
    }, this.#o.backoffMaxMs);
    refusal.probe.unref();
  }

  /** `nodeId` cannot be dialed now: say so once, and (if it is one to redial) dial it again in `delayMs`. */
  #markUnreachable(nodeId: string, delayMs: number): void {
    if (this.#closed || this.#o.resolve(nodeId) === undefined) return;
    const known = this.#unreachable.has(nodeId);
    clearTimeout(this.#unreachable.get(nodeId));
    let probe: NodeJS.Timeout | undefined;
    if (this.#o.redialUnreachable?.(nodeId) === true) {
      probe = setTimeout(() => this.#probeUnreachable(nodeId), delayMs);
      probe.unref();
    }
    this.#unreachable.set(nodeId, probe);
    if (!known) for (const listener of this.#reachabilityListeners) listener(nodeId, false);
  }

  /** Nothing chooses an unreachable peer, so this is what finds out that it is back. */
  #probeUnreachable(nodeId: string): void {
    if (this.#closed || !this.#unreachable.has(nodeId)) return;
    this.#unreachable.set(nodeId, undefined);
    this.connect(nodeId).catch(() => {
      // A failed dial scheduled the next probe itself (#markUnreachable); one refused at once (backing off) did not.
      if (!this.#unreachable.has(nodeId) || this.#unreachable.get(nodeId) !== undefined) return;
      this.#markUnreachable(nodeId, Math.max(this.#backoff.get(nodeId)?.remainingMs() ?? 0, this.#o.backoffInitialMs));
    });
  }

  #reachable(nodeId: string): void {
    if (!this.#unreachable.has(nodeId)) return;
    clearTimeout(this.#unreachable.get(nodeId));
    this.#unreachable.delete(nodeId);
    for (const listener of this.#reachabilityListeners) listener(nodeId, true);
  }

  #unrefuse(nodeId: string): void {
    const refusal = this.#refused.get(nodeId);
    if (refusal === undefined) return;
    clearTimeout(refusal.probe);
    this.#refused.delete(nodeId);
  }

  #recordFailure(nodeId: string): void {
    let b = this.#backoff.get(nodeId);
    if (b === undefined) {
      // Jitter keeps many nodes from redialing a restarted peer in step. Health is judged
      // here, by how long a dialed link stayed up, so the helper's own reset is not used.
      b = new Backoff({ initialDelayMs: this.#o.backoffInitialMs, maxDelayMs: this.#o.backoffMaxMs, jitter: 0.5, healthyAfterMs: 0 });
      this.#backoff.set(nodeId, b);
    }
    b.nextDelayMs();
  }

  #track(link: Link, opened?: (link: Link) => void, failed?: (error: WeftError) => void, closed?: () => void): void {
    this.#all.add(link);
    link.onFrame = this.#o.onFrame;
    link.onOpen = (l) => {
      this.#opened(l);
      opened?.(l);
    };
    link.onClose = (l, error) => {
      if (failed !== undefined && !l.isOpen) failed(error ?? new WeftError('CommunicationError', 'link closed during the handshake'));
      closed?.();
      this.#forget(l);
    };
  }
}
