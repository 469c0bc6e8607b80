/**
 * Binding a new session to a host: the host is chosen by consistent hash of
 * (service, businessId) over the live hosts, asked to open the session over
 * the gateway's link to it, and the client's upgrade waits for its answer
 * (SessionAccept, SessionReject, or the open timeout).
 */
import type { IncomingMessage } from 'node:http';
import { randomBytes } from 'node:crypto';
import type { Duplex } from 'node:stream';
import { WeftError, fromWire, toWeftError } from '../../errors.js';
import { FrameType, type WireHandshake } from '../../protocol/frames.js';
import type { LiveNodes } from '../../registry/registry.js';
import type { HashRing } from '../../util/hash-ring.js';
import type { FrameRoutes, NodeLinks, PeerLink } from '../../transport/peer-link.js';
import { SessionState, newSession, type GatewaySession, type GatewaySessions } from './gateway-sessions.js';
import type { Position } from '../../history/history-store.js';

/** Random bytes behind each session id: 128 bits, so an id cannot be guessed from another. */
const SESSION_ID_BYTES = 16;
/** Ids drawn per call to randomBytes. */
const IDS_PER_DRAW = 256;

/**
 * Session ids `<gateway node id>.<22 base64url characters>`: the prefix is
 * what push routing reads (push-client.ts gatewayOfSession, up to the last
 * dot; base64url has no dot), the suffix is random.
 */
export class SessionIds {
  readonly #prefix: string;
  #pool = Buffer.alloc(0);
  #offset = 0;

  constructor(nodeId: string) {
    this.#prefix = `${nodeId}.`;
  }

  next(): string {
    if (this.#offset + SESSION_ID_BYTES > this.#pool.length) {
      this.#pool = randomBytes(SESSION_ID_BYTES * IDS_PER_DRAW);
      this.#offset = 0;
    }
    const start = this.#offset;
    this.#offset += SESSION_ID_BYTES;
    return this.#prefix + this.#pool.toString('base64url', start, this.#offset);
  }
}

export interface SessionOpeningDeps {
  nodeId: string;
  links: NodeLinks;
  liveNodes: LiveNodes;
  /** The hash ring of a service's hosts. */
  ringOf: (service: string) => HashRing | undefined;
  sessions: GatewaySessions;
  /** Claims SessionAccept and SessionReject. */
  frames: FrameRoutes;
  sessionOpenTimeoutMs: number;
  /** Told to the host: the most client messages of a session waiting for its onMessage. */
  maxQueuedMessages: number;
  /** The host accepted: complete the client's upgrade. */
  accepted: (session: GatewaySession, req: IncomingMessage, head: Buffer) => void;
  /** Refuse the client's handshake with this error (no upgrade happened). */
  refuse: (socket: Duplex, error: WeftError) => void;
  /** Tell the session's host it is over. */
  tellHost: (session: GatewaySession, code: number, reason: string) => void;
  /** A session that will not open: what was queued for it reached no one. */
  dropQueue: (session: GatewaySession) => void;
}

interface PendingOpen {
  session: GatewaySession;
  req: IncomingMessage;
  head: Buffer;
  timer: NodeJS.Timeout;
}

export class SessionOpening {
  readonly #d: SessionOpeningDeps;
  readonly #pending = new Map<string, PendingOpen>();
  readonly #ids: SessionIds;

