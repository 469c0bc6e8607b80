/**
 * What a gateway's authenticate hook is given, and what it may return.
 */

/** A token's verified claims (the JWT payload), as services and hooks see them. */
export type Identity = Readonly<Record<string, unknown>>;

/** What an authenticate hook sees of a request (HTTP or WebSocket handshake). */
export interface AuthRequest {
  kind: 'http' | 'websocket';
  method: string;
  path: string;
  /**
   * The values of the `{param}` segments of the route's template, by name:
   * `{ tenant: 'acme' }` for a WebSocket service at `api/{tenant}/room`
   * reached at `/api/acme/room`, or an HTTP route's `{id}`. Empty when it has none.
   */
  params: Readonly<Record<string, string>>;
  /** The request's headers as the client sent them (the token included). */
  headers: Readonly<Record<string, string | string[] | undefined>>;
  /** The query string as the client sent it, lower-case names (the `token` parameter included). */
  query: Readonly<Record<string, string>>;
  /** The client's address: the direct peer's, or from `X-Forwarded-For` when the peer is one of `trustedProxies`. */
  remoteAddress: string;
  /**
   * The businessId the request is for, found once by the gateway so a hook
   * need not repeat the lookup. For a WebSocket handshake: the session's,
   * which is the token's claim with `auth.jwt`, else what the client gave
   * (query `businessId`, then `bussinessId`, then the `businessId` and
   * `bussinessId` headers). For HTTP: the same lookup (and a path parameter
   * named businessId), or the token's claim; undefined when there is none.
   */
  businessId: string | undefined;
  /** The verified token's claims, with `auth.jwt`; undefined without it. */
  identity: Identity | undefined;
}

/**
 * Checks a request before it reaches a service. Throw
 * `new WeftError('Unauthenticated' | 'Unauthorized', ...)` to refuse it; return
 * headers (for example `{ 'x-user-id': '42' }`) to pass on to the service.
 */
export type Authenticate = (request: AuthRequest) => void | Record<string, string> | Promise<void | Record<string, string>>;
