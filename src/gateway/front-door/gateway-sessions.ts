/**
 * The sessions a gateway holds: one table, by id and by (service,
 * businessId), covering sessions from the moment a host is asked to open
 * them (so a push during the open is queued, not lost) until they close.
 */
import type { Duplex } from 'node:stream';
import type { WebSocket } from 'ws';
import type { PeerLink } from '../../transport/peer-link.js';
import type { Position } from '../../history/history-store.js';
import type { AckTally } from './ack-tally.js';
import { GroupedIndex } from '../../util/grouped-index.js';

export const SessionState = {
  /** A host is running its onOpen; frames for the client are queued. */
  Opening: 0,
  Open: 1,
  Closed: 2,
  /** Found too slow: no more writes; it closes once the push that found it is done. */
  Evicting: 3,
} as const;
export type SessionState = (typeof SessionState)[keyof typeof SessionState];

/**
 * A push waiting to be written to one session: while it opens, while it
 * catches up from history, or held until the pushes before it came.
 */
export interface QueuedPush {
  readonly payload: Uint8Array;
  readonly text: boolean;
  /** '' and 0: a push without a position. */
  readonly epoch: string;
  readonly offset: number;
  readonly receiptTimeoutMs: number;
  /** The acknowledgement waiting on this session, if the pusher wants one. */
  readonly tally: AckTally | undefined;
}

/** A client message read while its socket was paused (client-messages.ts), not yet sent to the host. */
export interface HeldMessage {
  readonly data: Buffer;
  readonly text: boolean;
}

/** What a `weft.v1` session adds: where its client stands in its businessId's stream. */
export interface V1State {
  /** The last position written to the client ('' and 0: none yet). */
  epoch: string;
  offset: number;
  /** Resume from here (the client's `since`); undefined: start at the top. */
  readonly since: Position | undefined;
  /** Per room, where the client stood in it (`?roomSince=`): a join to that room replays from there (rooms.ts takes it). */
  readonly roomSince: Map<string, Position> | undefined;
  /** The service's history window; 0: it keeps none. */
  readonly historyTtlMs: number;
  /** Reading history (at open, or to fill a gap): pushes wait in the queue. */
  catchingUp: boolean;
  /** Set while pushes wait for one that is missing before them. */
  gapTimer: NodeJS.Timeout | undefined;
  /** The epoch the stream had before its history was lost while this session was open ('' none). */
  leftEpoch: string;
  /**
   * Offsets up to this one (in `epoch`) were never written to this socket:
   * the session started after them (a fresh one at the top, a resumed one
   * at its `since`). A push at or below it is not counted as reached.
   */
  base: number;
}

export interface GatewaySession {
  readonly id: string;
  readonly service: string;
  readonly businessId: string;
  /** The client address its session limits count against (released when it closes). */
  readonly ip: string;
  /**
   * Does the service run session hooks on its host? If not, nothing on the
   * host needs the session, and it outlives its host's link.
   */
  readonly hooks: boolean;
  /** The client's socket; `ws` owns it once the upgrade is done. */
  readonly socket: Duplex;
  /** The link to the host the session is bound to, once dialed. */
  hostLink: PeerLink | undefined;
  ws: WebSocket | undefined;
  state: SessionState;
  /** Pushes that came while the host ran onOpen (and, for weft.v1, while catching up or held for order). */
  queue: QueuedPush[] | undefined;
  queuedBytes: number;
  /** The client speaks weft.v1 (positions, receipts, in-band tokens); undefined: bare payloads. */
  readonly v1: V1State | undefined;
  /**
   * The socket's bytesRead when it was last pinged (keepalive): anything
   * read since, a pong or a message, means the client is there. HEARD: count
   * it as heard from (just opened, or its reads just resumed).
   */
  bytesReadAtPing: number;
  /** Client messages sent to the host whose onMessage has not run yet (client-messages.ts). */
  inFlight: number;
  /** Client messages read while the socket paused, in order, not yet sent; undefined: none. */
  held: HeldMessage[] | undefined;
  /** The client's socket is not read: its host's window or link is full. */
  readPaused: boolean;
  /** The delivery tick the socket was last corked in, and bytes written then (delivery). */
  corkTick: number;
  tickBytes: number;
  /** Epoch ms at which the session's token stops holding (closed then with 4001); undefined without one. */
  expiresAt: number | undefined;
  /** The timer that closes it then, while open. */
  expiryTimer: NodeJS.Timeout | undefined;
  /** Presence: the JSON its host's onOpen attached (SessionMetadata), and when its WebSocket opened (0 until then). */
  metadata: string | undefined;
  openedAt: number;
  /** Open and past its first message (weft.v1: welcome): its room memberships may write (rooms.ts). */
  roomsReady: boolean;
}

