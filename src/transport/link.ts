/**
 * A link: one long-lived, authenticated, framed connection between two nodes.
 *
 * Both ends prove they hold the cluster secret before any other frame is
 * accepted (HMAC challenge and response, each side with its own nonce, so the
 * secret never crosses the wire). Frames sent in the same tick leave in one
 * write. A malformed or oversized frame closes this link only.
 */
import { counts } from '../metrics/metrics.js';
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Duplex } from 'node:stream';
import { WeftError, toWire, fromWire } from '../errors.js';
import { FRAME_HEADER_BYTES, FrameDecoder, FrameType, PROTOCOL_VERSION, packFrame, type Frame, type SharedFrame } from '../protocol/frames.js';
import type { Logger } from '../logger.js';
import type { PeerLink } from './peer-link.js';
import type { WarnLimiter } from './warn-limiter.js';

export interface LinkOptions {
  nodeId: string;
  secret: string;
  maxFrameBytes: number;
  handshakeTimeoutMs: number;
  /** Idle links send a ping this often; a link silent for three intervals is closed. */
  pingIntervalMs: number;
  /**
   * Outbound bytes a link may hold unsent. Beyond it, send() refuses new
   * frames with Overloaded (the caller fails over or gives up) instead of
   * letting memory grow; the link itself stays up.
   */
  maxQueuedBytes: number;
  logger: Logger;
  /**
   * Where the warnings an unauthenticated peer can cause at will go ('link
   * refused', 'closing link after a bad frame'): shared by a node's links
   * (peers.ts), so a flood of bad connections makes a few lines. Without it,
   * the link logs them itself.
   */
  warnings?: WarnLimiter;
}

export type LinkRole = 'dialer' | 'acceptor';
type LinkState = 'handshake' | 'open' | 'closed';

const NONCE_BYTES = 16;
/** Largest frame read before the handshake is done (a Hello is about 100 bytes). */
const HANDSHAKE_MAX_FRAME_BYTES = 4096;

