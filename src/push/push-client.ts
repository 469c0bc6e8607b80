/**
 * Pushing from any node to sessions: one frame to each gateway that holds a
 * target session, never a broadcast to every node. Gateways answer with how
 * many sessions they reached; the sum is what the caller gets.
 *
 * This is the hot path of a push, so it avoids per-push timers and closures:
 * outcomes that never come are swept once a second.
 */
import { currentContext } from '../rpc/context.js';
import { SpanKind, endSpan, parentContext, startSpan, traceparentOf, type Attributes, type Span } from '../tracing/tracing.js';
import { WeftError } from '../errors.js';
import { LIMITS } from '../limits.js';
import { counts, observePushAck } from '../metrics/metrics.js';
import { FrameType, SharedFrame, type PushFrame } from '../protocol/frames.js';
import { RoomRequests } from './room-requests.js';
import { InFlight } from '../util/in-flight.js';
import type { LiveNodes } from '../registry/registry.js';
import type { FrameRoutes, NodeLinks, PeerLink } from '../transport/peer-link.js';

/** A message for clients: a string goes as a text frame, bytes as a binary frame. */
export type PushMessage = string | Uint8Array;

export type { PushFrame };

/** What the push client needs of its node. */
export interface PushClientDeps {
  links: NodeLinks;
  liveNodes: LiveNodes;
  /** The client claims PushAck and PushAcks frames. */
  frames: FrameRoutes;
}

interface PendingPush {
  /** The ack id the gateways answer with. */
  id: number;
  delivered: number;
  /** Gateway links the push went out on and that have not answered (usually one or two). */
  waiting: PeerLink[];
  /** Gateways still being dialed. */
  dialing: number;
  deadline: number;
  /** performance.now() at the call, for weft_push_ack_seconds. */
  startedAt: number;
  kind: PushKind;
  span: Span;
  resolve: (delivered: number) => void;
}

type PushKind = 'session' | 'business' | 'service' | 'room';

function kindOf(frame: PushFrame): PushKind {
  switch (frame[0]) {
    case FrameType.PushSession:
      return 'session';
    case FrameType.PushBusiness:
      return 'business';
    case FrameType.PushRoom:
      return 'room';
    default:
      return 'service';
  }
}

/** Span names and attributes per kind, made once. */
const PUSH_SPANS: Record<PushKind, { name: string; attributes: Attributes }> = {
  session: { name: 'weft.push session', attributes: Object.freeze({ 'weft.push.kind': 'session' }) },
  business: { name: 'weft.push business', attributes: Object.freeze({ 'weft.push.kind': 'business' }) },
  service: { name: 'weft.push service', attributes: Object.freeze({ 'weft.push.kind': 'service' }) },
  room: { name: 'weft.push room', attributes: Object.freeze({ 'weft.push.kind': 'room' }) },
};

/**
 * Starts the push's span (a child of the call it is made in) and writes its
 * traceparent into the frame, so the gateways' delivery spans are its children.
 */
function tracePush(frame: PushFrame, kind: PushKind): Span {
  const parent = currentContext()?.traceparent;
  const { name, attributes } = PUSH_SPANS[kind];
  const traced = startSpan(name, SpanKind.PRODUCER, parentContext(parent), attributes);
  (frame as unknown[])[frame.length - 1] = traceparentOf(traced.ctx) || (parent ?? '');
  return traced.span;
}

function countPush(kind: PushKind): void {
  if (kind === 'business') counts.pushBusiness += 1;
  else if (kind === 'session') counts.pushSession += 1;
  else if (kind === 'room') counts.pushRoom += 1;
  else counts.pushService += 1;
}

const SWEEP_INTERVAL_MS = 1000;

/** The gateway node that holds a session, from the session id (`<gatewayNodeId>.<n>`). */
export function gatewayOfSession(sessionId: string): string {
  const cut = sessionId.lastIndexOf('.');
  return cut <= 0 ? '' : sessionId.slice(0, cut);
}

/** The bytes of a message; throws BadRequest for anything else. */
export function payloadBytes(message: PushMessage): Uint8Array {
  if (typeof message === 'string') return Buffer.from(message, 'utf8');
  if (message instanceof Uint8Array) return message;
  throw new WeftError('BadRequest', 'a push message must be a string or bytes');
}

export class PushClient {
  readonly #links: NodeLinks;
  readonly #live: LiveNodes;
  readonly #pending = new InFlight<PendingPush>();
  #nextAckId = 1;
  #sweeper: NodeJS.Timeout | undefined;
  /** Room joins, leaves and member counts, asked of the gateways (room-requests.ts). */
  readonly rooms: RoomRequests;

