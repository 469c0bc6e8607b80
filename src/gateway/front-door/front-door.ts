/**
 * The WebSocket front door of a gateway, wiring its parts:
 * handshake.ts checks a handshake; the auth gate (../auth/auth-gate.ts)
 * verifies its token, binds its businessId and runs the authenticate hook;
 * session-opening.ts binds the session to a host and waits for its answer;
 * gateway-sessions.ts is the one table of sessions held here;
 * delivery.ts writes pushes to client sockets; keepalive.ts pings them;
 * client-messages.ts carries client messages to hosts with back-pressure.
 *
 * Handshakes are refused with an HTTP status and JSON body before any
 * upgrade. A session is carried over the gateway's link to its host: one
 * socket per client, no second WebSocket. A session whose token expires
 * is closed with 4001.
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import { WeftError } from '../../errors.js';
import type { SessionDirectory } from '../../directory/session-directory.js';
import type { Logger } from '../../logger.js';
import { WeftCloseCode, closeReason, isSendableCloseCode } from '../../protocol/close-codes.js';
import { FrameType, type PushFrame, type SessionCloseFrame } from '../../protocol/frames.js';
import { FLAG_TEXT, type ClientControl, type ServerControl } from '../../protocol/weft-v1.js';
import type { HistoryRead, HistoryStore, Position } from '../../history/history-store.js';
import type { LiveNodes } from '../../registry/registry.js';
import type { HashRing } from '../../util/hash-ring.js';
import type { FrameRoutes, NodeLinks, PeerLink } from '../../transport/peer-link.js';
import type { Admission, AuthGate } from '../auth/auth-gate.js';
import { selectSubprotocol } from '../auth/token-source.js';
import { addSessionSource, countClose, countHandshake } from '../../metrics/metrics.js';
import { writeSocketError } from '../responses.js';
import { CountLimiter, RateLimiter } from './admission-limits.js';
import { AckBatch } from './ack-batch.js';
import { CatchUp } from './catch-up.js';
import { ClientMessages } from './client-messages.js';
import { Delivery } from './delivery.js';
import { SessionState, GatewaySessions, type GatewaySession } from './gateway-sessions.js';
import { NO_HANDSHAKE, checkHandshake, handshakeOf, type FindWebSocketService } from './handshake.js';
import { Keepalive } from './keepalive.js';
import { GatewayRooms } from './rooms.js';
import { SessionOpening } from './session-opening.js';
import { checkRequest, writeErrorReply, writeReply } from './session-replies.js';

/** What a gateway holds of sessions, for the dashboard. */
export interface SessionSummary {
  /** Sessions listed here, opening ones included. */
  total: number;
  /** Of those, the ones whose WebSocket is open. */
  open: number;
  /** Distinct businessIds among them. */
  businessIds: number;
  byService: Record<string, number>;
  /** The businessIds with the most sessions here, most first. */
  topBusinessIds: { businessId: string; sessions: number; services: string[] }[];
}

export interface FrontDoorOptions {
  maxMessageBytes: number;
  maxBufferedBytes: number;
  pingIntervalMs: number;
  sessionOpenTimeoutMs: number;
  /** Client messages of a session that may wait for its onMessage; there the client's socket is not read. */
  maxQueuedMessages: number;
  maxHandshakesPerIpPerSecond: number;
  maxSessionsPerIp: number;
  maxSessionsPerBusinessId: number;
  /** Rooms one session may be in at once, and the longest room name (rooms.ts). */
  maxRoomsPerSession: number;
  maxRoomNameLength: number;
  retryAfterSeconds: number;
  /** Tokens, businessId binding and the authenticate hook. */
  gate: AuthGate;
  logger: Logger;
}

/** The pieces of its gateway's node the front door uses. */
export interface FrontDoorDeps {
  nodeId: string;
  frames: FrameRoutes;
  links: NodeLinks;
  liveNodes: LiveNodes;
  directory: SessionDirectory;
  /** The cluster's push history (resume); undefined: none, resuming clients are told so. */
  history: HistoryStore | undefined;
  ringOf: (service: string) => HashRing | undefined;
  findService: FindWebSocketService;
}

