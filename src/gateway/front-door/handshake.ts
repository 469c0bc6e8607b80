/**
 * Checking a WebSocket handshake before anything is opened: the route, what
 * `ws` itself would refuse and the businessId the client gave; and what a
 * host learns of a handshake once it is admitted (auth/auth-gate.ts decides
 * that). Everything here answers with a WeftError the front door turns into
 * an HTTP status and JSON body; nothing is upgraded yet.
 */
import type { IncomingMessage } from 'node:http';
import { WeftError } from '../../errors.js';
import type { WireHandshake } from '../../protocol/frames.js';
import { WEFT_V1 } from '../../protocol/weft-v1.js';
import { parsePosition, type HistoryLimits, type Position } from '../../history/history-store.js';
import type { Admission } from '../auth/auth-gate.js';
import { businessIdProblem, givenBusinessIds } from '../auth/business-id.js';
import { roomProblem } from '../../protocol/room-names.js';
import { ClientAddresses } from '../auth/client-address.js';
import { IDENTITY_HEADER } from '../auth/identity-header.js';
import { isTokenHeader, withoutToken } from '../auth/token-source.js';
import { parseQuery } from '../http-api.js';

/** A handshake that passed the checks. */
export interface CheckedHandshake {
  path: string;
  service: string;
  /** The values of the `{param}` segments of the service's route template. */
  params: Record<string, string>;
  /** Does the service override a session hook (so its host wants the handshake's details)? */
  hooks: boolean;
  /** The first businessId the client gave; undefined only when tokens are on (the token's claim is used). */
  businessId: string | undefined;
  /** Every businessId the client gave, in lookup order. */
  givenBusinessIds: string[];
  query: Record<string, string>;
  /** The policy the handshake was checked under; handshakeOf applies the rest of it. */
  policy: HandshakePolicy;
  /** The client asked for the weft.v1 subprotocol: positions, resume, receipts, in-band tokens. */
  weftV1: boolean;
  /** weft.v1: the position to resume from (`?since=epoch:offset`). */
  since: Position | undefined;
  /** weft.v1: per room, the position to resume it from when the service joins the session to it again (`?roomSince=`, rooms.ts). */
  roomSince: Map<string, Position> | undefined;
  /** What the service keeps for resuming clients; undefined: nothing. */
  history: HistoryLimits | undefined;
}

/** What the gateway lets through a handshake to a WebSocket service. */
export interface HandshakePolicy {
  /** Origins that may open a session (exact), or '*'; undefined: only the gateway's own (the Host header's). */
  allowedOrigins: '*' | readonly string[] | undefined;
  /** Client headers a host may see (lower case), as for HTTP services. */
  forwardHeaders: readonly string[];
  /** Whose X-Forwarded-For is believed. */
  addresses: ClientAddresses;
}

/** Nothing configured: own origin only, no client header, no proxy believed. */
const DEFAULT_POLICY: HandshakePolicy = Object.freeze({ allowedOrigins: undefined, forwardHeaders: [], addresses: new ClientAddresses([]) });

/**
 * Finds the WebSocket service of a path, the values of its template's
 * `{param}` segments, and the policy it is opened under (the default when
 * none). Throws URIError on a malformed escape in a parameter segment.
 */
export type FindWebSocketService = (
  path: string,
) => { service: string; params?: Record<string, string>; hooks: boolean; history?: HistoryLimits | undefined; policy?: HandshakePolicy } | undefined;

/** Does a Sec-WebSocket-Protocol header offer weft.v1? */
function offersWeftV1(header: string | undefined): boolean {
  if (header === undefined) return false;
  for (const raw of header.split(',')) if (raw.trim() === WEFT_V1) return true;
  return false;
}

const DEFAULT_PORTS: Readonly<Record<string, string>> = { 'http:': '80', 'https:': '443' };

/** Is `origin` the gateway's own: http or https, at the host and port of the Host header (a TLS-terminating proxy keeps it so)? */
function isOwnOrigin(origin: string, host: string | undefined): boolean {
  if (host === undefined || host === '') return false;
  let url: URL;
  try {
    url = new URL(origin);
  } catch {
    return false;
  }
  const defaultPort = DEFAULT_PORTS[url.protocol];
  if (defaultPort === undefined || url.origin !== origin.toLowerCase()) return false;
  const want = host.toLowerCase().endsWith(`:${defaultPort}`) ? host.toLowerCase().slice(0, -defaultPort.length - 1) : host.toLowerCase();
  return url.host === want;
}

