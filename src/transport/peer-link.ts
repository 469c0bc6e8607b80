/**
 * What every part of a node sees of a link to a peer, whether it is a TCP
 * link to another process or a direct link to a node of this process: the
 * parts above transport never know which.
 */
import type { Frame, FrameType, SharedFrame } from '../protocol/frames.js';

export interface PeerLink {
  /** The peer's node id (known once the link is open). */
  readonly peerNodeId: string;
  readonly isOpen: boolean;
  /** True once the peer announced it is draining: send it no new work. */
  readonly peerDraining: boolean;
  /** Bytes queued on this link and not yet taken by the peer. */
  readonly queuedBytes: number;
  /**
   * Is the link over its high-water mark (half of the bytes it may hold)?
   * A sender that can wait (a client's messages) should, until `onceDrained`.
   */
  readonly congested: boolean;
  /** Calls `listener` once, when the link is next under its high-water mark, or when it closes. */
  onceDrained(listener: () => void): void;
  /**
   * Queues a frame; frames queued in one tick leave together. Throws
   * Overloaded when the link holds too much, ProtocolError when the frame is
   * over the peer's limit, CommunicationError when the link is closed.
   */
  send(frame: Frame): void;
  /** The same for a frame that goes to several links: a TCP link takes its bytes, packed once for all. */
  sendShared(shared: SharedFrame): void;
  /** Closes the link; queued frames are delivered first. */
  close(): void;
}

/** Called for every frame a link receives, after its handshake. */
export type FrameSink = (frame: Frame, link: PeerLink) => void;

/** The links of a node, as the parts that send frames need them. */
export interface NodeLinks {
  /** An open link to `nodeId`, if there is one now. */
  get(nodeId: string): PeerLink | undefined;
  /** An open link to `nodeId`, dialing one if needed; rejects with CommunicationError. */
  connect(nodeId: string): Promise<PeerLink>;
  /** Is `nodeId` backing off after failed dials (so `connect` would fail at once)? */
  isBackingOff(nodeId: string): boolean;
  /**
   * Did the last link to `nodeId` fail authentication (another cluster secret
   * or protocol version), with no link to it succeeding since? Such a node is
   * not chosen for new work, however long ago the failure was.
   */
  isRefused(nodeId: string): boolean;
  /** Every link that closes, once it had opened. */
  onLinkClosed(listener: (link: PeerLink) => void): void;
}

/** The frame of one type. */
export type FrameOf<T extends FrameType> = Extract<Frame, readonly [T, ...unknown[]]>;

export type FrameHandler<T extends FrameType = FrameType> = (frame: FrameOf<T>, link: PeerLink) => void;

/** What a part of a node gets to claim the frame types it owns (node/frame-router.ts routes them). */
export interface FrameRoutes {
  on<T extends FrameType>(type: T, handler: FrameHandler<T>): void;
}
