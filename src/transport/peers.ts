/**
 * The links of one node: at most one per peer in the normal case, used in
 * both directions. A link is dialed when first needed and dialed again after
 * a failure, with exponential backoff per peer; while a peer is backing off,
 * `connect` fails at once so callers can fail over instead of waiting.
 */
import net from 'node:net';
import tls from 'node:tls';
import { Backoff as ExponentialBackoff } from '../util/backoff.js';
import { WeftError } from '../errors.js';
import type { Frame } from '../protocol/frames.js';
import { Link, type LinkOptions } from './link.js';

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
}

interface Backoff {
  /** A dial failed: doubles this peer's wait (util/backoff.ts). */
  nextDelayMs(): number;
  /** How long this peer still waits before the next dial; 0 when it may be dialed. */
  remainingMs(): number;
}

export class Peers {
  onFrame: (frame: Frame, link: Link) => void = () => {};
  onLinkOpen: (link: Link) => void = () => {};
  onLinkClosed: (link: Link, error: WeftError | undefined) => void = () => {};

  readonly #o: PeersOptions;
  readonly #links = new Map<string, Link[]>();
  readonly #dialing = new Map<string, Promise<Link>>();
  readonly #backoff = new Map<string, Backoff>();
  readonly #all = new Set<Link>();
  #closed = false;

  constructor(options: PeersOptions) {
    this.#o = options;
  }

  /** An open link to `nodeId`, if there is one now. */
  get(nodeId: string): Link | undefined {
    const list = this.#links.get(nodeId);
    if (list === undefined) return undefined;
    for (const link of list) if (link.isOpen) return link;
    return undefined;
  }

  /** An open link to `nodeId`, dialing one if needed. */
  connect(nodeId: string): Promise<Link> {
    const open = this.get(nodeId);
    if (open !== undefined) return Promise.resolve(open);
    const dialing = this.#dialing.get(nodeId);
    if (dialing !== undefined) return dialing;
    if (this.#closed) return Promise.reject(new WeftError('CommunicationError', 'node is stopped'));
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

  /** Forgets what is known of peers that left the registry (their backoff state). */
  forgetAllBut(live: (nodeId: string) => boolean): void {
    for (const nodeId of this.#backoff.keys()) if (!live(nodeId)) this.#backoff.delete(nodeId);
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
    socket.setNoDelay(true);
    const link = new Link(socket, 'acceptor', this.#o);
    this.#track(link);
  }

  /** Every open link (for announcements such as Draining). */
  openLinks(): Link[] {
    return [...this.#all].filter((l) => l.isOpen);
  }

  /** Closes every link. */
  closeAll(): void {
    this.#closed = true;
    for (const link of this.#all) link.close();
  }

  #dial(nodeId: string, address: PeerAddress): Promise<Link> {
    return new Promise<Link>((resolve, reject) => {
      const socket = this.#o.tls
        ? tls.connect({ ...this.#o.tls, host: address.host, port: address.port })
        : net.connect({ host: address.host, port: address.port });
      socket.setNoDelay(true);
      const timer = setTimeout(() => {
        socket.destroy();
        fail(new WeftError('CommunicationError', `could not reach ${nodeId} at ${address.host}:${address.port} within ${this.#o.connectTimeoutMs} ms`));
      }, this.#o.connectTimeoutMs);
      let settled = false;
      const fail = (error: WeftError): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        this.#recordFailure(nodeId);
        reject(error);
      };
      const link = new Link(socket, 'dialer', this.#o);
      this.#track(link, (opened) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        if (opened.peerNodeId !== nodeId) {
          // The address now belongs to another node (a restart on the same port).
          opened.close();
          this.#recordFailure(nodeId);
          reject(new WeftError('CommunicationError', `expected node ${nodeId} at ${address.host}:${address.port}, found ${opened.peerNodeId}`));
          return;
        }
        this.#backoff.delete(nodeId);
        resolve(opened);
      }, fail);
    });
  }

  #recordFailure(nodeId: string): void {
    let b = this.#backoff.get(nodeId);
    if (b === undefined) {
      // Jitter keeps many nodes from redialing a restarted peer in step. A dial that completes
      // its handshake drops the entry: a link counts as healthy once it is open.
      b = new ExponentialBackoff({ initialDelayMs: this.#o.backoffInitialMs, maxDelayMs: this.#o.backoffMaxMs, jitter: 0.5, healthyAfterMs: 0 });
      this.#backoff.set(nodeId, b);
    }
    b.nextDelayMs();
  }

  #track(link: Link, opened?: (link: Link) => void, failed?: (error: WeftError) => void): void {
    this.#all.add(link);
    link.onFrame = (frame, l) => this.onFrame(frame, l);
    link.onOpen = (l) => {
      let list = this.#links.get(l.peerNodeId);
      if (list === undefined) this.#links.set(l.peerNodeId, (list = []));
      list.push(l);
      opened?.(l);
      this.onLinkOpen(l);
    };
    link.onClose = (l, error) => {
      this.#all.delete(l);
      const list = this.#links.get(l.peerNodeId);
      if (list !== undefined) {
        const i = list.indexOf(l);
        if (i >= 0) list.splice(i, 1);
        if (list.length === 0) this.#links.delete(l.peerNodeId);
      }
      if (failed !== undefined && !l.isOpen) failed(error ?? new WeftError('CommunicationError', 'link closed during the handshake'));
      if (l.peerNodeId !== '') this.onLinkClosed(l, error);
    };
  }
}
