/**
 * A small client for weft sessions, for browsers and Node: connects with a
 * businessId and reconnects with backoff when the session ends for a reason
 * worth retrying (gateway draining 1001, host gone 1011/1012, overload 1013,
 * a dropped connection 1006). It does not reconnect after a normal close
 * (1000), a policy close (1008: slow consumer, revoked) or your `close()`.
 *
 * With `getToken`, it asks for a token before each connect and reconnect
 * and sends it as the `token` query parameter (browsers cannot set headers
 * on a WebSocket); a session closed because its token expired (4001) is
 * reconnected with a fresh one. The businessId may then be left out: the
 * gateway takes the token's.
 *
 * A refused handshake (401, 403, 503...) reaches a browser as close 1006
 * with no status, so it is retried like a dropped connection; `maxRetries`
 * bounds how many attempts in a row may fail before the client gives up.
 *
 * It speaks the `weft.v1` subprotocol (docs/protocol.md) when the gateway
 * does: every push then carries its position, and on each reconnect the
 * client asks for what it missed since the last one it got (`since`), on
 * whatever gateway it lands. The gateway replays what its history still
 * holds, in order, then live pushes follow; a push the client already has
 * is dropped by position, so the application sees each push once. When the
 * history no longer covers the gap, `onOpen` says `recovered: false` with
 * the reason and the application reloads its state. With `getToken`, a
 * fresh token is sent in-band before the current one expires. A gateway
 * that does not speak weft.v1 gets a bare session, as before.
 *
 * Typed by a contract (`connectSession<typeof IShopAppService>`, a type
 * only), `on(name, handler)` gets the contract's named pushes with their
 * payload parsed, and `call(name, params)` sends one of its messages and
 * resolves with the handler's return value (weft.v1 request and reply, with
 * `callTimeoutMs`), or rejects with a CallError carrying the error's code.
 *
 * The delay doubles with each close and starts again from `initialDelayMs`
 * only after a connection stayed open for `healthyAfterMs`: a server that
 * accepts and closes at once (1013 when overloaded) is retried ever more
 * slowly, not every `initialDelayMs`.
 *
 * @example
 * import { connectSession } from 'weft/client';
 * const session = connectSession('ws://127.0.0.1:5000/api/wstest', {
 *   businessId: '100',
 *   onMessage: (data, info) => console.log(data, info.position),
 *   onOpen: (info) => { if (info.resumed && !info.recovered) console.log('reload state:', info.reason); },
 * });
 * // later: session.close();
 *
 * @example
 * // A gateway with auth.jwt: a fresh token for each connect.
 * connectSession('wss://example.com/api/wstest', {
 *   getToken: async () => (await fetch('/my/token')).text(),
 *   onMessage: (data) => console.log(data),
 * });
 *
 * @module
 */
import { Backoff } from '../util/backoff.js';
import {
  MAX_REQUEST_ID,
  WEFT_V1,
  decodePush,
  encodeClientMessage,
  parseNamedPush,
  type ClientControl,
  type ServerControl,
  type WirePosition,
  type WireReplyError,
} from '../protocol/weft-v1.js';