/** `bytesReadAtPing` of a session that counts as heard from, whatever its socket read. */
export const HEARD = -1;

export function newSession(
  id: string,
  service: string,
  businessId: string,
  ip: string,
  hooks: boolean,
  socket: Duplex,
  v1: { since: Position | undefined; historyTtlMs: number; roomSince?: Map<string, Position> | undefined } | undefined,
): GatewaySession {
  return {
    id,
    service,
    businessId,
    ip,
    hooks,
    socket,
    hostLink: undefined,
    ws: undefined,
    state: SessionState.Opening,
    queue: undefined,
    queuedBytes: 0,
    v1:
      v1 === undefined
        ? undefined
        : {
            epoch: '',
            offset: 0,
            since: v1.since,
            roomSince: v1.roomSince,
            historyTtlMs: v1.historyTtlMs,
            catchingUp: v1.historyTtlMs > 0,
            gapTimer: undefined,
            leftEpoch: '',
            base: 0,
          },
    bytesReadAtPing: HEARD,
    inFlight: 0,
    held: undefined,
    readPaused: false,
    corkTick: 0,
    tickBytes: 0,
    expiresAt: undefined,
    expiryTimer: undefined,
    metadata: undefined,
    openedAt: 0,
    roomsReady: false,
  };
}

export class GatewaySessions {
  readonly #byId = new Map<string, GatewaySession>();
  /** service -> businessId -> sessions */
  readonly #byService = new Map<string, GroupedIndex<GatewaySession>>();
  #open = 0;

  /** Sessions whose WebSocket is open. */
  get openCount(): number {
    return this.#open;
  }

  get(id: string): GatewaySession | undefined {
    return this.#byId.get(id);
  }

  /** Lists a session being opened: pushes to its businessId reach it from now on (queued until open). */
  add(session: GatewaySession): void {
    this.#byId.set(session.id, session);
    let index = this.#byService.get(session.service);
    if (index === undefined) this.#byService.set(session.service, (index = new GroupedIndex()));
    index.set(session.businessId, session.id, session);
  }

  /** The WebSocket of a listed session opened. */
  opened(session: GatewaySession, ws: WebSocket): void {
    session.ws = ws;
    session.state = SessionState.Open;
    this.#open += 1;
  }

  /** Forgets a session; returns false if it was not listed. */
  remove(session: GatewaySession): boolean {
    if (this.#byId.get(session.id) !== session) return false;
    this.#byId.delete(session.id);
    if (session.ws !== undefined) this.#open -= 1;
    const index = this.#byService.get(session.service);
    index?.delete(session.businessId, session.id);
    if (index?.size === 0) this.#byService.delete(session.service);
    return true;
  }

  /** Calls `fn` for each session of a businessId; returns how many there are. */
  forBusiness(service: string, businessId: string, fn: (session: GatewaySession) => void): number {
    return this.#byService.get(service)?.forEachValue(businessId, fn) ?? 0;
  }

  /** Calls `fn` for each session of a service. */
  forService(service: string, fn: (session: GatewaySession) => void): void {
    this.#byService.get(service)?.forEach(fn);
  }

  /** How many sessions each service has here, opening ones included. */
  *countsByService(): Iterable<readonly [string, number]> {
    for (const [service, index] of this.#byService) yield [service, index.size] as const;
  }

  /** Every listed session, opening ones included. */
  values(): IterableIterator<GatewaySession> {
    return this.#byId.values();
  }

  /** A snapshot of every listed session, for changes while iterating. */
  snapshot(): GatewaySession[] {
    return [...this.#byId.values()];
  }
}
