/**
 * What a WebSocket service uses to reach its sessions, cluster-wide.
 * Lookups ask the session directory once: from memory for the businessIds
 * this host owns, one Redis read for the others; sends go as one frame per
 * gateway that holds a target session.
 */
import { currentContext, type CallContext } from '../rpc/context.js';
import { WeftError } from '../errors.js';
import { FrameType } from '../protocol/frames.js';
import type { BusinessSessions, SessionDirectory } from '../directory/session-directory.js';
import type { HistoryLimits, HistoryStore, Position } from '../history/history-store.js';
import type { LiveNodes } from '../registry/registry.js';
import { closeReason, isSendableCloseCode } from '../protocol/close-codes.js';
import { PushClient, gatewayOfSession, payloadBytes, type PushFrame, type PushMessage } from '../push/push-client.js';
import { ROOM_UNAVAILABLE, roomProblem, roomStream } from '../protocol/room-names.js';
import type { WsSession } from './ws-session.js';
import type { PresenceListener } from '../directory/session-directory.js';
import { sessionDetailsOf, type SessionDetails } from './presence.js';

const RESOLVED_ZERO = Promise.resolve(0);
const RESOLVED_FALSE = Promise.resolve(false);
const isPositive = (n: number): boolean => n > 0;

/**
 * What an async method that threw `error` returns. The pushes below are not
 * async (no extra promise per push), nor are the lookups with nothing to
 * await, but they fail the way an async method does: with a rejection, never
 * a throw. What they can throw is an Error (a WeftError, the directory's
 * Error, a TypeError for an argument of the wrong type), passed on as it is.
 */
function rejected(error: Error): Promise<never> {
  return Promise.reject(error);
}

export interface PushOptions {
  /**
   * `true` (default): resolve with how many sessions the gateways wrote the
   * push to. `false`: send and resolve at once with the number of sessions
   * the directory lists (no round trip, no certainty). `'client'`: resolve
   * with how many `weft/client` sessions confirmed they received it within
   * `receiptTimeoutMs` (plain WebSocket clients cannot confirm and are not
   * counted).
   */
  ack?: boolean | 'client';
  /** With `ack: 'client'`: how long to wait for receipts. Default 5000 ms. */
  receiptTimeoutMs?: number;
}

/** With `ack: 'client'`, how long gateways wait for receipts unless told. */
export const DEFAULT_RECEIPT_TIMEOUT_MS = 5_000;

/** The sessions of one service bound to this host. */
export interface BoundSessions {
  get(sessionId: string): WsSession | undefined;
  values(): Iterable<WsSession>;
}

/** What a SessionManager is built from (by WebSocketModule). */
export interface SessionManagerDeps {
  push: PushClient;
  /**
   * Where pushes to a businessId are kept, and how many: undefined when the
   * service keeps none; a WeftError when it cannot be told now (a process
   * that does not host the service and sees no host of it).
   */
  history: () => { store: HistoryStore; limits: HistoryLimits } | undefined | WeftError;
  directory: SessionDirectory;
  liveNodes: LiveNodes;
  bound: BoundSessions;
  maxPayloadBytes: number;
}

/** One session as the directory knows it. */
export interface SessionInfo {
  sessionId: string;
  businessId: string;
  gatewayNodeId: string;
}

export class SessionManager {
  readonly service: string;
  readonly #push: PushClient;
  readonly #history: SessionManagerDeps['history'];
  readonly #directory: SessionDirectory;
  readonly #live: LiveNodes;
  readonly #bound: BoundSessions;
  readonly #maxPayloadBytes: number;

  /** @internal built by WebSocketModule */
  constructor(service: string, deps: SessionManagerDeps) {
    this.service = service;
    this.#push = deps.push;
    this.#history = deps.history;
    this.#directory = deps.directory;
    this.#live = deps.liveNodes;
    this.#bound = deps.bound;
    this.#maxPayloadBytes = deps.maxPayloadBytes;
  }

