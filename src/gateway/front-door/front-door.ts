/**
 * The WebSocket front door of a gateway.
 *
 * Handshakes are checked and refused with an HTTP status and JSON body
 * before any upgrade. An accepted session is bound to a host chosen by
 * consistent hash of its businessId, and carried over the gateway's link to
 * that host: one socket per client, no second WebSocket. Pushes arrive as one
 * frame per businessId and leave as one write per client socket per tick.
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import { WeftError, fromWire, toWeftError } from '../../errors.js';
import type { Logger } from '../../logger.js';
import {
  FrameType,
  type Frame,
  type SessionAcceptFrame,
  type SessionCloseFrame,
  type SessionRejectFrame,
  type WireHandshake,
} from '../../protocol/frames.js';
import type { WeftNode } from '../../node/node.js';
import type { Link } from '../../transport/link.js';
import type { PushFrame } from '../../push/push-client.js';
import type { Authenticate } from '../http-api.js';
import { parseQuery } from '../http-api.js';
import { writeSocketError } from '../responses.js';
import { dataFrame } from './ws-frame.js';
import { closeReason, isSendableCloseCode } from '../../protocol/close-codes.js';
import type { RouteTable } from '../route-table.js';

export interface FrontDoorOptions {
  maxMessageBytes: number;
  maxBufferedBytes: number;
  pingIntervalMs: number;
  sessionOpenTimeoutMs: number;
  retryAfterSeconds: number;
  authenticate: Authenticate | undefined;
  logger: Logger;
}

const OPENING = 0;
const OPEN = 1;
const CLOSED = 2;
/** Being evicted: no more writes; cleaned up once the push that found it slow is done. */
const EVICTING = 3;

interface GatewaySession {
  readonly id: string;
  readonly service: string;
  readonly businessId: string;
  readonly socket: Duplex;
  hostLink: Link | undefined;
  ws: WebSocket | undefined;
  state: number;
  /** Frames that came while the host ran onOpen. */
  queue: Buffer[] | undefined;
  queuedBytes: number;
  alive: boolean;
  corkTick: number;
  /** Bytes written in the current tick (still corked): not a sign the client is slow. */
  tickBytes: number;
}

interface PendingOpen {
  session: GatewaySession;
  req: IncomingMessage;
  head: Buffer;
  timer: NodeJS.Timeout;
}

/** Headers a host does not need: hop-by-hop and the WebSocket handshake's own. */
const DROPPED_HEADERS = new Set(['connection', 'upgrade', 'keep-alive', 'transfer-encoding', 'te', 'trailer', 'proxy-authorization', 'proxy-connection']);

const SESSION = Symbol('weft.session');
const PING_TICK_MS = 100;
const KEY = /^[+/0-9A-Za-z]{22}==$/;

type SessionSocket = WebSocket & { [SESSION]: GatewaySession };

/** What a host of a service without hooks is told of a handshake: nothing, it has no use for it. */
const NO_HANDSHAKE: WireHandshake = Object.freeze({ headers: {}, query: {}, remoteAddress: '' }) as WireHandshake;

function handshakeOf(req: IncomingMessage, query: Record<string, string>, identity: Record<string, string> | undefined): WireHandshake {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(req.headers)) {
    if (value === undefined || DROPPED_HEADERS.has(name) || name.startsWith('sec-websocket-')) continue;
    headers[name] = Array.isArray(value) ? value.join(', ') : value;
  }
  if (identity !== undefined) Object.assign(headers, identity);
  return { headers, query, remoteAddress: req.socket.remoteAddress ?? '' };
}

