/**
 * Where a client puts its token, in the order the gateway looks:
 *
 * 1. `Authorization: Bearer <token>`;
 * 2. the `token` query parameter (browsers cannot set headers on a WebSocket);
 * 3. a `Sec-WebSocket-Protocol` entry `weft.token.<token>` (handshakes only;
 *    keeps the token out of URLs and access logs).
 *
 * And what a service is left to see once the token is taken out.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { WEFT_V1 } from '../../protocol/weft-v1.js';

/** Prefix of the subprotocol entry that carries a token. The gateway never selects such an entry. */
export const TOKEN_SUBPROTOCOL_PREFIX = 'weft.token.';

const BEARER = /^Bearer[ \t]+(\S+)[ \t]*$/i;

function first(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

/** The token of an `Authorization: Bearer` header, if that is what it holds. */
function bearer(headers: IncomingHttpHeaders): string | undefined {
  const header = first(headers.authorization);
  return header === undefined ? undefined : BEARER.exec(header)?.[1];
}

/** The first `weft.token.<token>` entry of a Sec-WebSocket-Protocol header. */
function fromSubprotocols(header: string | undefined): string | undefined {
  if (header === undefined) return undefined;
  for (const raw of header.split(',')) {
    const entry = raw.trim();
    if (entry.startsWith(TOKEN_SUBPROTOCOL_PREFIX) && entry.length > TOKEN_SUBPROTOCOL_PREFIX.length) {
      return entry.slice(TOKEN_SUBPROTOCOL_PREFIX.length);
    }
  }
  return undefined;
}

/**
 * The token of a request, or undefined. `query` has lower-case names;
 * `subprotocols` is the raw Sec-WebSocket-Protocol header of a handshake.
 */
export function findToken(
  headers: IncomingHttpHeaders,
  query: Readonly<Record<string, string>>,
  subprotocols: string | undefined,
): string | undefined {
  const q = query['token'];
  return bearer(headers) ?? (q !== undefined && q !== '' ? q : undefined) ?? fromSubprotocols(subprotocols);
}

/** Is this header one a service must not see once tokens are on (a Bearer token)? */
export function isTokenHeader(name: string, value: string | string[] | undefined): boolean {
  return name === 'authorization' && first(value) !== undefined && BEARER.test(first(value)!);
}

/** The query without its `token` parameter (a copy; `query` is left as it is). */
export function withoutToken(query: Readonly<Record<string, string>>): Record<string, string> {
  const { token: _token, ...rest } = query;
  return rest;
}

/**
 * The subprotocol the gateway answers a handshake with (ws's
 * `handleProtocols`): weft.v1 when offered, else the first one the client
 * offered that is not a token entry, or none (`false`: no
 * Sec-WebSocket-Protocol in the answer). Without this, ws would answer with
 * the first entry, which may be the token.
 */
export function selectSubprotocol(offered: Set<string>): string | false {
  if (offered.has(WEFT_V1)) return WEFT_V1;
  for (const protocol of offered) if (!protocol.startsWith(TOKEN_SUBPROTOCOL_PREFIX)) return protocol;
  return false;
}