const SESSION = Symbol('weft.session');
type SessionSocket = WebSocket & { [SESSION]: GatewaySession };
/** A client socket between the host's accept and the end of the upgrade. */
type UpgradingSocket = Duplex & { [SESSION]?: GatewaySession | undefined };

function destroySocket(this: Duplex): void {
  this.destroy();
}

const ADMITTED = Symbol('weft.admitted');
/** What a client socket counts against the session limits, released when it closes. */
interface Admitted {
  readonly ip: string;
  businessId: string | undefined;
}
type CountedSocket = Duplex & { [ADMITTED]?: Admitted | undefined };

/**
 * Node keeps the peer address on a socket once it is read (an object, with a
 * string); the limits read it at the handshake and keep their own copy. The
 * field is Node's own (net.Socket#_peername), so only an existing one is cleared.
 */
function forgetPeerAddress(socket: Duplex): void {
  const peer = socket as Duplex & { _peername?: unknown };
  if (peer._peername !== undefined) peer._peername = undefined;
}

/** The longest delay setTimeout takes; a later expiry is re-armed when it fires. */
const MAX_TIMER_MS = 2_147_483_647;
const TOKEN_EXPIRED_REASON = 'token expired';
/** How long a weft.v1 push waits for a missing earlier one (pushes from two hosts can cross) before the gap is read from history. */
const GAP_WAIT_MS = 100;
/** History reads in flight at once while sessions catch up after the directory lost them. */
const CATCH_UP_READS = 16;
/** How long a client that answered no ping has to take the close frame before its socket is cut. */
const CLOSE_GRACE_MS = 1000;

export class FrontDoor {
  readonly #d: FrontDoorDeps;
  readonly #o: FrontDoorOptions;
  readonly #wss: WebSocketServer;
  readonly #sessions = new GatewaySessions();
  readonly #opening: SessionOpening;
  readonly #delivery: Delivery;
  readonly #rooms: GatewayRooms;
  readonly #keepalive: Keepalive;
  readonly #messages: ClientMessages;
  #draining = false;
  #stopCounting: (() => void) | undefined;
  #stopCatchingUp: (() => void) | undefined;
  readonly #handshakesPerIp: RateLimiter;
  readonly #sessionsPerIp: CountLimiter;
  readonly #sessionsPerBusinessId: CountLimiter;
  /** Shared close listener of counted sockets (`this` is the socket). */
  readonly #onCountedClose: (this: CountedSocket) => void;
  // Shared listeners (`this` is the socket): no closures per session.
  readonly #onWsMessage: (this: WebSocket, data: Buffer, isBinary: boolean) => void;
  readonly #onWsClose: (this: WebSocket, code: number, reason: Buffer) => void;
  readonly #onWsError: (this: WebSocket, err: Error) => void;
  readonly #onUpgradingClose: (this: UpgradingSocket) => void;
  readonly #onExpired: (session: GatewaySession) => void;
  /** When the token of a handshake being opened stops holding (set before the open, read at the accept). */
  readonly #expiries = new WeakMap<IncomingMessage, number>();

