/**
 * Pushing from any node to sessions: one frame to each gateway that holds a
 * target session, never a broadcast to every node. Gateways answer with how
 * many sessions they reached; the sum is what the caller gets.
 */
import { WeftError } from '../errors.js';
import { DEFAULTS } from '../options.js';
import { FrameType, type Frame, type PushAckFrame } from '../protocol/frames.js';
import type { Link } from '../transport/link.js';
import type { WeftNode } from '../node/node.js';

/** A message for clients: a string goes as a text frame, bytes as a binary frame. */
export type PushMessage = string | Uint8Array;

interface PendingPush {
  delivered: number;
  /** Gateway links the push went out on and that have not answered. */
  waiting: Set<Link>;
  /** Gateways still being dialed. */
  dialing: number;
  resolve: (delivered: number) => void;
  timer: NodeJS.Timeout;
}

/** The gateway node that holds a session, from the session id (`<gatewayNodeId>.<n>`). */
export function gatewayOfSession(sessionId: string): string {
  const cut = sessionId.lastIndexOf('.');
  return cut <= 0 ? '' : sessionId.slice(0, cut);
}

export function toPayload(message: PushMessage): { bytes: Uint8Array; text: boolean } {
  if (typeof message === 'string') return { bytes: Buffer.from(message, 'utf8'), text: true };
  if (message instanceof Uint8Array) return { bytes: message, text: false };
  throw new WeftError('BadRequest', 'a push message must be a string or bytes');
}

export class PushClient {
  readonly #node: WeftNode;
  readonly #pending = new Map<number, PendingPush>();
  #nextAckId = 1;

  constructor(node: WeftNode) {
    this.#node = node;
    node.handle(FrameType.PushAck, (frame, link) => this.#onAck(frame as PushAckFrame, link));
    node.onLinkClosed((link) => this.#onLinkClosed(link));
  }

  /** Sends `frameFor(ackId)` to each live gateway and resolves with the sessions they reached. */
  push(gateways: Iterable<string>, frameFor: (ackId: number) => Frame): Promise<number> {
    const view = this.#node.view;
    const targets: string[] = [];
    for (const g of gateways) if (view.has(g)) targets.push(g);
    if (targets.length === 0) return Promise.resolve(0);
    return new Promise((resolve) => {
      const ackId = this.#nextAckId++;
      const pending: PendingPush = {
        delivered: 0,
        waiting: new Set(),
        dialing: 0,
        resolve,
        timer: setTimeout(() => this.#finish(ackId), DEFAULTS.pushAckTimeoutMs),
      };
      this.#pending.set(ackId, pending);
      const frame = frameFor(ackId);
      const sendOn = (link: Link): void => {
        try {
          link.send(frame);
          pending.waiting.add(link);
        } catch {
          // link closing: that gateway counts as reaching no one
        }
      };
      for (const gateway of targets) {
        const link = this.#node.peers.get(gateway);
        if (link !== undefined) {
          sendOn(link);
          continue;
        }
        pending.dialing += 1;
        this.#node.peers.connect(gateway).then(
          (opened) => {
            pending.dialing -= 1;
            if (this.#pending.has(ackId)) sendOn(opened);
            this.#finishIfDone(ackId, pending);
          },
          () => {
            pending.dialing -= 1;
            this.#finishIfDone(ackId, pending);
          },
        );
      }
      this.#finishIfDone(ackId, pending);
    });
  }

  #onAck(frame: PushAckFrame, link: Link): void {
    const pending = this.#pending.get(frame[1]);
    if (pending === undefined || !pending.waiting.delete(link)) return;
    pending.delivered += frame[2];
    this.#finishIfDone(frame[1], pending);
  }

  #onLinkClosed(link: Link): void {
    for (const [ackId, pending] of this.#pending) {
      if (pending.waiting.delete(link)) this.#finishIfDone(ackId, pending);
    }
  }

  #finishIfDone(ackId: number, pending: PendingPush): void {
    if (pending.dialing === 0 && pending.waiting.size === 0) this.#finish(ackId);
  }

  #finish(ackId: number): void {
    const pending = this.#pending.get(ackId);
    if (pending === undefined) return;
    this.#pending.delete(ackId);
    clearTimeout(pending.timer);
    pending.resolve(pending.delivered);
  }
}