function proof(secret: string, label: string, ...parts: (string | Uint8Array)[]): Buffer {
  const h = createHmac('sha256', secret);
  h.update(label);
  for (const p of parts) {
    h.update(typeof p === 'string' ? Buffer.from(p, 'utf8') : p);
    h.update('\0');
  }
  return h.digest();
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

export class Link implements PeerLink {
  readonly role: LinkRole;
  /** The peer's node id, known once the handshake is done. */
  peerNodeId = '';
  /** True once the peer announced it is draining: send it no new work. */
  peerDraining = false;

  /** Called for every frame after the handshake. */
  onFrame: (frame: Frame, link: Link) => void = () => {};
  /** Called once when the handshake succeeds. */
  onOpen: (link: Link) => void = () => {};
  /** Called once when the link closes, with the reason if it failed. */
  onClose: (link: Link, error: WeftError | undefined) => void = () => {};

  readonly #socket: Duplex;
  readonly #options: LinkOptions;
  readonly #decoder: FrameDecoder;
  #state: LinkState = 'handshake';
  #myNonce = randomBytes(NONCE_BYTES);
  #peerNonce: Uint8Array | undefined;
  #out: Buffer[] = [];
  #outBytes = 0;
  #flushScheduled = false;
  #warnedFull = false;
  /** Waiting for the link to fall under its high-water mark (onceDrained). */
  #drainListeners: (() => void)[] = [];
  #lastReceivedAt = Date.now();
  #lastSentAt = Date.now();
  #handshakeTimer: NodeJS.Timeout | undefined;
  #pingTimer: NodeJS.Timeout | undefined;
  readonly #flush = (): void => this.#flushNow();

  constructor(socket: Duplex, role: LinkRole, options: LinkOptions) {
    this.#socket = socket;
    this.role = role;
    this.#options = options;
    // Until the peer has proved it holds the secret, only handshake-sized frames are read:
    // an unauthenticated peer cannot make this node buffer or decode megabytes.
    this.#decoder = new FrameDecoder(Math.min(options.maxFrameBytes, HANDSHAKE_MAX_FRAME_BYTES));
    socket.on('data', (chunk: Buffer) => this.#onData(chunk));
    socket.on('error', (err: Error) => this.#fail(new WeftError('CommunicationError', `link socket error: ${err.message}`, { cause: err })));
    socket.on('close', () => this.#fail(new WeftError('CommunicationError', 'link closed by peer')));
    socket.on('drain', () => this.#checkDrained());
    this.#handshakeTimer = setTimeout(() => {
      this.#fail(new WeftError('LinkUnauthenticated', `no handshake within ${options.handshakeTimeoutMs} ms`));
    }, options.handshakeTimeoutMs);
    this.#handshakeTimer.unref();
    if (role === 'acceptor') {
      this.#sendNow([FrameType.Challenge, PROTOCOL_VERSION, options.nodeId, this.#myNonce]);
    }
  }

  get isOpen(): boolean {
    return this.#state === 'open';
  }

  get remoteAddress(): string {
    const s = this.#socket as { remoteAddress?: string; remotePort?: number };
    return `${s.remoteAddress ?? '?'}:${s.remotePort ?? '?'}`;
  }

  /** Bytes queued on this link and not yet taken by the kernel. */
  get queuedBytes(): number {
    return this.#outBytes + ((this.#socket as { writableLength?: number }).writableLength ?? 0);
  }

  get congested(): boolean {
    return this.queuedBytes > this.#options.maxQueuedBytes / 2;
  }

  onceDrained(listener: () => void): void {
    this.#drainListeners.push(listener);
    // Already under the mark: a turn later, as if it had drained (callers expect a callback, not a re-entry).
    if (!this.congested || this.#state === 'closed') setImmediate(() => this.#checkDrained());
  }

  /** Calls the drain listeners once the link is under its high-water mark (or closed). */
  #checkDrained(): void {
    if (this.#drainListeners.length === 0 || (this.congested && this.#state !== 'closed')) return;
    const listeners = this.#drainListeners;
    this.#drainListeners = [];
    for (const listener of listeners) listener();
  }

  /**
   * Queues a frame; everything queued in this tick leaves in one write.
   * Throws ProtocolError if the frame is over the peer's limit.
   */
  send(frame: Frame): void {
    this.#queue(frame, undefined);
  }

  sendShared(shared: SharedFrame): void {
    this.#queue(shared.frame, shared);
  }

  #queue(frame: Frame, shared: SharedFrame | undefined): void {
    if (this.#state !== 'open') throw new WeftError('CommunicationError', 'link is not open');
    if (this.queuedBytes > this.#options.maxQueuedBytes) {
      if (!this.#warnedFull) {
        this.#warnedFull = true;
        this.#options.logger.warn(
          { peer: this.peerNodeId, queuedBytes: this.queuedBytes },
          'link to a slow peer is full; refusing frames until it drains',
        );
      }
      counts.linkOverloads += 1;
      throw new WeftError('Overloaded', `link to ${this.peerNodeId} has ${this.queuedBytes} bytes waiting`);
    }
    this.#warnedFull = false;
    const body = shared === undefined ? packFrame(frame) : shared.body;
    if (body.length > this.#options.maxFrameBytes) {
      throw new WeftError('ProtocolError', `frame of ${body.length} bytes is over maxFrameBytes ${this.#options.maxFrameBytes}`);
    }
    this.#out.push(body);
    this.#outBytes += body.length + FRAME_HEADER_BYTES;
    counts.linkFramesOut += 1;
    counts.linkBytesOut += body.length + FRAME_HEADER_BYTES;
    if (!this.#flushScheduled) {
      this.#flushScheduled = true;
      setImmediate(this.#flush);
    }
  }

  /** Closes the link; queued frames are written first. */
  close(): void {
    if (this.#state === 'closed') return;
    this.#flushNow();
    this.#socket.end();
    this.#fail(undefined);
  }

  /** Closes at once without flushing. */
  destroy(error?: WeftError): void {
    this.#socket.destroy();
    this.#fail(error);
  }

  #warn(fields: Record<string, unknown>, message: string): void {
    if (this.#options.warnings === undefined) this.#options.logger.warn(fields, message);
    else this.#options.warnings.warn(fields, message);
  }

  #sendNow(frame: Frame): void {
    const body = packFrame(frame);
    this.#out.push(body);
    this.#outBytes += body.length + FRAME_HEADER_BYTES;
    this.#flushNow();
  }

  #flushNow(): void {
    this.#flushScheduled = false;
    const n = this.#out.length;
    if (n === 0 || this.#socket.destroyed) return;
    const out = Buffer.allocUnsafe(this.#outBytes);
    let offset = 0;
    for (let i = 0; i < n; i++) {
      const body = this.#out[i]!;
      out.writeUInt32BE(body.length, offset);
      body.copy(out, offset + FRAME_HEADER_BYTES);
      offset += FRAME_HEADER_BYTES + body.length;
    }
    this.#out = [];
    this.#outBytes = 0;
    this.#lastSentAt = Date.now();
    // Taken at once: under the mark now. Else the socket's 'drain' tells.
    if (this.#socket.write(out)) this.#checkDrained();
  }

  #onData(chunk: Buffer): void {
    this.#lastReceivedAt = Date.now();
    counts.linkBytesIn += chunk.length;
    try {
      this.#decoder.push(chunk, (frame) => this.#onDecoded(frame));
    } catch (e) {
      const error = e instanceof WeftError ? e : new WeftError('ProtocolError', 'bad frame', { cause: e });
      this.#warn({ peer: this.peerNodeId || this.remoteAddress, code: error.code, err: error.message }, 'closing link after a bad frame');
      this.destroy(error);
    }
  }

  #onDecoded(frame: Frame): void {
    counts.linkFramesIn += 1;
    if (this.#state === 'closed') return;
    if (this.#state === 'open') {
      try {
        switch (frame[0]) {
          case FrameType.Ping:
            this.send([FrameType.Pong]);
            return;
          case FrameType.Pong:
            return;
          case FrameType.Draining:
            this.peerDraining = true;
            break;
          default:
            break;
        }
        this.onFrame(frame, this);
      } catch (err) {
        // A handler's failure (say, a full link it answered on) is not the peer's fault: keep the link.
        this.#options.logger.error({ err, peer: this.peerNodeId, type: frame[0] }, 'frame handler threw');
      }
      return;
    }
    this.#onHandshakeFrame(frame);
  }

  #onHandshakeFrame(frame: Frame): void {
    const o = this.#options;
    const refuse = (message: string): void => {
      const error = new WeftError('LinkUnauthenticated', message);
      this.#sendNow([FrameType.Refuse, toWire(error)]);
      this.#warn({ peer: this.remoteAddress, err: message }, 'link refused');
      this.#socket.end();
      this.#fail(error);
    };
    if (frame[0] === FrameType.Refuse) {
      const error = fromWire(frame[1]);
      this.destroy(new WeftError('LinkUnauthenticated', `peer refused the link: ${error.message}`));
      return;
    }
    if (this.role === 'dialer') {
      if (frame[0] === FrameType.Challenge) {
        if (frame[1] !== PROTOCOL_VERSION) return refuse(`protocol version ${frame[1]} is not ${PROTOCOL_VERSION}`);
        this.peerNodeId = frame[2];
        this.#peerNonce = frame[3];
        const p = proof(o.secret, 'hello', this.#peerNonce, this.#myNonce, o.nodeId, this.peerNodeId);
        this.#sendNow([FrameType.Hello, PROTOCOL_VERSION, o.nodeId, this.#myNonce, p]);
        return;
      }
      if (frame[0] === FrameType.Welcome && this.#peerNonce !== undefined) {
        const expected = proof(o.secret, 'welcome', this.#myNonce, this.#peerNonce, this.peerNodeId, o.nodeId);
        if (!sameBytes(frame[1], expected)) return refuse('the peer does not hold the cluster secret');
        return this.#open();
      }
      return refuse(`unexpected frame type ${frame[0]} during the handshake`);
    }
    if (frame[0] === FrameType.Hello) {
      if (frame[1] !== PROTOCOL_VERSION) return refuse(`protocol version ${frame[1]} is not ${PROTOCOL_VERSION}`);
      const expected = proof(o.secret, 'hello', this.#myNonce, frame[3], frame[2], o.nodeId);
      if (!sameBytes(frame[4], expected)) return refuse('the peer does not hold the cluster secret');
      this.peerNodeId = frame[2];
      this.#peerNonce = frame[3];
      this.#sendNow([FrameType.Welcome, proof(o.secret, 'welcome', frame[3], this.#myNonce, o.nodeId, this.peerNodeId)]);
      return this.#open();
    }
    return refuse(`unexpected frame type ${frame[0]} during the handshake`);
  }

  #open(): void {
    clearTimeout(this.#handshakeTimer);
    this.#state = 'open';
    this.#decoder.setMaxFrameBytes(this.#options.maxFrameBytes);
    const interval = this.#options.pingIntervalMs;
    this.#pingTimer = setInterval(() => this.#keepAlive(), interval);
    this.#pingTimer.unref();
    this.onOpen(this);
  }

  #keepAlive(): void {
    const now = Date.now();
    const interval = this.#options.pingIntervalMs;
    if (now - this.#lastReceivedAt > 3 * interval) {
      this.destroy(new WeftError('CommunicationError', `peer silent for ${now - this.#lastReceivedAt} ms`));
      return;
    }
    // A full link is busy, not silent: no ping needed, and send() would refuse it anyway.
    if (now - this.#lastSentAt < interval || this.queuedBytes > this.#options.maxQueuedBytes) return;
    try {
      this.send([FrameType.Ping]);
    } catch {
      // closing: nothing to keep alive
    }
  }

  #fail(error: WeftError | undefined): void {
    if (this.#state === 'closed') return;
    const wasOpen = this.#state === 'open';
    this.#state = 'closed';
    clearTimeout(this.#handshakeTimer);
    clearInterval(this.#pingTimer);
    this.#out = [];
    this.#outBytes = 0;
    if (!this.#socket.destroyed && error !== undefined) this.#socket.destroy();
    this.#checkDrained();
    // Always reported, even for a link closed before its handshake ended, so owners forget it.
    this.onClose(this, error ?? (wasOpen ? undefined : new WeftError('CommunicationError', 'link closed during the handshake')));
  }
}