  constructor(deps: PushClientDeps) {
    this.#links = deps.links;
    this.#live = deps.liveNodes;
    deps.frames.on(FrameType.PushAck, (frame, link) => this.#onAck(frame[1], frame[2], link));
    deps.frames.on(FrameType.PushAcks, (frame, link) => {
      // Only the array was checked on arrival: its fields are checked here.
      const acks = frame[1] as unknown[];
      for (let i = 0; i + 1 < acks.length; i += 2) {
        const ackId = acks[i];
        const delivered = acks[i + 1];
        if (typeof ackId === 'number' && typeof delivered === 'number') this.#onAck(ackId, delivered, link);
      }
    });
    this.rooms = new RoomRequests(deps);
    deps.links.onLinkClosed((link) => this.#onLinkClosed(link));
  }

  /**
   * Sends `frame` to each live gateway of `gateways` and resolves with the
   * sessions they reached (0 for a gateway that cannot be reached).
   * `extraWaitMs`: how much longer than usual the gateways may take (client receipts).
   */
  push(gateways: Iterable<string>, frame: PushFrame, extraWaitMs = 0): Promise<number> {
    const kind = kindOf(frame);
    countPush(kind);
    const span = tracePush(frame, kind);
    let pending: PendingPush | undefined;
    // Packed on its first send, once its ack id is in, and only once for every gateway it goes to.
    const shared = new SharedFrame(frame);
    let resolveOuter: (n: number) => void = () => {};
    const promise = new Promise<number>((resolve) => (resolveOuter = resolve));
    for (const gateway of gateways) {
      if (!this.#live.isLive(gateway)) continue;
      if (pending === undefined) {
        const ackId = this.#nextAckId++;
        if (this.#nextAckId > 0x7fffffff) this.#nextAckId = 1;
        frame[1] = ackId;
        pending = {
          id: ackId,
          delivered: 0,
          waiting: [],
          dialing: 0,
          deadline: Date.now() + LIMITS.pushAckTimeoutMs + extraWaitMs,
          startedAt: performance.now(),
          kind,
          span,
          resolve: resolveOuter,
        };
        this.#pending.add(pending);
        this.#sweeper ??= setInterval(() => this.#sweep(), SWEEP_INTERVAL_MS).unref();
      }
      const link = this.#links.get(gateway);
      if (link !== undefined) {
        this.#sendOn(pending, link, shared);
        continue;
      }
      const p = pending;
      p.dialing += 1;
      this.#links.connect(gateway).then(
        (opened) => {
          p.dialing -= 1;
          if (this.#pending.get(p.id) === p) this.#sendOn(p, opened, shared);
          this.#finishIfDone(p);
        },
        () => {
          p.dialing -= 1;
          this.#finishIfDone(p);
        },
      );
    }
    // No live gateway: answered after a turn of the event loop, as an ack would be, so a
    // caller pushing in a loop lets everything else run between pushes.
    if (pending === undefined) {
      span.setAttribute('weft.push.delivered', 0);
      endSpan(span);
      return new Promise((resolve) => setImmediate(resolve, 0));
    }
    this.#finishIfDone(pending);
    return promise;
  }

  /**
   * Sends `frame` to each live gateway without waiting for their answers;
   * resolves at once. Gateways send no acknowledgement for it (ack id 0).
   */
  pushUnacknowledged(gateways: Iterable<string>, frame: PushFrame): void {
    frame[1] = 0;
    const kind = kindOf(frame);
    countPush(kind);
    endSpan(tracePush(frame, kind));
    const shared = new SharedFrame(frame);
    for (const gateway of gateways) {
      if (!this.#live.isLive(gateway)) continue;
      const link = this.#links.get(gateway);
      if (link !== undefined) {
        try {
          link.sendShared(shared);
        } catch {
          // link closing: that gateway's sessions are gone with it
        }
        continue;
      }
      this.#links.connect(gateway).then(
        (opened) => {
          try {
            opened.sendShared(shared);
          } catch {
            // as above
          }
        },
        () => undefined,
      );
    }
  }

  /**
   * Asks the gateway holding `sessionId` to close it. Resolves true if that
   * gateway was told. `code` and `reason` must already be sendable.
   */
  async closeSession(sessionId: string, code: number, reason: string): Promise<boolean> {
    const gateway = gatewayOfSession(sessionId);
    if (!this.#live.isLive(gateway)) return false;
    try {
      const link = await this.#links.connect(gateway);
      link.send([FrameType.SessionClose, sessionId, code, reason]);
      return true;
    } catch {
      return false;
    }
  }

  #sendOn(pending: PendingPush, link: PeerLink, frame: SharedFrame): void {
    try {
      link.sendShared(frame);
      pending.waiting.push(link);
    } catch {
      // link closing: that gateway counts as reaching no one
    }
  }

  #onAck(ackId: number, delivered: number, link: PeerLink): void {
    const pending = this.#pending.get(ackId);
    if (pending === undefined) return;
    const i = pending.waiting.indexOf(link);
    if (i < 0) return;
    pending.waiting.splice(i, 1);
    pending.delivered += delivered;
    this.#finishIfDone(pending);
  }

  #onLinkClosed(link: PeerLink): void {
    for (const pending of this.#pending.all()) {
      const i = pending.waiting.indexOf(link);
      if (i < 0) continue;
      pending.waiting.splice(i, 1);
      this.#finishIfDone(pending);
    }
  }

  #finishIfDone(pending: PendingPush): void {
    if (pending.dialing === 0 && pending.waiting.length === 0) {
      // Already given up on by the sweep (a gateway dialed too late): answered once, observed once.
      if (this.#pending.take(pending.id) !== pending) return;
      observePushAck(pending.kind, (performance.now() - pending.startedAt) / 1000);
      pending.span.setAttribute('weft.push.delivered', pending.delivered);
      endSpan(pending.span);
      pending.resolve(pending.delivered);
    }
  }

  /** Gives up on answers that did not come in time: what was acknowledged counts. */
  #sweep(): void {
    const now = Date.now();
    for (const pending of this.#pending.all()) {
      if (pending.deadline > now) continue;
      this.#pending.take(pending.id);
      observePushAck(pending.kind, (performance.now() - pending.startedAt) / 1000);
      pending.span.setAttribute('weft.push.delivered', pending.delivered);
      endSpan(pending.span, 'Timeout');
      pending.resolve(pending.delivered);
    }
    if (this.#pending.size === 0 && this.#sweeper !== undefined) {
      clearInterval(this.#sweeper);
      this.#sweeper = undefined;
    }
  }
}
