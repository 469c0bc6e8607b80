/**
 * What a WebSocket service uses to reach its sessions, cluster-wide.
 * Lookups read this host's view of the session directory (no network);
 * sends go as one frame per gateway that holds a target session.
 */
import { WeftError } from '../errors.js';
import { FrameType } from '../protocol/frames.js';
import type { WeftNode } from '../node/node.js';
import type { SessionIndex } from './session-index.js';
import { PushClient, gatewayOfSession, toPayload, type PushMessage } from './push-client.js';
import type { WsSession } from './ws-session.js';

/** One session as the directory knows it. */
export interface SessionInfo {
  sessionId: string;
  businessId: string;
  gatewayNodeId: string;
}

export class SessionManager {
  readonly service: string;
  readonly #node: WeftNode;
  readonly #push: PushClient;
  readonly #bound: ReadonlyMap<string, WsSession>;
  readonly #maxPayloadBytes: number;

  /** @internal built by WebSocketModule */
  constructor(
    service: string,
    node: WeftNode,
    push: PushClient,
    bound: ReadonlyMap<string, WsSession>,
    maxPayloadBytes: number,
  ) {
    this.service = service;
    this.#node = node;
    this.#push = push;
    this.#bound = bound;
    this.#maxPayloadBytes = maxPayloadBytes;
  }

  #payload(message: PushMessage): { bytes: Uint8Array; text: boolean } {
    const payload = toPayload(message);
    if (payload.bytes.length > this.#maxPayloadBytes) {
      throw new WeftError('BadRequest', `push of ${payload.bytes.length} bytes is over the limit of ${this.#maxPayloadBytes}`);
    }
    return payload;
  }

  #index(): SessionIndex {
    return this.#node.membership.directory.index(this.service);
  }

  #live(gatewayNodeId: string): boolean {
    return this.#node.view.has(gatewayNodeId);
  }

  /**
   * Sends to one session, wherever it is. Resolves true if it was delivered.
   *
   * @example
   * await this.sessionManager.sendTo(`message:${msg},sessionId:${id}`, id);
   */
  async sendTo(message: PushMessage, sessionId: string): Promise<boolean> {
    const { bytes, text } = this.#payload(message);
    const gateway = gatewayOfSession(sessionId);
    if (gateway === '') return false;
    const delivered = await this.#push.push([gateway], (ackId) => [FrameType.PushSession, ackId, sessionId, bytes, text]);
    return delivered > 0;
  }

  /**
   * Sends one message to every session of a businessId on every gateway.
   * Resolves with how many sessions it reached (0 when there are none).
   *
   * @example
   * const reached = await this.sessionManager.pushToBusiness('100', 'hello');
   */
  async pushToBusiness(businessId: string, message: PushMessage): Promise<number> {
    const { bytes, text } = this.#payload(message);
    const sessions = this.#index().sessionsOf(businessId);
    if (sessions === undefined) return 0;
    const gateways = new Set(sessions.values());
    return this.#push.push(gateways, (ackId) => [FrameType.PushBusiness, ackId, this.service, businessId, bytes, text]);
  }

  /**
   * Sends one message to every session of this service.
   *
   * @example
   * await this.sessionManager.broadcast(JSON.stringify({ type: 'maintenance', inMinutes: 5 }));
   */
  async broadcast(message: PushMessage): Promise<number> {
    const { bytes, text } = this.#payload(message);
    const gateways = this.#index().gateways();
    return this.#push.push(gateways, (ackId) => [FrameType.PushService, ackId, this.service, bytes, text]);
  }

  /**
   * Closes a session with a WebSocket close code and reason.
   * Resolves true if the gateway holding it was told.
   *
   * @example
   * await this.sessionManager.close(sessionId, 1008, 'token revoked');
   */
  async close(sessionId: string, code = 1000, reason = ''): Promise<boolean> {
    if (!(code === 1000 || (code >= 3000 && code <= 4999) || code === 1008 || code === 1011 || code === 1012 || code === 1013 || code === 1001)) {
      throw new WeftError('BadRequest', `close code ${code} may not be sent; use 1000, 1001, 1008, 1011-1013 or 3000-4999`);
    }
    const gateway = gatewayOfSession(sessionId);
    if (!this.#live(gateway)) return false;
    try {
      const link = await this.#node.peers.connect(gateway);
      link.send([FrameType.SessionClose, sessionId, code, reason.slice(0, 120)]);
      return true;
    } catch {
      return false;
    }
  }

  /** Session ids of a businessId across the cluster (empty when none). */
  async sessionIds(businessId: string): Promise<string[]> {
    const sessions = this.#index().sessionsOf(businessId);
    if (sessions === undefined) return [];
    const ids: string[] = [];
    for (const [id, gateway] of sessions) if (this.#live(gateway)) ids.push(id);
    return ids;
  }

  /** Does a businessId have at least one session anywhere? One lookup, no question to every node. */
  async hasSessions(businessId: string): Promise<boolean> {
    return (await this.sessionIds(businessId)).length > 0;
  }

  /** How many sessions a businessId has, or (no argument) the whole service has. */
  async count(businessId?: string): Promise<number> {
    if (businessId !== undefined) return (await this.sessionIds(businessId)).length;
    return this.#index().size;
  }

  /** Every session of this service across the cluster. */
  async list(): Promise<SessionInfo[]> {
    const index = this.#index();
    const out: SessionInfo[] = [];
    for (const businessId of index.businessIds()) {
      for (const [sessionId, gatewayNodeId] of index.sessionsOf(businessId) ?? []) {
        if (this.#live(gatewayNodeId)) out.push({ sessionId, businessId, gatewayNodeId });
      }
    }
    return out;
  }

  /** A session bound to this host (its hooks run here), if it is. */
  local(sessionId: string): WsSession | undefined {
    return this.#bound.get(sessionId);
  }

  /** Sessions bound to this host. */
  localSessions(): IterableIterator<WsSession> {
    return this.#bound.values();
  }
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
