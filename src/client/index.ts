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
 * The delay doubles with each close and starts again from `initialDelayMs`
 * only after a connection stayed open for `healthyAfterMs`: a server that
 * accepts and closes at once (1013 when overloaded) is retried ever more
 * slowly, not every `initialDelayMs`.
 *
 * @example
 * import { connectSession } from 'weft/client';
 * const session = connectSession('ws://127.0.0.1:5000/api/wstest', {
 *   businessId: '100',
 *   onMessage: (data) => console.log(data),
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

/** The part of the WebSocket API the client uses (browser WebSocket or `ws`). */
export interface WebSocketLike {
  readonly readyState: number;
  onopen: ((ev: unknown) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
  onclose: ((ev: { code: number; reason: string }) => void) | null;
  onerror: ((ev: unknown) => void) | null;
  send(data: string | ArrayBufferLike | ArrayBufferView): void;
  close(code?: number, reason?: string): void;
}

export type WebSocketConstructor = new (url: string) => WebSocketLike;

export interface SessionOptions {
  /** The businessId to connect as. Required without `getToken`; with it, the gateway may take the token's. */
  businessId?: string;
  /**
   * Called before each connect and reconnect; its token goes in the `token`
   * query parameter. A throw or rejection counts as an attempt that failed
   * (retried with backoff, bounded by `maxRetries`).
   */
  getToken?: () => string | Promise<string>;
  /** getToken failed (the client retries with backoff). */
  onTokenError?: (error: unknown) => void;
  /** WebSocket implementation; default the global one (browsers, Node 22+). Pass `ws`'s on Node 20. */
  WebSocket?: WebSocketConstructor;
  onMessage?: (data: unknown) => void;
  onOpen?: () => void;
  /** Every close, with whether the client will reconnect. */
  onClose?: (code: number, reason: string, willReconnect: boolean) => void;
  /** Backoff between attempts: from initialDelayMs doubling to maxDelayMs, with jitter. Defaults 250 ms and 10 s. */
  initialDelayMs?: number;
  maxDelayMs?: number;
  /** How long a connection must stay open for the next reconnect to wait initialDelayMs again. Default 5 s. */
  healthyAfterMs?: number;
  /** Attempts in a row that may end without ever opening before the client gives up. Default unlimited. */
  maxRetries?: number;
}

export interface ClientSession {
  /** True while connected. */
  readonly isOpen: boolean;
  /** Sends when connected; returns false otherwise (nothing is queued). */
  send(data: string | ArrayBufferLike | ArrayBufferView): boolean;
  /** Closes for good (1000). */
  close(): void;
}

const RETRY_CODES = new Set([1001, 1005, 1006, 1011, 1012, 1013]);
const OPEN = 1;

/** The gateway closed the session because its token expired (weft's protocol/close-codes.ts). */
export const TOKEN_EXPIRED_CLOSE_CODE = 4001;

/** Close codes after which the client reconnects; 4001 (token expired) only when it can get a fresh token. */
export function shouldReconnect(code: number, canRefreshToken = false): boolean {
  return RETRY_CODES.has(code) || (canRefreshToken && code === TOKEN_EXPIRED_CLOSE_CODE);
}

export function connectSession(url: string, options: SessionOptions): ClientSession {
  const Ctor = options.WebSocket ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
  if (Ctor === undefined) throw new TypeError('no WebSocket implementation: pass options.WebSocket (e.g. from "ws")');
  const getToken = options.getToken;
  if (getToken !== undefined && typeof getToken !== 'function') throw new TypeError('option "getToken" must be a function');
  const businessId = options.businessId;
  if (businessId !== undefined || getToken === undefined) {
    if (typeof businessId !== 'string' || businessId === '') throw new TypeError('option "businessId" must be a non-empty string');
  }
  const backoff = new Backoff({
    initialDelayMs: options.initialDelayMs ?? 250,
    maxDelayMs: options.maxDelayMs ?? 10_000,
    jitter: 0.5,
    healthyAfterMs: options.healthyAfterMs ?? 5000,
  });
  const maxRetries = options.maxRetries ?? Number.POSITIVE_INFINITY;
  const params = businessId === undefined ? [] : [`businessId=${encodeURIComponent(businessId)}`];
  const targetWith = (token: string | undefined): string => {
    const all = token === undefined ? params : [...params, `token=${encodeURIComponent(token)}`];
    return all.length === 0 ? url : `${url}${url.includes('?') ? '&' : '?'}${all.join('&')}`;
  };
  let socket: WebSocketLike | undefined;
  /** Reconnects since the last open (what maxRetries bounds). */
  let attempts = 0;
  let closedByUser = false;
  let timer: ReturnType<typeof setTimeout> | undefined;

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
    let pending: string | Promise<string>;
    try {
      pending = getToken();
    } catch (e) {
      return tokenFailed(e);
    }
    Promise.resolve(pending).then((token) => {
      if (closedByUser) return;
      if (typeof token !== 'string' || token === '') return tokenFailed(new TypeError('getToken must give a non-empty string'));
      open(token);
    }, tokenFailed);
  };

  const tokenFailed = (error: unknown): void => {
    if (closedByUser) return;
    options.onTokenError?.(error);
    retry();
  };

  const open = (token: string | undefined): void => {
    const ws = new Ctor(targetWith(token));
    socket = ws;
    ws.onopen = () => {
      attempts = 0;
      backoff.connected();
      options.onOpen?.();
    };
    ws.onmessage = (ev) => options.onMessage?.(ev.data);
    ws.onerror = () => {
      // a close event follows with the code
    };
    ws.onclose = (ev) => {
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
    send(data) {
      if (socket?.readyState !== OPEN) return false;
      socket.send(data);
      return true;
    },
    close() {
      closedByUser = true;
      if (timer !== undefined) clearTimeout(timer);
      socket?.close(1000, 'client closed');
    },
  };
}
