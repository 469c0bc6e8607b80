/**
 * A WebSocket session as its service sees it, on the host it is bound to.
 */
import type { WireHandshake } from '../protocol/frames.js';
import type { PeerLink } from '../transport/peer-link.js';
import type { PushMessage } from '../push/push-client.js';
import type { ClientInput, MessageQueue } from './message-queue.js';
import { metadataJsonOf, DEFAULT_MAX_SESSION_METADATA_BYTES } from './presence.js';

/** What a session needs of its service's SessionManager. */
export interface SessionSender {
  readonly service: string;
  sendTo(message: PushMessage, sessionId: string): Promise<boolean>;
  close(sessionId: string, code?: number, reason?: string): Promise<boolean>;
  join(sessionId: string, room: string): Promise<boolean>;
  leave(sessionId: string, room: string): Promise<boolean>;
}

export interface WsSession {
  readonly id: string;
  readonly businessId: string;
  /** Contract name of the WebSocket service. */
  readonly service: string;
  /** The gateway that holds the client's socket. */
  readonly gatewayNodeId: string;
  /** The handshake headers the gateway passes on (lower-case names): those in its `forwardHeaders`, `x-forwarded-for`, and what its `authenticate` hook returned. */
  readonly headers: Readonly<Record<string, string>>;
  /** Handshake query string. */
  readonly query: Readonly<Record<string, string>>;
  /**
   * The values of the `{param}` segments of the service's route template,
   * by name: `session.params.tenant` for `api/{tenant}/room` reached at
   * `/api/acme/room`. Empty when the template has none.
   */
  readonly params: Readonly<Record<string, string>>;
  readonly remoteAddress: string;
  /**
   * The verified identity: the claims of the token the gateway checked
   * (`auth.jwt`), whose businessId claim is this session's businessId.
   * Undefined when the gateway verifies no tokens. Never taken from headers.
   */
  readonly identity: Readonly<Record<string, unknown>> | undefined;
  readonly openedAt: number;
  /** Yours: anything to keep with the session (the user, a room...). */
  state: unknown;
  /** Sends to this session; resolves true if delivered. */
  send(message: PushMessage): Promise<boolean>;
  /** Closes this session with a close code and reason. */
  close(code?: number, reason?: string): Promise<boolean>;
  /**
   * What `setMetadata` attached (a frozen copy), or undefined.
   *
   * @example
   * const user = (session.metadata as { user?: string } | undefined)?.user;
   */
  readonly metadata: unknown;
  /**
   * Attaches a small JSON object to the session, inside `onOpen` only: it is
   * written with the session's directory entry, so any node sees it in
   * `sessionManager.sessions(businessId)` and in join/leave events. Throws
   * BadRequest when it is not a plain JSON object, when its JSON is over
   * `websocket.maxSessionMetadataBytes` (uncaught in onOpen, the handshake
   * is refused with 400), or after onOpen returned.
   *
   * @example
   * session.setMetadata({ user: 'ann', device: 'ios' });
   */
  setMetadata(metadata: Record<string, unknown>): void;
  /** Puts this session in a room (`sessionManager.join`); in `onOpen` too, before the client sees the handshake. */
  join(room: string): Promise<boolean>;
  /** Takes this session out of a room (`sessionManager.leave`). */
  leave(room: string): Promise<boolean>;
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const inner of Object.values(value)) deepFreeze(inner);
  }
  return value;
}

/** The identity a handshake carries, if it is an object (a gateway of an older version sends none). */
function identityOf(value: unknown): Readonly<Record<string, unknown>> | undefined {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined;
  return deepFreeze(value as Record<string, unknown>);
}

const NO_PARAMS: Readonly<Record<string, string>> = Object.freeze({});

/** The path parameters a handshake carries: string values only (a gateway of an older version sends none). */
function paramsOf(value: unknown): Readonly<Record<string, string>> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return NO_PARAMS;
  const out: Record<string, string> = {};
  for (const [name, v] of Object.entries(value)) if (typeof v === 'string') out[name] = v;
  return Object.freeze(out);
}

export class HostSession implements WsSession {
  readonly id: string;
  readonly businessId: string;
  readonly service: string;
  readonly gatewayNodeId: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly query: Readonly<Record<string, string>>;
  readonly params: Readonly<Record<string, string>>;
  readonly remoteAddress: string;
  readonly identity: Readonly<Record<string, unknown>> | undefined;
  readonly openedAt = Date.now();
  /** Its client messages, run one at a time (set by WebSocketModule once it opened). */
  inbox: MessageQueue<ClientInput> | undefined;
  state: unknown = undefined;
  /** The gateway link the session was opened over; it ends with it. */
  readonly link: PeerLink;
  readonly #manager: SessionSender;
  readonly #maxMetadataBytes: number;
  /** The JSON text setMetadata attached, sent to the gateway with the accept. */
  metadataJson: string | undefined;
  metadata: unknown = undefined;
  /** Set once onOpen returned: setMetadata is refused from then on. */
  metadataSealed = false;

  constructor(
    id: string,
    businessId: string,
    link: PeerLink,
    handshake: WireHandshake,
    manager: SessionSender,
    maxMetadataBytes: number = DEFAULT_MAX_SESSION_METADATA_BYTES,
  ) {
    this.#maxMetadataBytes = maxMetadataBytes;
    this.id = id;
    this.businessId = businessId;
    this.service = manager.service;
    this.gatewayNodeId = link.peerNodeId;
    this.link = link;
    this.headers = handshake.headers;
    this.query = handshake.query;
    this.params = paramsOf(handshake.params);
    this.remoteAddress = handshake.remoteAddress;
    this.identity = identityOf(handshake.identity);
    this.#manager = manager;
  }

  send(message: PushMessage): Promise<boolean> {
    return this.#manager.sendTo(message, this.id);
  }

  close(code = 1000, reason = ''): Promise<boolean> {
    return this.#manager.close(this.id, code, reason);
  }

  setMetadata(metadata: Record<string, unknown>): void {
    const json = metadataJsonOf(metadata, this.#maxMetadataBytes, this.metadataSealed);
    this.metadataJson = json;
    this.metadata = deepFreeze(JSON.parse(json) as unknown);
  }

  /**
   * @example
   * // in onOpen or onMessage
   * await session.join(`chat:${session.query['chat']}`);
   */
  join(room: string): Promise<boolean> {
    return this.#manager.join(this.id, room);
  }

  /**
   * @example
   * await session.leave('lobby');
   */
  leave(room: string): Promise<boolean> {
    return this.#manager.leave(this.id, room);
  }
}