  constructor(deps: FrontDoorDeps, options: FrontDoorOptions) {
    this.#d = deps;
    this.#o = options;
    this.#handshakesPerIp = new RateLimiter(options.maxHandshakesPerIpPerSecond);
    this.#sessionsPerIp = new CountLimiter(options.maxSessionsPerIp);
    this.#sessionsPerBusinessId = new CountLimiter(options.maxSessionsPerBusinessId);
    const perIp = this.#sessionsPerIp;
    const perBusinessId = this.#sessionsPerBusinessId;
    // Until the open, the socket's admission record holds the limits; from then on, the session.
    const release = (counted: Admitted): void => {
      perIp.release(counted.ip);
      if (counted.businessId !== undefined) perBusinessId.release(counted.businessId);
    };
    this.#onCountedClose = function () {
      const admitted = this[ADMITTED];
      if (admitted === undefined) return;
      delete this[ADMITTED];
      release(admitted);
    };
    // ws enforces maxPayload with close 1009 and UTF-8 validity of text frames with close 1007.
    this.#wss = new WebSocketServer({
      noServer: true,
      maxPayload: options.maxMessageBytes,
      perMessageDeflate: false,
      clientTracking: false,
      skipUTF8Validation: false,
      // Never answer with a weft.token.<token> entry (ws would pick the first offered).
      handleProtocols: selectSubprotocol,
    });
    this.#opening = new SessionOpening({
      nodeId: deps.nodeId,
      links: deps.links,
      liveNodes: deps.liveNodes,
      ringOf: deps.ringOf,
      sessions: this.#sessions,
      frames: deps.frames,
      sessionOpenTimeoutMs: options.sessionOpenTimeoutMs,
      maxQueuedMessages: options.maxQueuedMessages,
      accepted: (session, req, head) => this.#accepted(session, req, head),
      refuse: (socket, error) => writeSocketError(socket, error, options.retryAfterSeconds),
      tellHost: (session, code, reason) => this.#tellHost(session, code, reason),
      dropQueue: (session) => {
        // A session that never opens: what waited for it, and the rooms its onOpen joined, go.
        this.#delivery.dropQueue(session);
        this.#rooms.sessionClosed(session);
      },
    });
    this.#messages = new ClientMessages({
      maxQueuedMessages: options.maxQueuedMessages,
      logger: options.logger,
      hostGone: (session) => {
        this.#closed(session, 1012, 'host unavailable');
        session.ws?.close(1012, 'host unavailable; reconnect');
      },
      refuse: (session, requestId, error) => void writeErrorReply(session, requestId, error),
    });
    const history = deps.history;
    // A weft.v1 session of a service that keeps history reads its streams: its businessId's, and its rooms'.
    const readStream = (session: GatewaySession, stream: string, key: string, since: Position | undefined): Promise<HistoryRead | undefined> =>
      history === undefined || session.v1 === undefined || session.v1.historyTtlMs === 0
        ? Promise.resolve(undefined)
        : history.read(stream, key, since, session.v1.historyTtlMs);
    const acks = new AckBatch();
    this.#delivery = new Delivery({
      maxBufferedBytes: options.maxBufferedBytes,
      evict: (session) => this.#evictSlow(session),
      ack: (link, ackId, delivered) => acks.add(link, ackId, delivered),
      gapWaitMs: GAP_WAIT_MS,
      readHistory: (session, since) => readStream(session, session.service, session.businessId, since),
    });
    this.#rooms = new GatewayRooms(
      {
        frames: deps.frames,
        sessions: this.#sessions,
        directory: deps.directory,
        delivery: this.#delivery,
        ack: (link, ackId, delivered) => acks.add(link, ackId, delivered),
        readHistory: readStream,
        logger: options.logger,
      },
      { maxRoomsPerSession: options.maxRoomsPerSession, maxRoomNameLength: options.maxRoomNameLength, maxBufferedBytes: options.maxBufferedBytes },
    );
    this.#keepalive = new Keepalive({
      pingIntervalMs: options.pingIntervalMs,
      sessions: () => ({ size: this.#sessions.openCount, values: () => this.#sessions.values() }),
      dead: (session) => {
        options.logger.debug({ sessionId: session.id }, 'no pong within the ping interval; closing');
        this.#closed(session, WeftCloseCode.PingTimeout, 'no pong');
        // A close frame first, so a client that is only slow learns why; cut if it does not answer.
        const ws = session.ws!;
        ws.close(WeftCloseCode.PingTimeout, 'no answer to ping');
        setTimeout(() => ws.terminate(), CLOSE_GRACE_MS).unref();
      },
    });
    // The shared listeners below get the socket as `this`, so they reach the door
    // through these, made once per door (not per session).
    const fromClient = (session: GatewaySession, data: Buffer, isBinary: boolean): void => this.#fromClient(session, data, isBinary);
    const closed = (session: GatewaySession, code: number, reason: Buffer): void => this.#closed(session, code, reason.toString('utf8'));
    const abandon = (session: GatewaySession): void => this.#abandon(session, 'handshake failed');
    const logger = options.logger;
    this.#onWsMessage = function (data, isBinary) {
      fromClient((this as SessionSocket)[SESSION], data, isBinary);
    };
    this.#onWsClose = function (code, reason) {
      const session = (this as SessionSocket)[SESSION];
      closed(session, code, reason);
      // ws closes only once the socket has: the session's limits are released now (#opened).
      release(session);
    };
    this.#onWsError = function (err) {
      logger.debug({ err: err.message, sessionId: (this as SessionSocket)[SESSION].id }, 'WebSocket protocol error');
    };
    this.#onExpired = (session) => this.#expire(session);
    this.#onUpgradingClose = function () {
      const session = this[SESSION];
      if (session !== undefined && session.state === SessionState.Opening) abandon(session);
    };
    deps.frames.on(FrameType.SessionClose, (frame) => this.#onCloseRequest(frame));
    // What the host's onOpen attached; it comes just before the SessionAccept, on the same link.
    deps.frames.on(FrameType.SessionMetadata, (frame) => {
      const session = this.#sessions.get(frame[1]);
      if (session?.state === SessionState.Opening) session.metadata = frame[2];
    });
    deps.frames.on(FrameType.SessionHandled, (frame) => {
      const session = this.#sessions.get(frame[1]);
      if (session !== undefined) this.#messages.handled(session, frame[2]);
    });
    deps.frames.on(FrameType.SessionReply, (frame) => {
      const session = this.#sessions.get(frame[1]);
      // A session that ended meanwhile: its client rejected the call when it closed.
      if (session !== undefined && session.v1 !== undefined) writeReply(session, frame[2], frame[3], frame[4]);
    });
    const onPush = (frame: PushFrame, link: PeerLink): void => this.#delivery.push(frame, this.#sessions, link);
    deps.frames.on(FrameType.PushSession, onPush);
    deps.frames.on(FrameType.PushBusiness, onPush);
    deps.frames.on(FrameType.PushService, onPush);
    deps.links.onLinkClosed((link) => this.#onHostLinkClosed(link));
  }

  /** Sessions whose WebSocket is open here. */
  get sessionCount(): number {
    return this.#sessions.openCount;
  }

  /**
   * Sessions held here (opening ones included) by service, and the `top`
   * businessIds holding the most of them: for the dashboard. Walks every
   * session, so it is read at most once a second.
   */
  sessionSummary(top: number): SessionSummary {
    const byService: Record<string, number> = {};
    for (const [service, n] of this.#sessions.countsByService()) byService[service] = n;
    const byBusiness = new Map<string, { sessions: number; services: Set<string> }>();
    let total = 0;
    for (const s of this.#sessions.values()) {
      total += 1;
      let entry = byBusiness.get(s.businessId);
      if (entry === undefined) byBusiness.set(s.businessId, (entry = { sessions: 0, services: new Set() }));
      entry.sessions += 1;
      entry.services.add(s.service);
    }
    const topBusinessIds = [...byBusiness]
      .sort((a, b) => b[1].sessions - a[1].sessions || (a[0] < b[0] ? -1 : 1))
      .slice(0, top)
      .map(([businessId, e]) => ({ businessId, sessions: e.sessions, services: [...e.services].sort() }));
    return { total, open: this.#sessions.openCount, businessIds: byBusiness.size, byService, topBusinessIds };
  }

  start(): void {
    this.#keepalive.start();
    this.#stopCounting = addSessionSource(() => this.#sessions.countsByService());
    const sessions = this.#sessions;
    this.#d.directory.setHeldSessions(function* () {
      for (const s of sessions.values()) {
        if (s.state === SessionState.Open) yield [s.service, s.businessId, s.id, { openedAt: s.openedAt, metadata: s.metadata }] as const;
      }
    });
    const catchUp = new CatchUp({
      sessions: () => sessions.values(),
      recheck: (session) => this.#delivery.recheck(session),
      concurrency: CATCH_UP_READS,
      logger: this.#o.logger,
    });
    this.#stopCatchingUp = this.#d.directory.onRestored?.(() => catchUp.run());
  }

  /** Handles an HTTP upgrade request on the gateway's server. */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    // A shared listener: a closure here would keep this request alive as long as the socket.
    socket.on('error', destroySocket);
    const retryAfter = this.#o.retryAfterSeconds;
    if (this.#draining)
      return writeSocketError(socket, new WeftError('Draining', 'gateway is shutting down; reconnect to another instance'), retryAfter);
    // Limits first: a flood costs no token check and no host.
    const ip = req.socket.remoteAddress ?? '';
    const wait = this.#handshakesPerIp.take(ip);
    if (wait > 0) return this.#tooMany(socket, `over ${this.#o.maxHandshakesPerIpPerSecond} WebSocket handshakes a second from this address`, wait);
    const gate = this.#o.gate;
    const checked = checkHandshake(req, this.#d.findService, gate.tokens);
    if ('error' in checked) return writeSocketError(socket, checked.error, retryAfter, checked.headers);
    if (!this.#sessionsPerIp.acquire(ip)) {
      return this.#tooMany(socket, `this address holds ${this.#o.maxSessionsPerIp} WebSocket sessions, the most it may`, retryAfter);
    }
    // Released when the socket closes, however the session ends or is refused.
    const counted = socket as CountedSocket;
    counted[ADMITTED] = { ip, businessId: undefined };
    socket.once('close', this.#onCountedClose);
    const open = (admission: Admission | undefined): void => {
      const businessId = admission?.businessId ?? checked.businessId;
      // checkHandshake lets a handshake without a businessId through only when the token has to name it.
      if (businessId === undefined) return writeSocketError(socket, new WeftError('BadRequest', 'businessId is required'), retryAfter);
      // A socket that closed during the token check is gone: nothing to count.
      const admitted = counted[ADMITTED];
      if (socket.destroyed || admitted === undefined) return;
      if (!this.#sessionsPerBusinessId.acquire(businessId)) {
        return this.#tooMany(
          socket,
          `businessId ${businessId} holds ${this.#o.maxSessionsPerBusinessId} WebSocket sessions, the most it may`,
          retryAfter,
        );
      }
      admitted.businessId = businessId;
      if (admission?.expiresAt !== undefined) this.#expiries.set(req, admission.expiresAt);
      const handshake = checked.hooks ? handshakeOf(req, checked, admission, gate.tokens) : NO_HANDSHAKE;
      const v1 = checked.weftV1 ? { since: checked.since, historyTtlMs: checked.history?.ttlMs ?? 0, roomSince: checked.roomSince } : undefined;
      this.#opening.open(req, socket, head, checked.service, businessId, admitted.ip, checked.hooks, handshake, v1);
    };
    if (!gate.active) return open(undefined);
    void gate
      .admit({
        kind: 'websocket',
        method: 'GET',
        path: checked.path,
        params: checked.params,
        headers: req.headers,
        query: checked.query,
        remoteAddress: req.socket.remoteAddress ?? '',
        givenBusinessIds: checked.givenBusinessIds,
      })
      .then((result) => {
        if ('error' in result) writeSocketError(socket, result.error, retryAfter, result.headers);
        else open(result);
      });
  }

  /** A handshake over a limit: 429 with Retry-After; the body's code is Overloaded until the catalogue has one for 429. */
  #tooMany(socket: Duplex, message: string, retryAfterSeconds: number): void {
    writeSocketError(socket, new WeftError('TooManyRequests', message), retryAfterSeconds);
  }

  /** The host accepted the session: complete the upgrade, unless the client or the gateway is gone. */
  #accepted(session: GatewaySession, req: IncomingMessage, head: Buffer): void {
    const socket = session.socket;
    if (socket.destroyed || this.#draining) {
      this.#abandon(session, 'client left during the handshake');
      if (!socket.destroyed) writeSocketError(socket, new WeftError('Draining', 'gateway is shutting down'), this.#o.retryAfterSeconds);
      return;
    }
    // ws may refuse the handshake after all, or find the socket gone, and then never calls back:
    // the socket's close is what tells us, whenever it comes. (No assumption that the callback
    // comes at once.)
    const upgrading = socket as UpgradingSocket;
    upgrading[SESSION] = session;
    upgrading.once('close', this.#onUpgradingClose);
    const expiresAt = this.#expiries.get(req);
    this.#wss.handleUpgrade(req, socket, head, (ws) => this.#opened(session, ws, expiresAt));
  }

  /** A session that never opened: forgotten here and at its host. */
  #abandon(session: GatewaySession, reason: string): void {
    session.state = SessionState.Closed;
    this.#sessions.remove(session);
    this.#delivery.dropQueue(session);
    this.#rooms.sessionClosed(session);
    this.#tellHost(session, 1006, reason);
  }

  #opened(session: GatewaySession, ws: WebSocket, expiresAt: number | undefined): void {
    if (session.state !== SessionState.Opening) {
      ws.terminate();
      return;
    }
    const socket = session.socket as UpgradingSocket;
    socket.off('close', this.#onUpgradingClose);
    // ws owns the socket now: its errors and close come through the WebSocket. Two listeners
    // less on each socket (and the once wrapper) are about 250 B per session.
    socket.off('error', destroySocket);
    socket.off('close', this.#onCountedClose);
    // Not `delete`: that turns the socket into a slow dictionary-mode object, about 900 B more per session.
    socket[SESSION] = undefined;
    // The session holds its limits from now on (#onWsClose releases them); and Node's cached
    // copy of the peer address is not needed any more. About 90 B less per idle session.
    (socket as CountedSocket)[ADMITTED] = undefined;
    forgetPeerAddress(socket);
    this.#sessions.opened(session, ws);
    countHandshake(101);
    (ws as SessionSocket)[SESSION] = session;
    session.openedAt = Date.now();
    this.#d.directory.add(session.service, session.businessId, session.id, { openedAt: session.openedAt, metadata: session.metadata });
    ws.on('message', this.#onWsMessage);
    ws.on('close', this.#onWsClose);
    ws.on('error', this.#onWsError);
    if (expiresAt !== undefined) session.expiresAt = expiresAt;
    this.#delivery.opened(session, (read) => this.#welcome(session, read));
    // A weft.v1 session's rooms start after its welcome (#welcome), a bare one's now.
    if (session.v1 === undefined) this.#rooms.sessionReady(session);
    if (expiresAt !== undefined) this.#expire(session);
  }

  /** The first message of a weft.v1 session: its id, where its stream stands, and whether its resume recovered. */
  #welcome(session: GatewaySession, read: HistoryRead | undefined): void {
    const v1 = session.v1!;
    const since = v1.since;
    let recovered = false;
    let reason: string | undefined;
    if (since !== undefined) {
      if (v1.historyTtlMs === 0) reason = 'no-history';
      else if (read === undefined) reason = 'history-unavailable';
      else if (read.recovered) recovered = true;
      else reason = read.reason;
    }
    const welcome: ServerControl = {
      type: 'welcome',
      sessionId: session.id,
      // Where the client stands before the replay: its own position when recovered, else the top.
      position: read === undefined ? null : recovered ? since! : read.top,
      recovered,
      replayed: recovered && read?.recovered === true ? read.entries.length : 0,
    };
    if (reason !== undefined) welcome.reason = reason;
    if (session.expiresAt !== undefined) welcome.expiresAt = session.expiresAt;
    this.#delivery.control(session, welcome);
    this.#rooms.sessionReady(session);
  }

  /** Closes the session (4001) if its token no longer holds, else sets the timer for when it stops. */
  #expire(session: GatewaySession): void {
    session.expiryTimer = undefined;
    if (session.state !== SessionState.Open || session.expiresAt === undefined) return;
    const left = session.expiresAt - Date.now();
    if (left > 0) {
      session.expiryTimer = setTimeout(this.#onExpired, Math.min(left, MAX_TIMER_MS), session);
      session.expiryTimer.unref();
      return;
    }
    this.#o.logger.debug({ sessionId: session.id }, 'token expired; closing with 4001');
    this.#closed(session, WeftCloseCode.TokenExpired, TOKEN_EXPIRED_REASON);
    session.ws!.close(WeftCloseCode.TokenExpired, TOKEN_EXPIRED_REASON);
  }

  #fromClient(session: GatewaySession, data: Buffer, isBinary: boolean): void {
    if (session.v1 !== undefined) {
      // weft.v1: text is control, binary is an application message behind one flags byte.
      if (!isBinary) return this.#control(session, data);
      if (data.length === 0) return;
      return this.#messages.toHost(session, data.subarray(1), (data[0]! & FLAG_TEXT) !== 0);
    }
    this.#messages.toHost(session, data, !isBinary);
  }

  /** A weft.v1 control message from the client; a malformed one is answered with an error, the session goes on. */
  #control(session: GatewaySession, data: Buffer): void {
    let message: Partial<ClientControl> | undefined;
    try {
      message = JSON.parse(data.toString('utf8')) as Partial<ClientControl>;
    } catch {
      message = undefined;
    }
    if (message?.type === 'request') return this.#request(session, message, data);
    if (message?.type === 'receipt' && Array.isArray(message.ids)) return this.#delivery.receipts(session, message.ids);
    if (message?.type === 'token' && typeof message.token === 'string') return this.#refreshToken(session, message.token);
    this.#delivery.control(session, { type: 'error', code: 'BadRequest', message: 'not a weft.v1 control message' } satisfies ServerControl);
  }

  /** A weft.v1 request: to the session's host, behind its messages; a malformed one is answered here. */
  #request(session: GatewaySession, message: { id?: unknown; name?: unknown }, data: Buffer): void {
    const checked = checkRequest(message);
    if ('name' in checked) return this.#messages.request(session, checked.id, checked.name, data);
    const error = new WeftError('BadRequest', checked.problem);
    if (checked.id !== 0) writeErrorReply(session, checked.id, error);
    else this.#delivery.control(session, { type: 'error', code: error.code, message: error.message } satisfies ServerControl);
  }

  /** A fresh token for an open session: its expiry moves, or the client hears why not (its session keeps its old expiry). */
  #refreshToken(session: GatewaySession, token: string): void {
    void this.#o.gate.refresh(token, session.businessId).then((result) => {
      if (session.state !== SessionState.Open) return;
      if ('error' in result) {
        this.#delivery.control(session, { type: 'error', code: result.error.code, message: result.error.message } satisfies ServerControl);
        return;
      }
      if (session.expiryTimer !== undefined) clearTimeout(session.expiryTimer);
      session.expiryTimer = undefined;
      session.expiresAt = result.expiresAt;
      this.#expire(session);
      this.#delivery.control(session, { type: 'token', expiresAt: result.expiresAt ?? null } satisfies ServerControl);
    });
  }

  /** An open session ended (either side): forgotten here, in the directory and at its host. */
  #closed(session: GatewaySession, code: number, reason: string): void {
    if (session.state === SessionState.Closed) return;
    session.state = SessionState.Closed;
    countClose(code);
    if (session.expiryTimer !== undefined) clearTimeout(session.expiryTimer);
    this.#sessions.remove(session);
    this.#delivery.dropQueue(session);
    this.#rooms.sessionClosed(session);
    this.#messages.ended(session);
    this.#d.directory.remove(session.service, session.businessId, session.id, { openedAt: session.openedAt, metadata: session.metadata });
    this.#tellHost(session, code, reason);
  }

  #tellHost(session: GatewaySession, code: number, reason: string): void {
    const link = session.hostLink;
    if (link === undefined || !link.isOpen) return;
    try {
      link.send([FrameType.SessionClosed, session.id, code, reason, session.service, session.businessId]);
    } catch {
      // link closing: the host ends the session itself
    }
  }

  /** A client that does not read: close it (1008) so it cannot hold the gateway's memory. */
  #evictSlow(session: GatewaySession): void {
    this.#o.logger.info({ sessionId: session.id, bufferedBytes: session.socket.writableLength }, 'closing a slow WebSocket client');
    // After the current push: it may be going through the group this session leaves.
    queueMicrotask(() => {
      this.#closed(session, 1008, 'slow consumer');
      session.ws!.close(1008, `slow consumer: over ${this.#o.maxBufferedBytes} bytes unread`);
    });
  }

  #onCloseRequest(frame: SessionCloseFrame): void {
    const [, id, requested, rawReason] = frame;
    // The frame comes from another node: a code or reason ws would refuse must not strand the client.
    const code = isSendableCloseCode(requested) ? requested : 1011;
    const reason = closeReason(rawReason);
    if (this.#opening.has(id)) {
      this.#opening.fail(id, new WeftError('ServiceUnavailable', reason || 'session closed by its host'));
      return;
    }
    const session = this.#sessions.get(id);
    if (session === undefined || session.ws === undefined) return;
    this.#closed(session, code, reason);
    try {
      session.ws.close(code, reason);
    } catch {
      session.ws.terminate();
    }
  }

  /** The link to a host closed: the sessions whose hooks ran there end (1012), so clients reconnect to a live host. */
  #onHostLinkClosed(link: PeerLink): void {
    this.#opening.failOver(link, new WeftError('ServiceUnavailable', 'host went away during the handshake'));
    const lost: GatewaySession[] = [];
    for (const session of this.#sessions.values()) {
      if (session.hostLink !== link || session.ws === undefined) continue;
      // Only sessions whose hooks ran on that host end with it; pushes reach the others from any node.
      if (session.hooks) lost.push(session);
      else session.hostLink = undefined;
    }
    if (lost.length === 0) return;
    this.#o.logger.info({ host: link.peerNodeId, sessions: lost.length }, 'host link lost; closing its sessions with 1012');
    for (const session of lost) {
      session.hostLink = undefined;
      this.#closed(session, 1012, 'host went away');
      session.ws!.close(1012, 'host went away; reconnect');
    }
  }

  /** Stops new sessions and closes every open one with 1001; resolves when they are closed or the time is up. */
  async drain(timeoutMs: number): Promise<void> {
    this.#draining = true;
    this.#keepalive.stop();
    this.#stopCounting?.();
    this.#stopCatchingUp?.();
    this.#opening.failAll(new WeftError('Draining', 'gateway is shutting down'));
    const sockets: WebSocket[] = [];
    for (const session of this.#sessions.snapshot()) {
      const ws = session.ws;
      if (ws === undefined) continue;
      sockets.push(ws);
      this.#closed(session, 1001, 'gateway shutting down');
      ws.close(1001, 'gateway shutting down; reconnect');
    }
    const closedAll = Promise.all(
      sockets.map((ws) => (ws.readyState === ws.CLOSED ? Promise.resolve() : new Promise<void>((r) => ws.once('close', () => r())))),
    );
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([closedAll, new Promise<void>((r) => (timer = setTimeout(r, timeoutMs)))]);
    clearTimeout(timer);
    for (const ws of sockets) if (ws.readyState !== ws.CLOSED) ws.terminate();
    this.#wss.close();
  }
}