/** The part of the WebSocket API the client uses (browser WebSocket or `ws`). */
export interface WebSocketLike {
  readonly readyState: number;
  /** The subprotocol the server chose ('' for none). */
  readonly protocol: string;
  binaryType: string;
  onopen: ((ev: unknown) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
  onclose: ((ev: { code: number; reason: string }) => void) | null;
  onerror: ((ev: unknown) => void) | null;
  send(data: string | ArrayBufferLike | ArrayBufferView): void;
  close(code?: number, reason?: string): void;
}

/**
 * A WebSocket class: the browser's, Node 22's, or `ws`'s on Node 20 (no
 * cast needed). Only the members of WebSocketLike are used.
 */
export type WebSocketConstructor = abstract new (url: string, protocols?: string | string[], options?: never) => object;

/** Where a push stands in its businessId's stream; pass it as `since` to resume from it. */
export interface Position {
  readonly epoch: string;
  readonly offset: number;
}

/** What comes with each message. */
export interface MessageInfo {
  /** The push's position; undefined for a push that has none (to one session, to the whole service, or without history). */
  position: Position | undefined;
  /** The room of a room push (`pushToRoom`): its position is in that room's stream. Undefined for other pushes. */
  room?: string;
}

/** What `onRoom` is told when the service puts the session in a room or takes it out (weft.v1). */
export interface RoomInfo {
  room: string;
  joined: boolean;
  /** Where the room's stream stands for this client (null: the service keeps no history, or it could not be read). */
  position: Position | null;
  /** The client had a position for the room and everything after it was replayed. */
  recovered: boolean;
  /** Why not, when it had a position: 'window-passed', 'epoch-changed', 'no-history', 'history-unavailable'. */
  reason: string | undefined;
  replayed: number;
}

/** What `onOpen` is told of each connection. */
export interface OpenInfo {
  sessionId: string | undefined;
  /** The client asked for what it missed (it had a position). */
  resumed: boolean;
  /** Everything it missed was replayed. When `resumed` and not `recovered`, reload the application's state. */
  recovered: boolean;
  /** Why not: 'window-passed', 'epoch-changed', 'no-history', 'history-unavailable'; or, without weft.v1, 'not-supported'. */
  reason: string | undefined;
  /** How many pushes were replayed. */
  replayed: number;
}

export interface SessionOptions {
  /** The businessId to connect as. Required without `getToken`; with it, the gateway may take the token's. */
  businessId?: string;
  /**
   * Called before each connect and reconnect; its token goes in the `token`
   * query parameter. On a gateway that speaks weft.v1 it is called again
   * before the token expires, and the fresh token is sent in-band. A throw
   * or rejection counts as an attempt that failed (retried with backoff,
   * bounded by `maxRetries`).
   */
  getToken?: () => string | Promise<string>;
  /** getToken failed (the client retries with backoff), or the gateway refused a fresh token. */
  onTokenError?: (error: unknown) => void;
  /** WebSocket implementation; default the global one (browsers, Node 22+). Pass `ws`'s on Node 20. */
  WebSocket?: WebSocketConstructor;
  /** Resume from this position (stored from `session.position` or a push's `info.position`) on the first connect. */
  since?: Position;
  /** Resume these rooms from these positions (stored from `session.rooms`) when the service joins the session to them again. */
  roomSince?: Readonly<Record<string, Position>>;
  /** The service put the session in a room or took it out (weft.v1); replayed room pushes follow a join. */
  onRoom?: (info: RoomInfo) => void;
  /** A text push arrives as a string, a binary one as a Uint8Array (a bare session: as the platform gives it). */
  onMessage?: (data: unknown, info: MessageInfo) => void;
  onOpen?: (info: OpenInfo) => void;
  /** Every close, with whether the client will reconnect. */
  onClose?: (code: number, reason: string, willReconnect: boolean) => void;
  /**
   * A connection failed or a control message was refused: `status` is the
   * HTTP status of a refused handshake where the platform tells it (Node's
   * `ws` does; browsers say nothing, and the close is 1006).
   */
  onError?: (error: ClientError) => void;
  /**
   * Passed to the WebSocket constructor as its third argument: `ws`'s options
   * on Node (`headers`, `localAddress`, `agent`, TLS settings...). Browsers
   * take none.
   */
  socketOptions?: Record<string, unknown>;
  /** Backoff between attempts: from initialDelayMs doubling to maxDelayMs, with jitter. Defaults 250 ms and 10 s. */
  initialDelayMs?: number;
  maxDelayMs?: number;
  /** How long a connection must stay open for the next reconnect to wait initialDelayMs again. Default 5 s. */
  healthyAfterMs?: number;
  /** Attempts in a row that may end without ever opening before the client gives up. Default unlimited. */
  maxRetries?: number;
  /** How long `call` waits for its reply before it rejects with code Timeout, unless the call says. Default 10000 ms. */
  callTimeoutMs?: number;
}

/** A schema as the client sees it: TypeBox schemas carry their static type (no import of the server's code). */
interface SchemaLike {
  readonly static: unknown;
}

/**
 * What the client reads of a service contract (`typeof IMyService`, a
 * contract from `defineContract`): the names and payload types of its
 * pushes and messages. Types only: nothing of it is needed at run time, so
 * `import type` the contract.
 */
export interface ClientContract {
  readonly pushes: { readonly [name: string]: SchemaLike };
  readonly messages: { readonly [name: string]: { readonly params?: SchemaLike; readonly returns?: SchemaLike } };
}

/** A session typed by no contract: any push or message name, payloads unknown. */
export interface UntypedContract extends ClientContract {
  readonly pushes: { readonly [name: string]: { readonly static: unknown } };
  readonly messages: { readonly [name: string]: { readonly params: { readonly static: unknown }; readonly returns: { readonly static: unknown } } };
}

type StaticOf<S> = S extends { readonly static: infer T } ? T : unknown;

/** The names of a contract's pushes. */
export type ClientPushName<C extends ClientContract> = keyof C['pushes'] & string;
/** The payload of push `K`. */
export type ClientPushData<C extends ClientContract, K extends ClientPushName<C>> = StaticOf<C['pushes'][K]>;
/** The names of a contract's messages. */
export type ClientMessageName<C extends ClientContract> = keyof C['messages'] & string;
/** The params of message `K` (undefined when it takes none). */
export type CallParams<C extends ClientContract, K extends ClientMessageName<C>> = C['messages'][K] extends {
  readonly params: infer P extends SchemaLike;
}
  ? StaticOf<P>
  : undefined;
/** What `call` of message `K` resolves to: its handler's return value (null when it declares no `returns`). */
export type CallResult<C extends ClientContract, K extends ClientMessageName<C>> = C['messages'][K] extends {
  readonly returns: infer R extends SchemaLike;
}
  ? StaticOf<R>
  : null;

export interface ClientCallOptions {
  /** How long to wait for the reply; default the session's `callTimeoutMs`. */
  timeoutMs?: number;
}

/** The arguments of `call` after the name: the params (optional when the message takes none), then options. */
export type CallArgs<C extends ClientContract, K extends ClientMessageName<C>> =
  undefined extends CallParams<C, K>
    ? [params?: CallParams<C, K>, options?: ClientCallOptions]
    : [params: CallParams<C, K>, options?: ClientCallOptions];

/**
 * Why a `call` failed: `code` is weft's error code (docs/errors.md), as the
 * service gave it (BusinessError, ValidateError with `validErrors`...) or
 * as the client found it: Timeout (no reply in time), OutcomeUnknown (the
 * session closed while the call waited: it may or may not have run),
 * CommunicationError (not connected: nothing was sent), NotImplemented (the
 * gateway does not speak weft.v1).
 *
 * @example
 * const session = connectSession<typeof IShopAppService>('ws://127.0.0.1:5000/api/shop', { businessId: '100' });
 * session.call('typing', { room: 'a' }).catch((e: unknown) => {
 *   if (e instanceof CallError && e.code === 'Timeout') console.log('no reply in time');
 * });
 */
export class CallError extends Error {
  readonly code: string;
  readonly data: unknown;
  readonly validErrors: { memberNames: string[]; errorMessage: string }[] | undefined;

