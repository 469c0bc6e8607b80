/**
 * The sessions a gateway holds: one table, by id and by (service,
 * businessId), covering sessions from the moment a host is asked to open
 * them (so a push during the open is queued, not lost) until they close.
 */
import type { Duplex } from 'node:stream';
import type { WebSocket } from 'ws';
import type { PeerLink } from '../../transport/peer-link.js';
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

export interface GatewaySession {
  readonly id: string;
  readonly service: string;
  readonly businessId: string;
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
  /** Frames that came while the host ran onOpen. */
  queue: Buffer[] | undefined;
  queuedBytes: number;
  /** Heard from since the last ping (keepalive). */
  alive: boolean;
  /** The delivery tick the socket was last corked in, and bytes written then (delivery). */
  corkTick: number;
  tickBytes: number;
  /** Epoch ms at which the session's token stops holding (closed then with 4001); undefined without one. */
  expiresAt: number | undefined;
  /** The timer that closes it then, while open. */
  expiryTimer: NodeJS.Timeout | undefined;
}

export function newSession(id: string, service: string, businessId: string, hooks: boolean, socket: Duplex): GatewaySession {
  return {
    id,
    service,
    businessId,
    hooks,
    socket,
    hostLink: undefined,
    ws: undefined,
    state: SessionState.Opening,
    queue: undefined,
    queuedBytes: 0,
    alive: true,
    corkTick: 0,
    tickBytes: 0,
    expiresAt: undefined,
    expiryTimer: undefined,
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

  /** Every listed session, opening ones included. */
  values(): IterableIterator<GatewaySession> {
    return this.#byId.values();
  }

  /** A snapshot of every listed session, for changes while iterating. */
  snapshot(): GatewaySession[] {
    return [...this.#byId.values()];
  }
}