const TOKEN = /^[!#$%&'*+\-.0-9A-Z^_`|~a-z]+$/;

/** A Sec-WebSocket-Protocol header as RFC 6455 wants it: comma-separated tokens, none twice. */
function validSubprotocols(header: string | undefined): boolean {
  if (header === undefined) return true;
  const seen = new Set<string>();
  for (const raw of header.split(',')) {
    const token = raw.trim();
    if (!TOKEN.test(token) || seen.has(token)) return false;
    seen.add(token);
  }
  return true;
}

function destroySocket(this: Duplex): void {
  this.destroy();
}
type Group = GatewaySession[] | Set<GatewaySession>;

/** Sessions of one businessId kept in an array up to this many, a Set beyond. */
const SMALL_GROUP = 32;

export class FrontDoor {
  readonly #node: WeftNode;
  readonly #routes: RouteTable;
  readonly #o: FrontDoorOptions;
  readonly #wss: WebSocketServer;
  readonly #sessions = new Map<string, GatewaySession>();
  /** service -> businessId -> its sessions here (an array while small, a Set when large). */
  readonly #byBusiness = new Map<string, Map<string, Group>>();
  readonly #pending = new Map<string, PendingOpen>();
  #nextSession = 0;
  #draining = false;
  #corked: Duplex[] = [];
  #tick = 1;
  #pingTimer: NodeJS.Timeout | undefined;
  #pingCursor: IterableIterator<GatewaySession> | undefined;
  readonly #uncork = (): void => this.#uncorkAll();
  // Shared listeners (`this` is the socket): no closures per session.
  readonly #onWsMessage: (this: WebSocket, data: Buffer, isBinary: boolean) => void;
  readonly #onWsClose: (this: WebSocket, code: number, reason: Buffer) => void;
  readonly #onWsPong: (this: WebSocket) => void;
  readonly #onWsError: (this: WebSocket, err: Error) => void;

  constructor(node: WeftNode, routes: RouteTable, options: FrontDoorOptions) {
    this.#node = node;
    this.#routes = routes;
    this.#o = options;
    // ws enforces maxPayload with close 1009 and UTF-8 validity of text frames with close 1007.
    this.#wss = new WebSocketServer({
      noServer: true,
      maxPayload: options.maxMessageBytes,
      perMessageDeflate: false,
      clientTracking: false,
      skipUTF8Validation: false,
    });
    const door = this;
    this.#onWsMessage = function (data, isBinary) {
      door.#fromClient((this as SessionSocket)[SESSION], data, isBinary);
    };
    this.#onWsClose = function (code, reason) {
      door.#closed((this as SessionSocket)[SESSION], code, reason.toString('utf8'));
    };
    this.#onWsPong = function () {
      (this as SessionSocket)[SESSION].alive = true;
    };
    this.#onWsError = function (err) {
      door.#o.logger.debug({ err: err.message, sessionId: (this as SessionSocket)[SESSION].id }, 'WebSocket protocol error');
    };
    node.handle(FrameType.SessionAccept, (frame) => this.#onAccept(frame as SessionAcceptFrame));
    node.handle(FrameType.SessionReject, (frame) => this.#onReject(frame as SessionRejectFrame));
    node.handle(FrameType.SessionClose, (frame) => this.#onCloseRequest(frame as SessionCloseFrame));
    const onPush = (frame: Frame, link: Link): void => this.#ack(link, (frame as PushFrame)[1], this.#push(frame as PushFrame));
    node.handle(FrameType.PushSession, onPush);
    node.handle(FrameType.PushBusiness, onPush);
    node.handle(FrameType.PushService, onPush);
    node.localPush = (frame) => this.#push(frame);
    node.onLinkClosed((link) => this.#onHostLinkClosed(link));
  }

  get sessionCount(): number {
    return this.#sessions.size;
  }

  start(): void {
    this.#pingTimer = setInterval(() => this.#pingSome(), PING_TICK_MS);
    this.#pingTimer.unref();
    const sessions = this.#sessions;
    this.#node.membership.directory.setHeldSessions(function* () {
      for (const s of sessions.values()) yield [s.service, s.businessId, s.id] as const;
    });
  }

  /** Handles an HTTP upgrade request on the gateway's server. */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    // A shared listener: a closure here would keep this request alive as long as the socket.
    socket.on('error', destroySocket);
    const refuse = (error: WeftError, extra: Record<string, string> = {}): void =>
      writeSocketError(socket, error, this.#o.retryAfterSeconds, extra);
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const path = q < 0 ? url : url.slice(0, q);
    if (this.#draining) return refuse(new WeftError('Draining', 'gateway is shutting down; reconnect to another instance'));
    const route = this.#routes.websocketService(path);
    if (route === undefined) return refuse(new WeftError('NotFound', `no WebSocket service at ${path}`));
    const { service, hooks } = route;
    if ((req.headers.upgrade ?? '').toLowerCase() !== 'websocket' || !KEY.test(req.headers['sec-websocket-key'] ?? '')) {
      return refuse(new WeftError('BadRequest', 'not a valid WebSocket handshake'));
    }
    if (req.headers['sec-websocket-version'] !== '13') {
      return refuse(new WeftError('BadRequest', 'unsupported WebSocket version; use 13'), { 'sec-websocket-version': '13' });
    }
    // Everything ws itself would refuse is refused here, before a host is asked to open anything.
    if (req.method !== 'GET') return refuse(new WeftError('BadRequest', 'a WebSocket handshake is a GET request'));
    if (!validSubprotocols(req.headers['sec-websocket-protocol'])) {
      return refuse(new WeftError('BadRequest', 'malformed Sec-WebSocket-Protocol header'));
    }
    // URLSearchParams reads any query string (a bad escape stays as written): nothing to refuse.
    const query = parseQuery(q < 0 ? '' : url.slice(q + 1));
    const header = (name: string): string | undefined => {
      const v = req.headers[name];
      return Array.isArray(v) ? v[0] : v;
    };
    // Query first, then header; Silky's spelling `bussinessId` too. Names match case-insensitively.
    const businessId = query['businessid'] ?? query['bussinessid'] ?? header('businessid') ?? header('bussinessid');
    if (businessId === undefined || businessId === '') {
      return refuse(new WeftError('BadRequest', 'businessId is required, in the query string (?businessId=) or a businessId header'));
    }
    if (businessId.length > 256 || /[\u0000-\u001f]/.test(businessId)) {
      return refuse(new WeftError('BadRequest', 'businessId must be at most 256 characters without control characters'));
    }
    const auth = this.#o.authenticate;
    if (auth === undefined) {
      this.#bind(req, socket, head, service, hooks, businessId, query, undefined);
      return;
    }
    Promise.resolve()
      .then(() => auth({ kind: 'websocket', method: 'GET', path, headers: req.headers, query, remoteAddress: req.socket.remoteAddress ?? '' }))
      .then(
        (identity) => this.#bind(req, socket, head, service, hooks, businessId, query, identity ?? undefined),
        (e: unknown) => refuse(toWeftError(e)),
      );
  }

  /** Chooses the host and asks it to open the session; the upgrade waits for its answer. */
  #bind(
    req: IncomingMessage,
    socket: Duplex,
    head: Buffer,
    service: string,
    hooks: boolean,
    businessId: string,
    query: Record<string, string>,
    identity: Record<string, string> | undefined,
  ): void {
    const refuse = (error: WeftError): void => writeSocketError(socket, error, this.#o.retryAfterSeconds);
    if (socket.destroyed) return;
    const node = this.#node;
    const hostNodeId = node.endpoints.ring(service)?.pickWhere(businessId, (id) => {
      return node.view.has(id) && node.peers.get(id)?.peerDraining !== true && !node.peers.isBackingOff(id);
    });
    if (hostNodeId === undefined) return refuse(new WeftError('ServiceUnavailable', `no live host for WebSocket service ${service}`));
    const id = `${node.nodeId}.${(++this.#nextSession).toString(36)}`;
    const session: GatewaySession = {
      id,
      service,
      businessId,
      socket,
      hostLink: undefined,
      ws: undefined,
      state: OPENING,
      queue: undefined,
      queuedBytes: 0,
      alive: true,
      corkTick: 0,
      tickBytes: 0,
    };
    const timer = setTimeout(() => {
      this.#failPending(id, new WeftError('Timeout', `host did not open the session within ${this.#o.sessionOpenTimeoutMs} ms`));
    }, this.#o.sessionOpenTimeoutMs);
    this.#pending.set(id, { session, req, head, timer });
    this.#index(session);
    const handshake = hooks ? handshakeOf(req, query, identity) : NO_HANDSHAKE;
    node.peers.connect(hostNodeId).then(
      (link) => {
        if (!this.#pending.has(id)) return;
        session.hostLink = link;
        try {
          link.send([FrameType.SessionOpen, id, service, businessId, handshake]);
        } catch (e) {
          this.#failPending(id, toWeftError(e));
        }
      },
      () => this.#failPending(id, new WeftError('ServiceUnavailable', `host for ${service} is unreachable`)),
    );
  }

  #failPending(id: string, error: WeftError): void {
    const pending = this.#pending.get(id);
    if (pending === undefined) return;
    this.#pending.delete(id);
    clearTimeout(pending.timer);
    pending.session.state = CLOSED;
    this.#unindex(pending.session);
    // The host may have accepted, or may yet: tell it the session is over.
    this.#tellHost(pending.session, 1006, 'handshake abandoned');
    writeSocketError(pending.session.socket, error, this.#o.retryAfterSeconds);
  }

  #onAccept(frame: SessionAcceptFrame): void {
    const id = frame[1];
    const pending = this.#pending.get(id);
    // Too late (timed out, or the client left): the host was already told it is over.
    if (pending === undefined) return;
    this.#pending.delete(id);
    clearTimeout(pending.timer);
    const { session, req, head } = pending;
    if (session.socket.destroyed || this.#draining) {
      session.state = CLOSED;
      this.#unindex(session);
      this.#tellHost(session, 1006, 'client left during the handshake');
      if (!session.socket.destroyed) writeSocketError(session.socket, new WeftError('Draining', 'gateway is shutting down'), this.#o.retryAfterSeconds);
      return;
    }
    this.#wss.handleUpgrade(req, session.socket, head, (ws) => this.#opened(session, ws));
    // ws answers synchronously; if it did not open the session (the socket went away, or it
    // refused the handshake after all), the session must not linger anywhere.
    if (session.state === OPENING) {
      session.state = CLOSED;
      this.#unindex(session);
      this.#tellHost(session, 1006, 'handshake failed');
      if (!session.socket.destroyed) session.socket.destroy();
    }
  }

  #onReject(frame: SessionRejectFrame): void {
    this.#failPending(frame[1], fromWire(frame[2]));
  }

  #opened(session: GatewaySession, ws: WebSocket): void {
    session.ws = ws;
    session.state = OPEN;
    (ws as SessionSocket)[SESSION] = session;
    this.#sessions.set(session.id, session);
    this.#node.membership.directory.add(session.service, session.businessId, session.id);
    ws.on('message', this.#onWsMessage);
    ws.on('close', this.#onWsClose);
    ws.on('pong', this.#onWsPong);
    ws.on('error', this.#onWsError);
    const queue = session.queue;
    if (queue !== undefined) {
      session.queue = undefined;
      session.queuedBytes = 0;
      for (const frame of queue) this.#deliver(session, frame);
    }
  }

  #fromClient(session: GatewaySession, data: Buffer, isBinary: boolean): void {
    session.alive = true;
    const link = session.hostLink;
    if (link === undefined || !link.isOpen) {
      session.ws?.close(1012, 'host unavailable; reconnect');
      return;
    }
    try {
      link.send([FrameType.SessionMessage, session.id, data, !isBinary]);
    } catch {
      // The host cannot take more now: this message is dropped, the session stays.
      this.#o.logger.debug({ sessionId: session.id }, 'dropped a client message: the link to its host is full');
    }
  }

  #closed(session: GatewaySession, code: number, reason: string): void {
    if (session.state === CLOSED) return;
    session.state = CLOSED;
    this.#forget(session);
    this.#tellHost(session, code, reason);
  }

  /** Pushes to a businessId reach its sessions from the moment they are bound (queued until open). */
  #index(session: GatewaySession): void {
    let byId = this.#byBusiness.get(session.service);
    if (byId === undefined) this.#byBusiness.set(session.service, (byId = new Map()));
    const group = byId.get(session.businessId);
    if (group === undefined) byId.set(session.businessId, [session]);
    else if (Array.isArray(group)) {
      if (group.length < SMALL_GROUP) group.push(session);
      else byId.set(session.businessId, new Set([...group, session]));
    } else group.add(session);
  }

  #unindex(session: GatewaySession): void {
    const byId = this.#byBusiness.get(session.service);
    const group = byId?.get(session.businessId);
    if (group === undefined) return;
    let empty: boolean;
    if (Array.isArray(group)) {
      const i = group.indexOf(session);
      if (i < 0) return;
      group[i] = group[group.length - 1]!;
      group.length -= 1;
      empty = group.length === 0;
    } else {
      group.delete(session);
      empty = group.size === 0;
    }
    if (empty) byId!.delete(session.businessId);
  }

  #forget(session: GatewaySession): void {
    this.#sessions.delete(session.id);
    this.#unindex(session);
    this.#node.membership.directory.remove(session.service, session.businessId, session.id);
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

  /** Writes one prepared frame to a client. Returns whether it was taken. */
  #deliver(session: GatewaySession, frame: Buffer): boolean {
    if (session.state === OPENING) {
      if (session.queuedBytes + frame.length > this.#o.maxBufferedBytes) return false;
      (session.queue ??= []).push(frame);
      session.queuedBytes += frame.length;
      return true;
    }
    // readyState guards the moment between a close frame and our 'close' event.
    if (session.state !== OPEN || session.ws!.readyState !== 1) return false;
    const socket = session.socket;
    if (session.corkTick !== this.#tick) {
      session.corkTick = this.#tick;
      session.tickBytes = 0;
      socket.cork();
      if (this.#corked.push(socket) === 1) setImmediate(this.#uncork);
    }
    // What earlier ticks wrote and the client has not read yet: the measure of a slow client.
    if (socket.writableLength - session.tickBytes > this.#o.maxBufferedBytes) {
      this.#evictSlow(session);
      return false;
    }
    session.tickBytes += frame.length;
    // Whole frames only, so they never interleave with what ws itself writes (pings, close).
    socket.write(frame);
    return true;
  }

  #uncorkAll(): void {
    const corked = this.#corked;
    this.#corked = [];
    this.#tick += 1;
    for (const socket of corked) socket.uncork();
  }

  /** A client that does not read: close it (1008) so it cannot hold the gateway's memory. */
  #evictSlow(session: GatewaySession): void {
    this.#o.logger.info({ sessionId: session.id, bufferedBytes: session.socket.writableLength }, 'closing a slow WebSocket client');
    session.state = EVICTING;
    // After the current push: it may be iterating the group this session is removed from.
    queueMicrotask(() => {
      this.#closed(session, 1008, 'slow consumer');
      session.ws!.close(1008, `slow consumer: over ${this.#o.maxBufferedBytes} bytes unread`);
    });
  }

  #ack(link: Link, ackId: number, delivered: number): void {
    if (ackId === 0 || !link.isOpen) return;
    try {
      link.send([FrameType.PushAck, ackId, delivered]);
    } catch {
      // The pusher's own timeout settles it.
    }
  }

  /** Delivers a push frame; returns how many sessions it reached. The frame is built once for all of them. */
  #push(frame: PushFrame): number {
    switch (frame[0]) {
      case FrameType.PushSession: {
        const session = this.#sessions.get(frame[2]) ?? this.#pending.get(frame[2])?.session;
        return session !== undefined && this.#deliver(session, dataFrame(frame[3], frame[4])) ? 1 : 0;
      }
      case FrameType.PushBusiness: {
        const group = this.#byBusiness.get(frame[2])?.get(frame[3]);
        if (group === undefined) return 0;
        const wsFrame = dataFrame(frame[4], frame[5]);
        let delivered = 0;
        for (const session of group) if (this.#deliver(session, wsFrame)) delivered += 1;
        return delivered;
      }
      case FrameType.PushService: {
        const byId = this.#byBusiness.get(frame[2]);
        if (byId === undefined) return 0;
        const wsFrame = dataFrame(frame[3], frame[4]);
        let delivered = 0;
        for (const group of byId.values()) for (const session of group) if (this.#deliver(session, wsFrame)) delivered += 1;
        return delivered;
      }
    }
  }

  #onCloseRequest(frame: SessionCloseFrame): void {
    const [, id, requested, rawReason] = frame;
    // The frame comes from another node: a code or reason ws would refuse must not strand the client.
    const code = isSendableCloseCode(requested) ? requested : 1011;
    const reason = closeReason(rawReason);
    const session = this.#sessions.get(id);
    if (session !== undefined) {
      this.#closed(session, code, reason);
      try {
        session.ws?.close(code, reason);
      } catch {
        session.ws?.terminate();
      }
      return;
    }
    if (this.#pending.has(id)) this.#failPending(id, new WeftError('ServiceUnavailable', reason || 'session closed by its host'));
  }

  /** The link to a host closed: its sessions end (1012) so clients reconnect to a live host. */
  #onHostLinkClosed(link: Link): void {
    for (const [id, pending] of this.#pending) {
      if (pending.session.hostLink === link) this.#failPending(id, new WeftError('ServiceUnavailable', 'host went away during the handshake'));
    }
    const lost: GatewaySession[] = [];
    for (const session of this.#sessions.values()) if (session.hostLink === link) lost.push(session);
    if (lost.length === 0) return;
    this.#o.logger.info({ host: link.peerNodeId, sessions: lost.length }, 'host link lost; closing its sessions with 1012');
    for (const session of lost) {
      session.hostLink = undefined;
      this.#closed(session, 1012, 'host went away');
      session.ws?.close(1012, 'host went away; reconnect');
    }
  }

  /** Visits a slice of the sessions each tick, so pings are spread over the interval. */
  #pingSome(): void {
    const total = this.#sessions.size;
    if (total === 0) return;
    const perTick = Math.ceil((total * PING_TICK_MS) / this.#o.pingIntervalMs);
    for (let i = 0; i < perTick; i++) {
      this.#pingCursor ??= this.#sessions.values();
      const next = this.#pingCursor.next();
      if (next.done === true) {
        this.#pingCursor = undefined;
        break;
      }
      const session = next.value;
      if (session.state !== OPEN) continue;
      if (!session.alive) {
        this.#o.logger.debug({ sessionId: session.id }, 'no pong within the ping interval; closing');
        this.#closed(session, 1006, 'no pong');
        session.ws!.terminate();
        continue;
      }
      session.alive = false;
      session.ws!.ping();
    }
  }

  /** Stops new sessions and closes every open one with 1001; resolves when they are closed or the time is up. */
  async drain(timeoutMs: number): Promise<void> {
    this.#draining = true;
    clearInterval(this.#pingTimer);
    for (const id of [...this.#pending.keys()]) this.#failPending(id, new WeftError('Draining', 'gateway is shutting down'));
    const sockets: WebSocket[] = [];
    for (const session of [...this.#sessions.values()]) {
      const ws = session.ws!;
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
