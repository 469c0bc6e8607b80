/**
 * The one place a request (HTTP or WebSocket handshake) is admitted or
 * refused: the token is found and verified (`auth.jwt`), the businessId is
 * bound to it, and the `authenticate` hook runs, all within
 * `authTimeoutMs`. A refusal is a WeftError and the headers to answer it
 * with (`WWW-Authenticate: Bearer` on a 401 when tokens are on).
 */
import type { IncomingHttpHeaders } from 'node:http';
import { WeftError, toWeftError } from '../../errors.js';
import type { Logger } from '../../logger.js';
import type { Authenticate, Identity } from './auth-request.js';
import type { ClientAddresses } from './client-address.js';
import type { JwtVerifier } from './jwt-verifier.js';
import { findToken } from './token-source.js';

export interface GateRequest {
  kind: 'http' | 'websocket';
  method: string;
  path: string;
  /** The values of the route template's `{param}` segments. */
  params: Readonly<Record<string, string>>;
  headers: IncomingHttpHeaders;
  /** Lower-case names. */
  query: Readonly<Record<string, string>>;
  /** The direct peer's address; the hook sees the client's (client-address.ts, `trustedProxies`). */
  remoteAddress: string;
  /** Every businessId the client gave, in lookup order (business-id.ts). */
  givenBusinessIds: readonly string[];
}

/** A request let in. */
export interface Admission {
  /** The token's businessId with tokens on; else the first the client gave. */
  businessId: string | undefined;
  identity: Identity | undefined;
  /** Epoch ms at which the token stops holding; undefined without a token or without `exp`. */
  expiresAt: number | undefined;
  /** What the hook returned, for the service. */
  hookHeaders: Record<string, string> | undefined;
}

/** A request turned away. */
export interface Refusal {
  error: WeftError;
  headers: Record<string, string>;
}

export interface AuthGateOptions {
  jwt: JwtVerifier | undefined;
  authenticate: Authenticate | undefined;
  timeoutMs: number;
  logger: Logger;
  /** Turns the peer's address into the client's; without it, the peer is the client. */
  addresses?: ClientAddresses;
}

const NO_TOKEN = 'a token is required: an Authorization: Bearer header, a token query parameter, or a weft.token.<token> WebSocket subprotocol';

/** A quoted-string of a WWW-Authenticate parameter (RFC 7235): no quote or backslash inside. */
function quoted(text: string): string {
  return `"${text.replace(/["\\]/g, "'")}"`;
}

export class AuthGate {
  readonly #o: AuthGateOptions;

  constructor(options: AuthGateOptions) {
    this.#o = options;
  }

  /** Does anything check requests (tokens or a hook)? When not, nothing needs to be called. */
  get active(): boolean {
    return this.#o.jwt !== undefined || this.#o.authenticate !== undefined;
  }

  /** Are tokens required (`auth.jwt`)? Then the businessId may come from the token alone. */
  get tokens(): boolean {
    return this.#o.jwt !== undefined;
  }

  /** Admits or refuses `request`; never rejects. Authentication longer than `authTimeoutMs` is refused with 504. */
  admit(request: GateRequest): Promise<Admission | Refusal> {
    const state = { tokenPresented: false };
    const decided = this.#admit(request, state).then(
      (admission): Admission | Refusal => admission,
      (e: unknown): Refusal => this.#refusal(toWeftError(e), state.tokenPresented),
    );
    const ms = this.#o.timeoutMs;
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<Refusal>((resolve) => {
      timer = setTimeout(() => {
        this.#o.logger.warn({ path: request.path, kind: request.kind, timeoutMs: ms }, 'authentication timed out');
        resolve({ error: new WeftError('Timeout', `authentication did not finish within ${ms} ms`), headers: {} });
      }, ms);
    });
    return Promise.race([decided, timedOut]).finally(() => clearTimeout(timer));
  }

  async #admit(request: GateRequest, state: { tokenPresented: boolean }): Promise<Admission> {
    let businessId = request.givenBusinessIds[0];
    let identity: Identity | undefined;
    let expiresAt: number | undefined;
    const jwt = this.#o.jwt;
    if (jwt !== undefined) {
      const subprotocols = request.kind === 'websocket' ? request.headers['sec-websocket-protocol'] : undefined;
      const token = findToken(request.headers, request.query, subprotocols);
      if (token === undefined) throw new WeftError('Unauthenticated', NO_TOKEN);
      state.tokenPresented = true;
      const verified = await jwt.verify(token);
      for (const given of request.givenBusinessIds) {
        if (given !== verified.businessId) {
          throw new WeftError('Unauthorized', `businessId ${JSON.stringify(given)} is not the one the token's "${jwt.businessIdClaim}" claim names`);
        }
      }
      ({ identity, expiresAt, businessId } = verified);
    }
    const hook = this.#o.authenticate;
    let hookHeaders: Record<string, string> | undefined;
    if (hook !== undefined) {
      const returned = await hook({
        kind: request.kind,
        method: request.method,
        path: request.path,
        params: request.params,
        headers: request.headers,
        query: request.query,
        remoteAddress: this.#o.addresses?.clientAddress(request.remoteAddress, request.headers) ?? request.remoteAddress,
        businessId,
        identity,
      });
      hookHeaders = returned ?? undefined;
    }
    return { businessId, identity, expiresAt, hookHeaders };
  }

  /**
   * A fresh token sent in-band by a weft.v1 session: verified as at the
   * handshake and bound to the session's businessId. Resolves with when it
   * stops holding, or the error to answer. The authenticate hook does not
   * run again: it saw the handshake.
   */
  async refresh(token: string, businessId: string): Promise<{ expiresAt: number | undefined } | { error: WeftError }> {
    const jwt = this.#o.jwt;
    if (jwt === undefined) return { error: new WeftError('BadRequest', 'this gateway takes no tokens (auth.jwt is not set)') };
    try {
      const verified = await jwt.verify(token);
      if (verified.businessId !== businessId) {
        return { error: new WeftError('Unauthorized', `the token's "${jwt.businessIdClaim}" claim is not this session's businessId`) };
      }
      return { expiresAt: verified.expiresAt };
    } catch (e) {
      return { error: toWeftError(e) };
    }
  }

  #refusal(error: WeftError, tokenPresented: boolean): Refusal {
    if (error.code === 'ServerError') this.#o.logger.error({ err: error.cause }, 'authenticate threw');
    else this.#o.logger.debug({ code: error.code, message: error.message }, 'request refused by authentication');
    if (error.code !== 'Unauthenticated' || !this.tokens) return { error, headers: {} };
    // RFC 6750: the scheme always; why, when a token was there and did not do.
    const challenge = tokenPresented ? `Bearer error="invalid_token", error_description=${quoted(error.message)}` : 'Bearer';
    return { error, headers: { 'www-authenticate': challenge } };
  }
}
