/**
 * A link between two nodes of one process (a gateway and a host together,
 * the embedded default): frames go from one node's queue to the other's
 * frame sink without a socket, but otherwise as over a TCP link. They are
 * checked and copied as the wire would copy them, delivered after a turn of
 * the event loop, batched per tick, bounded by the same limits, and a close
 * reaches the other side. So every part above transport has one path for
 * local and remote peers.
 */
import { WeftError } from '../errors.js';
import type { Logger } from '../logger.js';
import { FrameType, decodeFrameBody, packFrame, type Frame, type SharedFrame } from '../protocol/frames.js';
import type { FrameSink, PeerLink } from './peer-link.js';

export interface DirectLinkOptions {
  maxFrameBytes: number;
  maxQueuedBytes: number;
  logger: Logger;
}

/** Rough per-frame cost of the tuple itself, for the queue bound. */
const FRAME_OVERHEAD_BYTES = 32;

/**
 * The copy the peer receives. A frame of strings, numbers and bytes (pushes,
 * session frames, acks) is copied field by field, bytes included; one that
 * carries objects (call arguments, results, errors, handshakes) goes through
 * MessagePack and back, exactly as on the wire, and is held to maxFrameBytes.
 */
function copyForPeer(frame: Frame, maxFrameBytes: number): Frame {
  let bytes = FRAME_OVERHEAD_BYTES;
  let plain = true;
  for (let i = 1; i < frame.length; i++) {
    const v: unknown = frame[i];
    if (v instanceof Uint8Array) bytes += v.length;
    else if (typeof v === 'string') bytes += v.length;
    else if (typeof v === 'object' && v !== null) {
      plain = false;
      break;
    }
  }
  if (plain) {
    if (bytes > maxFrameBytes) throw new WeftError('ProtocolError', `frame of about ${bytes} bytes is over maxFrameBytes ${maxFrameBytes}`);
    copiedBytes = bytes;
    // Built by this process's own typed code, so not checked again as a peer's frame is; bytes
    // are copied so the sender may reuse its buffer at once, as after a socket write.
    const copy = frame.slice() as Frame;
    for (let i = 1; i < copy.length; i++) {
      const v: unknown = copy[i];
      if (v instanceof Uint8Array) (copy as unknown[])[i] = Buffer.from(v);
    }
    return copy;
  }
  const body = packFrame(frame);
  if (body.length > maxFrameBytes) throw new WeftError('ProtocolError', `frame of ${body.length} bytes is over maxFrameBytes ${maxFrameBytes}`);
  copiedBytes = body.length;
  return decodeFrameBody(body);
}

/** Size of the last copy made, for the queue bound (a field rather than a result object: nothing allocated per frame). */
let copiedBytes = 0;

export class DirectLink implements PeerLink {
  readonly peerNodeId: string;
  peerDraining = false;
  /** Called once when this side closes (by itself or because the other side did). */
  onClose: (link: DirectLink) => void = () => {};

  readonly #o: DirectLinkOptions;
  readonly #sink: FrameSink;
  #other: DirectLink | undefined;
  #open = true;
  #out: Frame[] = [];
  #outBytes = 0;
  #flushScheduled = false;
  #drainListeners: (() => void)[] = [];
  readonly #flush = (): void => this.#flushNow();

  private constructor(peerNodeId: string, sink: FrameSink, options: DirectLinkOptions) {
    this.peerNodeId = peerNodeId;
    this.#sink = sink;
    this.#o = options;
  }

  /**
   * Two connected ends: `a` belongs to node `aNodeId` and hands what it
   * receives to `aSink`; frames sent on `a` arrive at `b`, and the reverse.
   */
  static pair(
    aNodeId: string,
    aSink: FrameSink,
    aOptions: DirectLinkOptions,
    bNodeId: string,
    bSink: FrameSink,
    bOptions: DirectLinkOptions,
  ): [a: DirectLink, b: DirectLink] {
    // Each end is held to the limits of its own node, as a TCP link's sending side is.
    const a = new DirectLink(bNodeId, aSink, aOptions);
    const b = new DirectLink(aNodeId, bSink, bOptions);
    a.#other = b;
    b.#other = a;
    return [a, b];
  }

  get isOpen(): boolean {
    return this.#open;
  }

  get queuedBytes(): number {
    return this.#outBytes;
  }

  get congested(): boolean {
    return this.#outBytes > this.#o.maxQueuedBytes / 2;
  }

  onceDrained(listener: () => void): void {
    this.#drainListeners.push(listener);
    if (!this.congested || !this.#open) setImmediate(() => this.#drained());
  }

  /** Under the high-water mark again (a flush), or closed: the drain listeners run. */
  #drained(): void {
    if (this.#drainListeners.length === 0 || (this.congested && this.#open)) return;
    const listeners = this.#drainListeners;
    this.#drainListeners = [];
    for (const listener of listeners) listener();
  }

  sendShared(shared: SharedFrame): void {
    this.send(shared.frame);
  }

  send(frame: Frame): void {
    if (!this.#open) throw new WeftError('CommunicationError', 'link is not open');
    if (this.#outBytes > this.#o.maxQueuedBytes) {
      throw new WeftError('Overloaded', `link to ${this.peerNodeId} has ${this.#outBytes} bytes waiting`);
    }
    this.#out.push(copyForPeer(frame, this.#o.maxFrameBytes));
    this.#outBytes += copiedBytes;
    if (!this.#flushScheduled) {
      this.#flushScheduled = true;
      setImmediate(this.#flush);
    }
  }

  close(): void {
    if (!this.#open) return;
    this.#open = false;
    const other = this.#other;
    // What was queued still arrives, then the other side learns the link closed, as over TCP.
    if (other !== undefined) {
      const queued = this.#out;
      this.#out = [];
      this.#outBytes = 0;
      setImmediate(() => {
        for (const frame of queued) other.#receive(frame);
        other.#closedByPeer();
      });
    }
    this.onClose(this);
    this.#drained();
  }

  #closedByPeer(): void {
    if (!this.#open) return;
    this.#open = false;
    this.#out = [];
    this.#outBytes = 0;
    this.onClose(this);
    this.#drained();
  }

  #flushNow(): void {
    this.#flushScheduled = false;
    const frames = this.#out;
    if (frames.length === 0) return;
    this.#out = [];
    this.#outBytes = 0;
    const other = this.#other;
    if (other !== undefined) for (const frame of frames) other.#receive(frame);
    this.#drained();
  }

  /** A frame from the other side arrives at this side's node. */
  #receive(frame: Frame): void {
    if (!this.#open) return;
    if (frame[0] === FrameType.Draining) this.peerDraining = true;
    try {
      this.#sink(frame, this);
    } catch (err) {
      // As on a TCP link: a handler's failure is not the peer's fault.
      this.#o.logger.error({ err, peer: this.peerNodeId, type: frame[0] }, 'frame handler threw');
    }
  }
}
