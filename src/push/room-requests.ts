/**
 * Room requests from any node to the gateway of a session or of a room's
 * members: join, leave, and how many members a gateway holds. Each is one
 * frame to one gateway, answered with RoomAck. Far rarer than pushes, so
 * each keeps its own timer.
 */
import { LIMITS } from '../limits.js';
import { FrameType, type RoomAckFrame, type RoomRequestFrame } from '../protocol/frames.js';
import type { LiveNodes } from '../registry/registry.js';
import type { FrameRoutes, NodeLinks, PeerLink } from '../transport/peer-link.js';

/** A gateway's answer: a result (1 done, 0 nothing to do, a count; negative: refused) and why it refused ('' otherwise). */
export interface RoomAnswer {
  result: number;
  error: string;
}

interface Pending {
  link: PeerLink;
  timer: NodeJS.Timeout;
  resolve: (answer: RoomAnswer) => void;
}

/** What a gateway that cannot be reached, or does not answer in time, counts as. */
const UNANSWERED: RoomAnswer = Object.freeze({ result: 0, error: '' });

export class RoomRequests {
  readonly #links: NodeLinks;
  readonly #live: LiveNodes;
  readonly #pending = new Map<number, Pending>();
  #nextId = 1;

  constructor(deps: { links: NodeLinks; liveNodes: LiveNodes; frames: FrameRoutes }) {
    this.#links = deps.links;
    this.#live = deps.liveNodes;
    deps.frames.on(FrameType.RoomAck, (frame, link) => this.#onAck(frame, link));
    deps.links.onLinkClosed((link) => {
      for (const [id, p] of this.#pending) if (p.link === link) this.#settle(id, UNANSWERED);
    });
  }

  /** Sends `frame` to `gateway` and resolves with its answer; 0 when it is not live, cannot be reached or does not answer within the push timeout. */
  async ask(gateway: string, frame: RoomRequestFrame): Promise<RoomAnswer> {
    if (!this.#live.isLive(gateway)) return UNANSWERED;
    let link: PeerLink;
    try {
      link = this.#links.get(gateway) ?? (await this.#links.connect(gateway));
    } catch {
      return UNANSWERED;
    }
    const id = this.#nextId++;
    if (this.#nextId > 0x7fffffff) this.#nextId = 1;
    frame[1] = id;
    return new Promise<RoomAnswer>((resolve) => {
      const timer = setTimeout(() => this.#settle(id, UNANSWERED), LIMITS.pushAckTimeoutMs);
      timer.unref();
      this.#pending.set(id, { link, timer, resolve });
      try {
        link.send(frame);
      } catch {
        this.#settle(id, UNANSWERED);
      }
    });
  }

  #onAck(frame: RoomAckFrame, link: PeerLink): void {
    const p = this.#pending.get(frame[1]);
    if (p === undefined || p.link !== link) return;
    this.#settle(frame[1], { result: frame[2], error: frame[3] });
  }

  #settle(id: number, answer: RoomAnswer): void {
    const p = this.#pending.get(id);
    if (p === undefined) return;
    this.#pending.delete(id);
    clearTimeout(p.timer);
    p.resolve(answer);
  }
}
