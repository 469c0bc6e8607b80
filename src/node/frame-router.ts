/**
 * The one place frames are routed. Each part of a node (RPC client and
 * server, push, gateway sessions, host sessions) registers the frame types it
 * owns while the node is built; every frame any link receives, TCP or
 * direct, passes through `route`. A type registered twice is a bug and
 * fails at once.
 */
import { WeftError } from '../errors.js';
import type { Logger } from '../logger.js';
import { FrameType, type Frame } from '../protocol/frames.js';
import type { FrameHandler, FrameRoutes, PeerLink } from '../transport/peer-link.js';

const NAMES = new Map<number, string>(Object.entries(FrameType).map(([name, type]) => [type, name]));

export class FrameRouter implements FrameRoutes {
  readonly #nodeId: string;
  readonly #logger: Logger;
  readonly #handlers: (FrameHandler | undefined)[] = [];
  readonly #received: number[] = [];

  constructor(nodeId: string, logger: Logger) {
    this.#nodeId = nodeId;
    this.#logger = logger;
  }

  on<T extends FrameType>(type: T, handler: FrameHandler<T>): void {
    if (this.#handlers[type] !== undefined) throw new WeftError('ServerError', `frame type ${NAMES.get(type) ?? type} already has a handler`);
    this.#handlers[type] = handler as unknown as FrameHandler;
  }

  /** Hands a received frame to its owner. */
  readonly route = (frame: Frame, link: PeerLink): void => {
    const type = frame[0];
    this.#received[type] = (this.#received[type] ?? 0) + 1;
    const handler = this.#handlers[type];
    if (handler !== undefined) {
      handler(frame, link);
      return;
    }
    if (type === FrameType.Call) {
      link.send([FrameType.Error, frame[1], { code: 'NotFound', message: `node ${this.#nodeId} serves no services` }]);
      return;
    }
    // Draining is read by the link itself; anything else here is a frame this role does not take.
    if (type !== FrameType.Draining) this.#logger.debug({ type, peer: link.peerNodeId }, 'ignoring a frame this node does not handle');
  };

  /** Frames received since start, by frame type name. */
  received(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [type, name] of NAMES) {
      const n = this.#received[type];
      if (n !== undefined) out[name] = n;
    }
    return out;
  }
}