  #payload(message: PushMessage): Uint8Array {
    const bytes = payloadBytes(message);
    if (bytes.length > this.#maxPayloadBytes) {
      throw new WeftError('BadRequest', `push of ${bytes.length} bytes is over the limit of ${this.#maxPayloadBytes}`);
    }
    return bytes;
  }

  readonly #isLive = (gatewayNodeId: string): boolean => this.#live.isLive(gatewayNodeId);

  /** Session ids of `found` whose gateway is live. */
  #liveIds(found: BusinessSessions): string[] {
    const out: string[] = [];
    for (const [sessionId, gateway] of found) if (this.#isLive(gateway)) out.push(sessionId);
    return out;
  }

  /**
   * Sends to one session, wherever it is. Resolves true if it was delivered.
   *
   * @example
   * const delivered = await this.sessionManager.sendTo(JSON.stringify({ type: 'welcome' }), sessionId);
   */
  sendTo(message: PushMessage, sessionId: string): Promise<boolean> {
    try {
      const bytes = this.#payload(message);
      const gateway = gatewayOfSession(sessionId);
      if (gateway === '') return RESOLVED_FALSE;
      return this.#push.push([gateway], [FrameType.PushSession, 0, sessionId, bytes, typeof message === 'string', '']).then(isPositive);
    } catch (e) {
      return rejected(e as Error);
    }
  }

  /**
   * Sends one message to every session of a businessId on every gateway:
   * the message is encoded once and goes as one frame per gateway.
   * Resolves with how many sessions it reached (0 when there are none).
   *
   * When the service keeps history (the default), the push is first kept
   * with its position, so clients that are away now get it when they
   * resume; if the history cannot be written the push is not sent and the
   * promise rejects with ServiceUnavailable.
   *
   * @example
   * const reached = await this.sessionManager.pushToBusiness('100', 'hello');
   */
  pushToBusiness(businessId: string, message: PushMessage, options?: PushOptions): Promise<number> {
    try {
      const bytes = this.#payload(message);
      const text = typeof message === 'string';
      const receiptTimeoutMs = receiptTimeoutOf(options);
      const history = this.#history();
      if (history instanceof WeftError) return rejected(history);
      if (history === undefined) return this.#sendToBusiness(businessId, bytes, text, undefined, options?.ack, receiptTimeoutMs);
      return history.store.append(this.service, businessId, bytes, text, history.limits, dedupeKeyOfCall()).then(
        // The directory is read after the push is kept: a session it does not list yet reads
        // the history after it was listed, so it gets the push from one or the other.
        (position) => this.#sendToBusiness(businessId, bytes, text, position, options?.ack, receiptTimeoutMs),
        (e: unknown) => {
          throw new WeftError('ServiceUnavailable', `push not sent: its history could not be kept (${(e as Error).message})`);
        },
      );
    } catch (e) {
      return rejected(e as Error);
    }
  }

  #sendToBusiness(
    businessId: string,
    bytes: Uint8Array,
    text: boolean,
    position: Position | undefined,
    ack: PushOptions['ack'],
    receiptTimeoutMs: number,
  ): Promise<number> {
    const frame: PushFrame = [
      FrameType.PushBusiness,
      0,
      this.service,
      businessId,
      bytes,
      text,
      position?.epoch ?? '',
      position?.offset ?? 0,
      ack === 'client' ? receiptTimeoutMs : 0,
      '',
    ];
    const found = this.#directory.sessionsOf(this.service, businessId);
    // At once when this host keeps the businessId's shard; else after one read of Redis.
    if (found instanceof Promise) return found.then((f) => this.#sendFrame(f, frame, ack, receiptTimeoutMs));
    return this.#sendFrame(found, frame, ack, receiptTimeoutMs);
  }

  /** Sends `frame` to each gateway holding one of `found`. */
  #sendFrame(found: BusinessSessions, frame: PushFrame, ack: PushOptions['ack'], receiptTimeoutMs: number): Promise<number> {
    const gateways: string[] = [];
    for (const [, gateway] of found) if (!gateways.includes(gateway)) gateways.push(gateway);
    if (gateways.length === 0) return RESOLVED_ZERO;
    if (ack === false) {
      this.#push.pushUnacknowledged(gateways, frame);
      return Promise.resolve(this.#liveIds(found).length);
    }
    return this.#push.push(gateways, frame, ack === 'client' ? receiptTimeoutMs : 0);
  }

  /**
   * Sends one message to every session of this service.
   *
   * @example
   * await this.sessionManager.broadcast(JSON.stringify({ type: 'maintenance', inMinutes: 5 }));
   */
  broadcast(message: PushMessage): Promise<number> {
    try {
      const bytes = this.#payload(message);
      return this.#directory
        .gateways(this.service)
        .then((gateways) => this.#push.push(gateways, [FrameType.PushService, 0, this.service, bytes, typeof message === 'string', '']));
    } catch (e) {
      return rejected(e as Error);
    }
  }

  /**
   * Closes a session with a WebSocket close code and reason.
   * Resolves true if the gateway holding it was told.
   *
   * @example
   * await this.sessionManager.close(sessionId, 1008, 'token revoked');
   */
  async close(sessionId: string, code = 1000, reason = ''): Promise<boolean> {
    if (!isSendableCloseCode(code)) {
      throw new WeftError('BadRequest', `close code ${code} may not be sent; use 1000, 1001, 1008, 1011-1013 or 3000-4999`);
    }
    return this.#push.closeSession(sessionId, code, closeReason(reason));
  }

  /**
   * Closes every session of a businessId, on every gateway (revoking a
   * business's access, a user logged out everywhere). Resolves with how many
   * sessions their gateways were asked to close.
   *
   * @example
   * await this.sessionManager.closeBusiness('acme', 4003, 'access revoked');
   */
  async closeBusiness(businessId: string, code = 1000, reason = ''): Promise<number> {
    if (!isSendableCloseCode(code)) {
      throw new WeftError('BadRequest', `close code ${code} may not be sent; use 1000, 1001, 1008, 1011-1013 or 3000-4999`);
    }
    const ids = await this.sessionIds(businessId);
    const told = await Promise.all(ids.map((id) => this.#push.closeSession(id, code, closeReason(reason))));
    return told.filter(Boolean).length;
  }

  /**
   * Session ids of a businessId across the cluster (empty when none).
   *
   * @example
   * const ids = await this.sessionManager.sessionIds(businessId);
   */
  sessionIds(businessId: string): Promise<string[]> {
    try {
      const found = this.#directory.sessionsOf(this.service, businessId);
      return found instanceof Promise ? found.then((f) => this.#liveIds(f)) : Promise.resolve(this.#liveIds(found));
    } catch (e) {
      return rejected(e as Error);
    }
  }

  /**
   * Does a businessId have at least one session anywhere? One lookup, no question to every node.
   *
   * @example
   * if (!(await this.sessionManager.hasSessions(businessId))) throw new BusinessException(`no session exists for businessId ${businessId}`);
   */
  async hasSessions(businessId: string): Promise<boolean> {
    return (await this.sessionIds(businessId)).length > 0;
  }

  /**
   * How many sessions a businessId has, or (no argument) the whole service has.
   *
   * @example
   * console.log(await this.sessionManager.count(businessId), 'of', await this.sessionManager.count());
   */
  async count(businessId?: string): Promise<number> {
    if (businessId !== undefined) return (await this.sessionIds(businessId)).length;
    return this.#directory.size(this.service);
  }

  /**
   * Every session of this service across the cluster.
   *
   * @example
   * for (const { sessionId, businessId, gatewayNodeId } of await this.sessionManager.list()) console.log(sessionId, businessId, gatewayNodeId);
   */
  async list(): Promise<SessionInfo[]> {
    const out: SessionInfo[] = [];
    for (const [sessionId, businessId, gatewayNodeId] of await this.#directory.entries(this.service)) {
      if (this.#isLive(gatewayNodeId)) out.push({ sessionId, businessId, gatewayNodeId });
    }
    return out;
  }

  // Rooms (docs/delivery.md, "Rooms"): the gateway that holds a session keeps its rooms.

  /**
   * Puts a session in a room, wherever the session is: its gateway adds it
   * and, for the room's first member there, records the room in the
   * directory before answering, so a `pushToRoom` made once this resolved,
   * from any node, reaches it. Resolves true when the session is in the room
   * (it was already, or is now), false when no gateway holds that session.
   * Rejects with BadRequest for a bad room name, one longer than the
   * gateway's `websocket.maxRoomNameLength`, or a session already in
   * `websocket.maxRoomsPerSession` rooms.
   *
   * @example
   * await this.sessionManager.join(sessionId, 'lobby');
   * await this.sessionManager.pushToRoom('lobby', 'someone joined');
   */
  async join(sessionId: string, room: string): Promise<boolean> {
    checkRoom(room);
    const gateway = gatewayOfSession(sessionId);
    if (gateway === '') return false;
    const answer = await this.#push.rooms.ask(gateway, [FrameType.RoomJoin, 0, sessionId, room]);
    if (answer.result < 0) throw new WeftError(answer.result === ROOM_UNAVAILABLE ? 'ServiceUnavailable' : 'BadRequest', answer.error);
    return answer.result > 0;
  }

  /**
   * Takes a session out of a room. Resolves true if it was in it.
   *
   * @example
   * if (await this.sessionManager.leave(sessionId, 'lobby')) await this.sessionManager.pushToRoom('lobby', 'someone left');
   */
  async leave(sessionId: string, room: string): Promise<boolean> {
    checkRoom(room);
    const gateway = gatewayOfSession(sessionId);
    if (gateway === '') return false;
    return (await this.#push.rooms.ask(gateway, [FrameType.RoomLeave, 0, sessionId, room])).result > 0;
  }

  /**
   * Sends one message to every member of a room, on every gateway: one
   * frame per gateway that holds members, none to the others. Resolves with
   * how many sessions it was written to, as `pushToBusiness` does.
   *
   * When the service keeps history, the push is first kept in the room's
   * stream (its own, never a businessId's) with its position, so weft/client
   * sessions that rejoin the room after a reconnect get what they missed;
   * if it cannot be kept the push is not sent and the promise rejects with
   * ServiceUnavailable. `ack: false` sends without waiting and resolves
   * with 0 (the directory knows a room's gateways, not its members);
   * `ack: 'client'` is not supported for rooms (BadRequest).
   *
   * @example
   * const reached = await this.sessionManager.pushToRoom('lobby', JSON.stringify({ from: 'ann', text: 'hi' }));
   */
  pushToRoom(room: string, message: PushMessage, options?: PushOptions): Promise<number> {
    try {
      checkRoom(room);
      const bytes = this.#payload(message);
      const text = typeof message === 'string';
      if (options?.ack === 'client') throw new WeftError('BadRequest', "ack: 'client' is not supported for room pushes; use true or false");
      const history = this.#history();
      if (history instanceof WeftError) return rejected(history);
      if (history === undefined) return this.#sendToRoom(room, bytes, text, undefined, options?.ack);
      return history.store.append(roomStream(this.service), room, bytes, text, history.limits, dedupeKeyOfCall()).then(
        // As for a businessId: the room's gateways are read after the push is kept.
        (position) => this.#sendToRoom(room, bytes, text, position, options?.ack),
        (e: unknown) => {
          throw new WeftError('ServiceUnavailable', `push not sent: its history could not be kept (${(e as Error).message})`);
        },
      );
    } catch (e) {
      return rejected(e as Error);
    }
  }

  async #sendToRoom(room: string, bytes: Uint8Array, text: boolean, position: Position | undefined, ack: PushOptions['ack']): Promise<number> {
    const frame: PushFrame = [FrameType.PushRoom, 0, this.service, room, bytes, text, position?.epoch ?? '', position?.offset ?? 0, ''];
    const gateways = await this.#roomGateways(room);
    if (gateways.length === 0) return 0;
    if (ack === false) {
      this.#push.pushUnacknowledged(gateways, frame);
      return 0;
    }
    return this.#push.push(gateways, frame);
  }

  /** The live gateways holding members of a room (none with a directory that keeps no rooms). */
  async #roomGateways(room: string): Promise<string[]> {
    return ((await this.#directory.roomGateways?.(this.service, room)) ?? []).filter(this.#isLive);
  }

  /**
   * How many sessions are in a room, cluster-wide: one directory read, then
   * one question to each gateway that holds members.
   *
   * @example
   * console.log(await this.sessionManager.roomSize('lobby'), 'in the lobby');
   */
  async roomSize(room: string): Promise<number> {
    checkRoom(room);
    const gateways = await this.#roomGateways(room);
    const answers = await Promise.all(gateways.map((g) => this.#push.rooms.ask(g, [FrameType.RoomSize, 0, this.service, room])));
    return answers.reduce((sum, a) => sum + Math.max(0, a.result), 0);
  }

  /**
   * A session bound to this host (its hooks run here), if it is.
   *
   * @example
   * const session = this.sessionManager.local(sessionId);
   * if (session !== undefined) session.state = { room: session.query['room'] };
   */
  local(sessionId: string): WsSession | undefined {
    return this.#bound.get(sessionId);
  }

  /**
   * Sessions bound to this host (those of a service with hooks).
   *
   * @example
   * for (const session of this.sessionManager.localSessions()) if (Date.now() - session.openedAt > 3_600_000) await session.close(4000, 'an hour');
   */
  localSessions(): Iterable<WsSession> {
    return this.#bound.values();
  }

  // Presence (docs/presence.md): each call is one directory lookup, never a question to every node.

  /**
   * Is a businessId online: does it have at least one session on a live
   * gateway, anywhere in the cluster? One lookup.
   *
   * @example
   * if (!(await this.sessionManager.isOnline(businessId))) console.log(businessId, 'is offline: send an e-mail instead');
   */
  isOnline(businessId: string): Promise<boolean> {
    return this.sessionIds(businessId).then((ids) => ids.length > 0);
  }

  /**
   * The sessions of a businessId, cluster-wide, with when each opened and
   * the metadata its host attached in onOpen (`session.setMetadata`). One
   * lookup (in Redis mode one script in the businessId's directory shard).
   * Lists what the gateways wrote: a session lists here within a tick of
   * its handshake.
   *
   * @example
   * for (const { sessionId, gatewayNodeId, openedAt, metadata } of await this.sessionManager.sessions(businessId)) {
   *   console.log(sessionId, gatewayNodeId, new Date(openedAt).toISOString(), metadata);
   * }
   */
  async sessions(businessId: string): Promise<SessionDetails[]> {
    const describe = this.#directory.describe?.bind(this.#directory);
    if (describe === undefined) {
      // A directory backend that keeps no records: where the sessions are, without them.
      const found = await this.#directory.sessionsOf(this.service, businessId);
      return sessionDetailsOf(
        businessId,
        found.map(([sessionId, gateway]) => [sessionId, gateway, 0, undefined] as const),
        this.#isLive,
      );
    }
    return sessionDetailsOf(businessId, await describe(this.service, businessId), this.#isLive);
  }

  /**
   * Closes every session of a businessId, on every gateway, with a close
   * code and reason the clients see; resolves with how many sessions their
   * gateways were told to close. One lookup, then one frame per session to
   * the gateway that holds it. The same as `closeBusiness`.
   *
   * @example
   * const told = await this.sessionManager.disconnect(businessId, 4003, 'logged out everywhere');
   */
  disconnect(businessId: string, code = 1000, reason = ''): Promise<number> {
    return this.closeBusiness(businessId, code, reason);
  }

  /**
   * Calls `listener` with this service's presence events from the whole
   * cluster: `join` and `leave` of each session (with its metadata), and
   * `online` / `offline` when a businessId's first session opens or its last
   * closes. Resolves once subscribed, with the function that unsubscribes.
   * Events are at most once: one lost (a Redis blip, a subscriber that
   * reconnected) is not sent again, so a listener that needs the truth
   * reads `sessions(businessId)`.
   *
   * @example
   * const stop = await this.sessionManager.onPresence((event) => {
   *   if (event.type === 'join') console.log(event.businessId, 'joined from', event.gatewayNodeId, event.metadata);
   *   if (event.type === 'offline') console.log(event.businessId, 'is offline');
   * });
   * stop();
   */
  onPresence(listener: PresenceListener): Promise<() => void> {
    if (typeof listener !== 'function') return rejected(new WeftError('BadRequest', 'onPresence needs a listener function'));
    const onPresence = this.#directory.onPresence?.bind(this.#directory);
    // A directory backend without events: nothing will come.
    if (onPresence === undefined) return Promise.resolve(() => undefined);
    return onPresence(this.service, listener);
  }
}

/** Pushes made so far by each call being served, for their dedupe keys. */
const pushesOfCall = new WeakMap<CallContext, number>();

/**
 * The key a push made inside a call is kept under: the call's key (the same
 * on every attempt, on any host) and the push's place among the call's
 * pushes. A method run again after a failover makes the same pushes in the
 * same order, so each is kept once. Undefined outside a call.
 */
function dedupeKeyOfCall(): string | undefined {
  const ctx = currentContext();
  if (ctx?.callKey === undefined) return undefined;
  const n = (pushesOfCall.get(ctx) ?? 0) + 1;
  pushesOfCall.set(ctx, n);
  return `${ctx.callKey}.${n}`;
}

/** A room name any gateway could take (each gateway holds to its own `websocket.maxRoomNameLength`); BadRequest otherwise. */
function checkRoom(room: string): void {
  const problem = roomProblem(room);
  if (problem !== undefined) throw new WeftError('BadRequest', problem);
}

function receiptTimeoutOf(options: PushOptions | undefined): number {
  const ms = options?.receiptTimeoutMs;
  if (ms === undefined) return DEFAULT_RECEIPT_TIMEOUT_MS;
  if (typeof ms !== 'number' || !Number.isFinite(ms) || ms <= 0 || ms > 600_000) {
    throw new WeftError('BadRequest', 'receiptTimeoutMs must be a number of ms above 0 and at most 600000');
  }
  return Math.ceil(ms);
}

/**
 * The seed's `BusinessSessionIds`, honest about the cluster: every lookup is
 * async because in general it could cross the network.
 *
 * @example
 * const ids = await this.businessSessionIds.get(businessId);
 */
export class BusinessSessionIds {
  readonly #manager: SessionManager;

  /** @internal built by WebSocketModule */
  constructor(manager: SessionManager) {
    this.#manager = manager;
  }

  /** Session ids of `businessId`; empty when it has none. */
  get(businessId: string): Promise<string[]> {
    return this.#manager.sessionIds(businessId);
  }

  has(businessId: string): Promise<boolean> {
    return this.#manager.hasSessions(businessId);
  }

  count(businessId: string): Promise<number> {
    return this.#manager.count(businessId);
  }
}