  constructor(code: string, message: string, details: { data?: unknown; validErrors?: { memberNames: string[]; errorMessage: string }[] } = {}) {
    super(message);
    this.name = code;
    this.code = code;
    this.data = details.data;
    this.validErrors = details.validErrors;
  }
}

/**
 * Is `error` a CallError (of that code, when given)?
 *
 * @example
 * const session = connectSession('ws://127.0.0.1:5000/api/shop', { businessId: '100' });
 * try {
 *   await session.call('typing', { room: 'a' });
 * } catch (e) {
 *   if (isCallError(e, 'ValidateError')) console.log(e.validErrors);
 * }
 */
export function isCallError(error: unknown, code?: string): error is CallError {
  return error instanceof CallError && (code === undefined || error.code === code);
}

const DEFAULT_CALL_TIMEOUT_MS = 10_000;

/** What `onError` is told. */
export interface ClientError {
  message: string;
  /** The HTTP status of a refused handshake, when known. */
  status?: number;
  /** The weft error code, for a refused control message. */
  code?: string;
}

export interface ClientSession<C extends ClientContract = UntypedContract> {
  /** True while connected. */
  readonly isOpen: boolean;
  /** The position of the last push received (what the next reconnect resumes from). */
  readonly position: Position | undefined;
  /**
   * Per room the session is in, the position of the last room push received:
   * sent on each reconnect, so a room the service joins the session to again
   * resumes from it (store it to resume later with `roomSince`).
   */
  readonly rooms: Readonly<Record<string, Position>>;
  /**
   * Sends when connected; returns false otherwise (nothing is queued).
   *
   * @example
   * const session = connectSession('ws://127.0.0.1:5000/api/wstest', { businessId: '100' });
   * if (!session.send(JSON.stringify({ type: 'typing' }))) console.log('offline: not sent');
   */
  send(data: string | ArrayBufferLike | ArrayBufferView): boolean;
  /**
   * Drops the current connection and connects again after `afterMs`
   * (default 0), resuming from `position`: what a network drop does, on
   * purpose (moving to another network, a demo of resume).
   *
   * @example
   * const session = connectSession('ws://127.0.0.1:5000/api/wstest', { businessId: '100' });
   * window.addEventListener('online', () => session.reconnect());
   */
  reconnect(afterMs?: number): void;
  /**
   * Closes for good (1000).
   *
   * @example
   * const session = connectSession('ws://127.0.0.1:5000/api/wstest', { businessId: '100' });
   * window.addEventListener('pagehide', () => session.close());
   */
  close(): void;
  /**
   * Handles the named push `name` (a contract's `pushes`), with its payload
   * parsed. A named push with a handler does not reach `onMessage`; one
   * without does, as its JSON text. Returns a function that removes the handler.
   *
   * @example
   * const session = connectSession<typeof IShopAppService>('ws://127.0.0.1:5000/api/shop', { businessId: '100' });
   * const off = session.on('orderShipped', (order, info) => console.log(order.orderId, info.position));
   * // later: off();
   */
  on<K extends ClientPushName<C>>(name: K, handler: (data: ClientPushData<C, K>, info: MessageInfo) => void): () => void;
  /**
   * Sends message `name` (a contract's `messages`) and resolves with its
   * handler's return value; rejects with a CallError carrying the code
   * (weft.v1 only). Calls of one session run in the order they were made.
   *
   * @example
   * const session = connectSession<typeof IShopAppService>('ws://127.0.0.1:5000/api/shop', { businessId: '100' });
   * const { seen } = await session.call('typing', { room: 'general' }, { timeoutMs: 3000 });
   */
  call<K extends ClientMessageName<C>>(name: K, ...args: CallArgs<C, K>): Promise<CallResult<C, K>>;
}

const RETRY_CODES = new Set([1001, 1005, 1006, 1011, 1012, 1013, 4002]);
const OPEN = 1;

/** The gateway closed the session because its token expired (weft's protocol/close-codes.ts). */
export const TOKEN_EXPIRED_CLOSE_CODE = 4001;

/**
 * Close codes after which the client reconnects; 4001 (token expired) only when it can get a fresh token.
 *
 * @example
 * shouldReconnect(1006); // true: the connection dropped
 * shouldReconnect(1008); // false: a policy close (slow consumer, revoked)
 * shouldReconnect(4001, true); // true: the token expired and getToken can give a fresh one
 */
export function shouldReconnect(code: number, canRefreshToken = false): boolean {
  return RETRY_CODES.has(code) || (canRefreshToken && code === TOKEN_EXPIRED_CLOSE_CODE);
}

/** A fresh token is asked for when this share of its remaining life has passed. */
const REFRESH_AT_SHARE = 0.8;

const decoder = new TextDecoder();

function bytesOf(data: unknown): Uint8Array | undefined {
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  return undefined;
}

/** The `since` option, checked at run time too (JavaScript callers, stored positions). */
function checkPosition(since: Position | undefined): Position | undefined {
  if (since === undefined) return undefined;
  const { epoch, offset } = (since ?? {}) as { epoch?: unknown; offset?: unknown };
  if (typeof epoch !== 'string' || epoch === '' || typeof offset !== 'number' || !Number.isInteger(offset) || offset < 0) {
    throw new TypeError('option "since" must be a position { epoch, offset } as a push gave it');
  }
  return { epoch, offset };
}

/**
 * Connects a session and keeps it connected (see the module's description).
 *
 * @example
 * import { WebSocket } from 'ws'; // Node 20; browsers and Node 22+ have a global WebSocket
 * const session = connectSession('ws://127.0.0.1:5000/api/wstest', {
 *   businessId: '100',
 *   WebSocket,
 *   onMessage: (data, info) => console.log(data, info.position),
 *   onOpen: (info) => {
 *     if (info.resumed && !info.recovered) console.log('missed too much, reload:', info.reason);
 *   },
 * });
 */
export function connectSession<C extends ClientContract = UntypedContract>(url: string, options: SessionOptions): ClientSession<C> {
  const Ctor = (options.WebSocket ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket) as
    (new (url: string, protocols?: string | string[], socketOptions?: Record<string, unknown>) => WebSocketLike) | undefined;
  if (Ctor === undefined) throw new TypeError('no WebSocket implementation: pass options.WebSocket (e.g. from "ws")');
  const getToken = options.getToken;
  if (getToken !== undefined && typeof getToken !== 'function') throw new TypeError('option "getToken" must be a function');
  const businessId = options.businessId;
  if (businessId !== undefined || getToken === undefined) {
    if (typeof businessId !== 'string' || businessId === '') throw new TypeError('option "businessId" must be a non-empty string');
  }
  let position = checkPosition(options.since);
  /** Per room, the last position received in it (room pushes, and where the gateway said the room stands). */
  const roomPositions = new Map<string, Position>();
  /**
   * Per room, where this connection's membership started (the gateway's
   * `room` message): a push at or below it is one the client has. Above it
   * the gateway writes each push once, in arrival order (pushes from two
   * hosts may cross), so none is dropped for being below the last one seen.
   */
  const roomFloors = new Map<string, Position>();
  /**
   * The rooms the service put this connection in. When a welcomed connection
   * closes, the positions of rooms it was not put in again are dropped: the
   * service no longer puts the session there, and `roomSince` stays bounded.
   */
  let joinedNow: Set<string> | undefined;
  for (const [room, at] of Object.entries(options.roomSince ?? {})) roomPositions.set(room, checkPosition(at)!);
  const backoff = new Backoff({
    initialDelayMs: options.initialDelayMs ?? 250,
    maxDelayMs: options.maxDelayMs ?? 10_000,
    jitter: 0.5,
    healthyAfterMs: options.healthyAfterMs ?? 5000,
  });
  const maxRetries = options.maxRetries ?? Number.POSITIVE_INFINITY;
  const params = businessId === undefined ? [] : [`businessId=${encodeURIComponent(businessId)}`];
  const targetWith = (token: string | undefined): string => {
    const all = [...params];
    if (token !== undefined) all.push(`token=${encodeURIComponent(token)}`);
    if (position !== undefined) all.push(`since=${encodeURIComponent(`${position.epoch}:${position.offset}`)}`);
    if (roomPositions.size > 0) {
      const rooms: Record<string, string> = {};
      for (const [room, at] of roomPositions) rooms[room] = `${at.epoch}:${at.offset}`;
      all.push(`roomSince=${encodeURIComponent(JSON.stringify(rooms))}`);
    }
    return all.length === 0 ? url : `${url}${url.includes('?') ? '&' : '?'}${all.join('&')}`;
  };
  let socket: WebSocketLike | undefined;
  /** Reconnects since the last open (what maxRetries bounds). */
  let attempts = 0;
  let closedByUser = false;
  /** Set by reconnect(): the next close is ours, and the next connect comes after this many ms. */
  let reconnectAfterMs: number | undefined;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let refreshTimer: ReturnType<typeof setTimeout> | undefined;
  /** Receipts to send, gathered over one turn. */
  let receipts: number[] = [];
  /** Handlers of named pushes, by name. */
  const pushHandlers = new Map<string, Set<(data: unknown, info: MessageInfo) => void>>();
  /** Calls waiting for their reply, by request id. */
  const pending = new Map<number, { resolve: (value: unknown) => void; reject: (error: CallError) => void; timer: ReturnType<typeof setTimeout> }>();
  let lastRequestId = 0;
  const callTimeoutMs = options.callTimeoutMs ?? DEFAULT_CALL_TIMEOUT_MS;
  if (!(typeof callTimeoutMs === 'number' && callTimeoutMs > 0 && callTimeoutMs <= 2_147_483_647)) {
    throw new TypeError('option "callTimeoutMs" must be a number of ms above 0');
  }

  /** The session the calls went out on closed: whether they ran is not known. */
  const failPending = (): void => {
    for (const [id, call] of pending) {
      pending.delete(id);
      clearTimeout(call.timer);
      call.reject(new CallError('OutcomeUnknown', 'the session closed before the reply came: the message may or may not have run'));
    }
  };

  const onReply = (id: number, result: unknown, error: WireReplyError | undefined): void => {
    const call = pending.get(id);
    if (call === undefined) return;
    pending.delete(id);
    clearTimeout(call.timer);
    if (error === undefined) call.resolve(result ?? null);
    else {
      const details: ConstructorParameters<typeof CallError>[2] = {};
      if (error.data !== undefined) details.data = error.data;
      if (Array.isArray(error.validErrors)) details.validErrors = error.validErrors;
      call.reject(new CallError(String(error.code), String(error.message), details));
    }
  };

  /** A text message for the application: a named push with a handler goes to it, anything else to onMessage. */
  const deliverText = (text: string, info: MessageInfo): void => {
    const named = pushHandlers.size === 0 ? undefined : parseNamedPush(text);
    const handlers = named === undefined ? undefined : pushHandlers.get(named.name);
    if (handlers === undefined || handlers.size === 0) return options.onMessage?.(text, info);
    for (const handler of [...handlers]) handler(named!.data, info);
  };

  /** Waits for the backoff, then connects again; false when the client gives up. */
  const retry = (): boolean => {
    if (closedByUser || attempts >= maxRetries) return false;
    attempts += 1;
    timer = setTimeout(connect, backoff.disconnected());
    return true;
  };

  const connect = (): void => {
    timer = undefined;
    if (getToken === undefined) return open(undefined);
    fetchToken().then((token) => {
      if (!closedByUser) open(token);
    }, tokenFailed);
  };

  const fetchToken = async (): Promise<string> => {
    const token = await getToken!();
    if (typeof token !== 'string' || token === '') throw new TypeError('getToken must give a non-empty string');
    return token;
  };

  const tokenFailed = (error: unknown): void => {
    if (closedByUser) return;
    options.onTokenError?.(error);
    retry();
  };

  const sendControl = (ws: WebSocketLike, message: ClientControl): void => {
    if (ws.readyState === OPEN) ws.send(JSON.stringify(message));
  };

  /** Asks for a fresh token when most of the current one's life has passed, and sends it in-band. */
  const scheduleRefresh = (ws: WebSocketLike, expiresAt: number | undefined | null): void => {
    if (refreshTimer !== undefined) clearTimeout(refreshTimer);
    refreshTimer = undefined;
    if (getToken === undefined || expiresAt === undefined || expiresAt === null) return;
    const left = expiresAt - Date.now();
    refreshTimer = setTimeout(
      () => {
        refreshTimer = undefined;
        fetchToken().then(
          (token) => sendControl(ws, { type: 'token', token }),
          (e: unknown) => options.onTokenError?.(e),
        );
      },
      Math.max(0, Math.min(left * REFRESH_AT_SHARE, 2_147_483_647)),
    );
  };

  const onControl = (ws: WebSocketLike, text: string, asked: boolean): void => {
    let message: ServerControl;
    try {
      message = JSON.parse(text) as ServerControl;
    } catch {
      return;
    }
    if (message.type === 'welcome') {
      joinedNow = new Set();
      // Not recovered: the old position means nothing now; start from where the stream stands.
      if (message.position !== null && (!message.recovered || position === undefined)) position = message.position;
      scheduleRefresh(ws, message.expiresAt);
      options.onOpen?.({
        sessionId: message.sessionId,
        resumed: asked,
        recovered: message.recovered,
        reason: message.reason,
        replayed: message.replayed,
      });
    } else if (message.type === 'room') {
      const room = message.room;
      if (!message.joined) {
        roomPositions.delete(room);
        roomFloors.delete(room);
      } else if (message.position != null) {
        joinedNow?.add(room);
        roomPositions.set(room, message.position);
        roomFloors.set(room, message.position);
      } else {
        joinedNow?.add(room);
        roomFloors.delete(room);
      }
      options.onRoom?.({
        room,
        joined: message.joined,
        position: message.position ?? null,
        recovered: message.recovered === true,
        reason: message.reason,
        replayed: message.replayed ?? 0,
      });
    } else if (message.type === 'reply') onReply(message.id, message.result, message.error);
    else if (message.type === 'token') scheduleRefresh(ws, message.expiresAt);
    else if (message.type === 'error') {
      options.onError?.({ message: message.message, code: message.code });
      options.onTokenError?.(new Error(`${message.code}: ${message.message}`));
    }
  };

  const onPush = (ws: WebSocketLike, bytes: Uint8Array): void => {
    const push = decodePush(bytes);
    if (push === undefined) return;
    const at: WirePosition | undefined = push.position;
    if (push.room !== undefined) {
      // A room push: its position is in the room's stream, deduplicated there.
      if (at !== undefined) {
        const floor = roomFloors.get(push.room);
        if (floor !== undefined && at.epoch === floor.epoch && at.offset <= floor.offset) return;
        const last = roomPositions.get(push.room);
        if (last === undefined || last.epoch !== at.epoch || at.offset > last.offset) roomPositions.set(push.room, at);
      }
      // A named push reaches its `on` handlers whether it went to a room or a businessId.
      if (push.text) deliverText(decoder.decode(push.payload), { position: at, room: push.room });
      else options.onMessage?.(push.payload, { position: at, room: push.room });
      return;
    }
    if (at !== undefined) {
      // A push it already has (replay and live can overlap): once only.
      if (position !== undefined && at.epoch === position.epoch && at.offset <= position.offset) return confirm(ws, push.receiptId);
      position = at;
    }
    if (push.text) deliverText(decoder.decode(push.payload), { position: at });
    else options.onMessage?.(push.payload, { position: at });
    confirm(ws, push.receiptId);
  };

  const confirm = (ws: WebSocketLike, receiptId: number): void => {
    if (receiptId === 0) return;
    if (receipts.push(receiptId) > 1) return;
    queueMicrotask(() => {
      const ids = receipts;
      receipts = [];
      sendControl(ws, { type: 'receipt', ids });
    });
  };

  const open = (token: string | undefined): void => {
    const asked = position !== undefined;
    const ws =
      options.socketOptions === undefined ? new Ctor(targetWith(token), [WEFT_V1]) : new Ctor(targetWith(token), [WEFT_V1], options.socketOptions);
    ws.binaryType = 'arraybuffer';
    socket = ws;
    let v1 = false;
    ws.onopen = () => {
      attempts = 0;
      backoff.connected();
      v1 = ws.protocol === WEFT_V1;
      // A bare session says nothing of itself; weft.v1's welcome comes as its first message.
      if (!v1) options.onOpen?.({ sessionId: undefined, resumed: asked, recovered: false, reason: asked ? 'not-supported' : undefined, replayed: 0 });
    };
    ws.onmessage = (ev) => {
      if (!v1) {
        if (typeof ev.data === 'string') return deliverText(ev.data, { position: undefined });
        return options.onMessage?.(ev.data, { position: undefined });
      }
      if (typeof ev.data === 'string') return onControl(ws, ev.data, asked);
      const bytes = bytesOf(ev.data);
      if (bytes !== undefined) onPush(ws, bytes);
    };
    ws.onerror = (ev) => {
      // A close event follows with the code. ws says why a handshake was refused ("Unexpected server response: 401").
      const message = (ev as { message?: unknown } | null)?.message;
      const text = typeof message === 'string' ? message : 'connection failed';
      const status = /Unexpected server response: (\d{3})/.exec(text)?.[1];
      options.onError?.(status === undefined ? { message: text } : { message: text, status: Number(status) });
    };
    ws.onclose = (ev) => {
      const joined = joinedNow;
      joinedNow = undefined;
      if (joined !== undefined) for (const room of [...roomPositions.keys()]) if (!joined.has(room)) roomPositions.delete(room);
      if (refreshTimer !== undefined) clearTimeout(refreshTimer);
      refreshTimer = undefined;
      failPending();
      if (reconnectAfterMs !== undefined && !closedByUser) {
        const wait = reconnectAfterMs;
        reconnectAfterMs = undefined;
        options.onClose?.(ev.code, ev.reason, true);
        timer = setTimeout(connect, wait);
        return;
      }
      const again = !closedByUser && shouldReconnect(ev.code, getToken !== undefined) && attempts < maxRetries;
      options.onClose?.(ev.code, ev.reason, again);
      if (again) retry();
    };
  };
  connect();

  return {
    get isOpen() {
      return socket?.readyState === OPEN;
    },
    get position() {
      return position;
    },
    get rooms() {
      return Object.fromEntries(roomPositions);
    },
    send(data) {
      const ws = socket;
      if (ws?.readyState !== OPEN) return false;
      if (ws.protocol !== WEFT_V1) {
        ws.send(data);
        return true;
      }
      const payload =
        typeof data === 'string'
          ? data
          : ArrayBuffer.isView(data)
            ? new Uint8Array(data.buffer, data.byteOffset, data.byteLength)
            : new Uint8Array(data);
      ws.send(encodeClientMessage(payload));
      return true;
    },
    reconnect(afterMs = 0) {
      if (closedByUser) return;
      const ws = socket;
      if (ws === undefined || ws.readyState > OPEN) {
        // Between connections: connect now (or after afterMs) instead of at the backoff's time.
        if (timer !== undefined) clearTimeout(timer);
        timer = setTimeout(connect, afterMs);
        return;
      }
      reconnectAfterMs = afterMs;
      ws.close(4000, 'client reconnects');
    },
    close() {
      closedByUser = true;
      if (timer !== undefined) clearTimeout(timer);
      if (refreshTimer !== undefined) clearTimeout(refreshTimer);
      socket?.close(1000, 'client closed');
    },
    on(name, handler) {
      if (typeof handler !== 'function') throw new TypeError('on(name, handler): the handler must be a function');
      let handlers = pushHandlers.get(name);
      if (handlers === undefined) pushHandlers.set(name, (handlers = new Set()));
      const own = handler as (data: unknown, info: MessageInfo) => void;
      handlers.add(own);
      return () => {
        handlers.delete(own);
        if (handlers.size === 0 && pushHandlers.get(name) === handlers) pushHandlers.delete(name);
      };
    },
    call(name, ...args) {
      const [params, callOptions] = args as [unknown, ClientCallOptions | undefined];
      const timeoutMs = callOptions?.timeoutMs ?? callTimeoutMs;
      const ws = socket;
      if (ws?.readyState !== OPEN) return Promise.reject(new CallError('CommunicationError', `not connected: ${name} was not sent`));
      if (ws.protocol !== WEFT_V1) {
        return Promise.reject(new CallError('NotImplemented', 'the gateway does not speak weft.v1, which call needs'));
      }
      if (!(typeof timeoutMs === 'number' && timeoutMs > 0 && timeoutMs <= 2_147_483_647)) {
        return Promise.reject(new TypeError('timeoutMs must be a number of ms above 0'));
      }
      let id = lastRequestId;
      do id = id >= MAX_REQUEST_ID ? 1 : id + 1;
      while (pending.has(id));
      lastRequestId = id;
      const request: ClientControl = params === undefined ? { type: 'request', id, name } : { type: 'request', id, name, params };
      let text: string;
      try {
        text = JSON.stringify(request);
      } catch (e) {
        return Promise.reject(new TypeError(`the params of ${name} are not JSON: ${(e as Error).message}`));
      }
      return new Promise<CallResult<C, typeof name>>((resolve, reject) => {
        const timer = setTimeout(() => {
          if (!pending.delete(id)) return;
          reject(new CallError('Timeout', `no reply to ${name} within ${timeoutMs} ms`));
        }, timeoutMs);
        pending.set(id, { resolve: resolve as (value: unknown) => void, reject, timer });
        ws.send(text);
      });
    },
  };
}