/** Why a handshake's Origin may not open a session, or undefined when it may (no Origin: not a browser). */
export function originProblem(req: IncomingMessage, allowed: HandshakePolicy['allowedOrigins']): string | undefined {
  const origin = req.headers.origin;
  if (origin === undefined) return undefined;
  if (allowed === '*') return undefined;
  if (allowed === undefined ? isOwnOrigin(origin, req.headers.host) : allowed.includes(origin.toLowerCase())) return undefined;
  return allowed === undefined
    ? `origin ${JSON.stringify(origin)} is not this gateway's; list it in the gateway's allowedOrigins to let its pages connect`
    : `origin ${JSON.stringify(origin)} is not in the gateway's allowedOrigins`;
}

const KEY = /^[+/0-9A-Za-z]{22}==$/;
const TOKEN = /^[!#$%&'*+\-.0-9A-Z^_`|~a-z]+$/;

/** Headers a host does not need: hop-by-hop and the WebSocket handshake's own. */
const DROPPED_HEADERS = new Set([
  'connection',
  'upgrade',
  'keep-alive',
  'transfer-encoding',
  'te',
  'trailer',
  'proxy-authorization',
  'proxy-connection',
]);

/** What a host of a service without hooks is told of a handshake: nothing, it has no use for it. */
export const NO_HANDSHAKE: WireHandshake = Object.freeze({ headers: {}, query: {}, remoteAddress: '' });

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

/**
 * The checks that need no I/O, in the order a client learns of them.
 * Returns the handshake, or the error to refuse it with (and extra headers).
 * With `tokens`, a handshake may name no businessId: the token's is used.
 */
export function checkHandshake(
  req: IncomingMessage,
  findService: FindWebSocketService,
  tokens: boolean,
): CheckedHandshake | { error: WeftError; headers?: Record<string, string> } {
  const url = req.url ?? '/';
  const q = url.indexOf('?');
  const path = q < 0 ? url : url.slice(0, q);
  let route: ReturnType<FindWebSocketService>;
  try {
    route = findService(path);
  } catch {
    // decodeURIComponent of a path parameter
    return { error: new WeftError('BadRequest', 'malformed URL encoding in the path') };
  }
  if (route === undefined) return { error: new WeftError('NotFound', `no WebSocket service at ${path}`) };
  const policy = route.policy ?? DEFAULT_POLICY;
  // A page of another site must not open a session with the user's credentials (cross-site WebSocket hijacking).
  const badOrigin = originProblem(req, policy.allowedOrigins);
  if (badOrigin !== undefined) return { error: new WeftError('Unauthorized', badOrigin) };
  if ((req.headers.upgrade ?? '').toLowerCase() !== 'websocket' || !KEY.test(req.headers['sec-websocket-key'] ?? '')) {
    return { error: new WeftError('BadRequest', 'not a valid WebSocket handshake') };
  }
  if (req.headers['sec-websocket-version'] !== '13') {
    return { error: new WeftError('BadRequest', 'unsupported WebSocket version; use 13'), headers: { 'sec-websocket-version': '13' } };
  }
  // Everything ws itself would refuse is refused here, before a host is asked to open anything.
  if (req.method !== 'GET') return { error: new WeftError('BadRequest', 'a WebSocket handshake is a GET request') };
  if (!validSubprotocols(req.headers['sec-websocket-protocol'])) {
    return { error: new WeftError('BadRequest', 'malformed Sec-WebSocket-Protocol header') };
  }
  // URLSearchParams reads any query string (a bad escape stays as written): nothing to refuse.
  const query = parseQuery(q < 0 ? '' : url.slice(q + 1));
  // Query first, then header; Silky's spelling `bussinessId` too. Names match case-insensitively.
  // A `{businessId}` path parameter is one more place a client names it, as for HTTP routes.
  const params = route.params ?? {};
  const given = givenBusinessIds(query, req.headers, params);
  const businessId = given[0];
  if (businessId === undefined && !tokens) {
    return { error: new WeftError('BadRequest', 'businessId is required, in the query string (?businessId=) or a businessId header') };
  }
  for (const id of given) {
    const problem = businessIdProblem(id);
    if (problem !== undefined) return { error: new WeftError('BadRequest', problem) };
  }
  const weftV1 = offersWeftV1(req.headers['sec-websocket-protocol']);
  let since: Position | undefined;
  const sinceText = query['since'];
  if (sinceText !== undefined && sinceText !== '') {
    if (!weftV1) return { error: new WeftError('BadRequest', `since needs the ${WEFT_V1} subprotocol (weft/client speaks it)`) };
    since = parsePosition(sinceText);
    if (since === undefined) return { error: new WeftError('BadRequest', 'since must be a position as a push gave it: <epoch>:<offset>') };
  }
  const roomSince = roomPositionsOf(query['roomsince'], weftV1);
  if (roomSince instanceof WeftError) return { error: roomSince };
  return {
    path,
    service: route.service,
    params,
    hooks: route.hooks,
    businessId,
    givenBusinessIds: given,
    query,
    policy,
    weftV1,
    since,
    roomSince,
    history: route.history,
  };
}

/**
 * What the host of a service with hooks learns of an admitted handshake,
 * under the policy it was checked under: only the `forwardHeaders`
 * the client sent (as HTTP services get them), plus `x-forwarded-for` (the
 * peer appended; a client's own value only from a trusted proxy) and the
 * hook's headers. With `tokens`, the token is taken out (a Bearer
 * Authorization header, the `token` query parameter); Sec-WebSocket-* and
 * hop-by-hop headers and a client's own x-weft-identity never go. The
 * verified identity travels in its own field; `remoteAddress` is the client's.
 */
export function handshakeOf(req: IncomingMessage, checked: CheckedHandshake, admission: Admission | undefined, tokens: boolean): WireHandshake {
  const { policy, query } = checked;
  const headers: Record<string, string> = {};
  for (const name of policy.forwardHeaders) {
    const value = req.headers[name];
    if (value === undefined || DROPPED_HEADERS.has(name) || name.startsWith('sec-websocket-') || name === IDENTITY_HEADER) continue;
    if (tokens && isTokenHeader(name, value)) continue;
    headers[name] = Array.isArray(value) ? value.join(', ') : value;
  }
  const peer = req.socket.remoteAddress ?? '';
  const forwardedFor = policy.addresses.forwardedFor(peer, req.headers);
  if (forwardedFor !== '') headers['x-forwarded-for'] = forwardedFor;
  const hookHeaders = admission?.hookHeaders;
  if (hookHeaders !== undefined) Object.assign(headers, hookHeaders);
  const remoteAddress = peer === '' ? '' : policy.addresses.clientAddress(peer, req.headers);
  const handshake: WireHandshake = { headers, query: tokens ? withoutToken(query) : query, remoteAddress };
  if (Object.keys(checked.params).length > 0) handshake.params = checked.params;
  if (admission?.identity !== undefined) handshake.identity = admission.identity;
  const traceparent = req.headers['traceparent'];
  if (typeof traceparent === 'string' && traceparent.length <= 128) handshake.traceparent = traceparent;
  return handshake;
}

/** Most rooms a handshake may name positions for (`?roomSince=`); weft/client sends those of the rooms it was in. */
const MAX_RESUMED_ROOMS = 1000;

/** `?roomSince={"<room>":"<epoch>:<offset>",...}` (weft.v1): where the client stands in each room's stream. */
function roomPositionsOf(text: string | undefined, weftV1: boolean): Map<string, Position> | undefined | WeftError {
  if (text === undefined || text === '') return undefined;
  if (!weftV1) return new WeftError('BadRequest', `roomSince needs the ${WEFT_V1} subprotocol (weft/client speaks it)`);
  const bad = new WeftError('BadRequest', 'roomSince must be a JSON object of room name -> position as a push gave it (<epoch>:<offset>)');
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return bad;
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return bad;
  const entries = Object.entries(parsed as Record<string, unknown>);
  if (entries.length > MAX_RESUMED_ROOMS) return new WeftError('BadRequest', `roomSince names more than ${MAX_RESUMED_ROOMS} rooms`);
  const out = new Map<string, Position>();
  for (const [room, value] of entries) {
    const position = typeof value === 'string' ? parsePosition(value) : undefined;
    if (position === undefined || roomProblem(room) !== undefined) return bad;
    out.set(room, position);
  }
  return out;
}