  constructor(deps: SessionOpeningDeps) {
    this.#d = deps;
    this.#ids = new SessionIds(deps.nodeId);
    deps.frames.on(FrameType.SessionAccept, (frame) => this.#onAccept(frame[1]));
    deps.frames.on(FrameType.SessionReject, (frame) => this.fail(frame[1], fromWire(frame[2])));
  }

  /** Is this session still waiting for its host? */
  has(sessionId: string): boolean {
    return this.#pending.has(sessionId);
  }

  /**
   * Chooses the host and asks it to open the session; `handshake` is what
   * the host learns of the client. Refuses the client itself when no host can.
   */
  open(
    req: IncomingMessage,
    socket: Duplex,
    head: Buffer,
    service: string,
    businessId: string,
    ip: string,
    hooks: boolean,
    handshake: WireHandshake,
    v1: { since: Position | undefined; historyTtlMs: number; roomSince?: Map<string, Position> | undefined } | undefined,
  ): void {
    if (socket.destroyed) return;
    const d = this.#d;
    const hostNodeId = this.#chooseHost(service, businessId, undefined);
    if (hostNodeId === undefined) {
      d.refuse(socket, new WeftError('ServiceUnavailable', `no live host for WebSocket service ${service}`));
      return;
    }
    const id = this.#ids.next();
    const session = newSession(id, service, businessId, ip, hooks, socket, v1);
    const timer = setTimeout(() => {
      this.fail(id, new WeftError('Timeout', `host did not open the session within ${d.sessionOpenTimeoutMs} ms`));
    }, d.sessionOpenTimeoutMs);
    this.#pending.set(id, { session, req, head, timer });
    d.sessions.add(session);
    // A host that runs onOpen learns the deadline, and gives the session up when it passes; and the
    // window of client messages this gateway keeps to (it closes a session past it).
    const sent: WireHandshake = hooks ? { ...handshake, openTimeoutMs: d.sessionOpenTimeoutMs, maxQueuedMessages: d.maxQueuedMessages } : handshake;
    this.#ask(id, session, hostNodeId, sent, undefined);
  }

  /**
   * The host for (service, businessId): the first on the hash ring that is
   * live, not draining, not backing off, not refused (its link failed
   * authentication) and not among `tried`.
   */
  #chooseHost(service: string, businessId: string, tried: ReadonlySet<string> | undefined): string | undefined {
    const d = this.#d;
    return d.ringOf(service)?.pickWhere(businessId, (id) => {
      if (tried?.has(id) === true) return false;
      return d.liveNodes.isLive(id) && d.links.get(id)?.peerDraining !== true && !d.links.isBackingOff(id) && !d.links.isRefused(id);
    });
  }

  /** Sends SessionOpen to `hostNodeId`; when it cannot be reached, the next host on the ring is asked. */
  #ask(id: string, session: GatewaySession, hostNodeId: string, handshake: WireHandshake, tried: Set<string> | undefined): void {
    const d = this.#d;
    d.links.connect(hostNodeId).then(
      (link) => {
        if (!this.#pending.has(id)) return;
        session.hostLink = link;
        try {
          link.send([FrameType.SessionOpen, id, session.service, session.businessId, handshake]);
        } catch (e) {
          this.fail(id, toWeftError(e));
        }
      },
      () => {
        if (!this.#pending.has(id)) return;
        // Nothing was sent to it: another host may take the session.
        const skip = tried ?? new Set<string>();
        skip.add(hostNodeId);
        const next = this.#chooseHost(session.service, session.businessId, skip);
        if (next === undefined) this.fail(id, new WeftError('ServiceUnavailable', `host for ${session.service} is unreachable`));
        else this.#ask(id, session, next, handshake, skip);
      },
    );
  }

  /** Ends a session still opening: its client is refused with `error`, its host told. */
  fail(id: string, error: WeftError): void {
    const pending = this.#pending.get(id);
    if (pending === undefined) return;
    this.#pending.delete(id);
    clearTimeout(pending.timer);
    pending.session.state = SessionState.Closed;
    this.#d.sessions.remove(pending.session);
    this.#d.dropQueue(pending.session);
    // The host may have accepted, or may yet: tell it the session is over.
    this.#d.tellHost(pending.session, 1006, 'handshake abandoned');
    this.#d.refuse(pending.session.socket, error);
  }

  /** Fails every session opening over `link` (its host went away). */
  failOver(link: PeerLink, error: WeftError): void {
    for (const [id, pending] of [...this.#pending]) if (pending.session.hostLink === link) this.fail(id, error);
  }

  /** Fails every session still opening. */
  failAll(error: WeftError): void {
    for (const id of [...this.#pending.keys()]) this.fail(id, error);
  }

  #onAccept(id: string): void {
    const pending = this.#pending.get(id);
    // Too late (timed out, or the client left): the host was already told it is over.
    if (pending === undefined) return;
    this.#pending.delete(id);
    clearTimeout(pending.timer);
    this.#d.accepted(pending.session, pending.req, pending.head);
  }
}
