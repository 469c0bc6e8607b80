/**
 * Checking a WebSocket handshake before anything is opened: the route, what
 * `ws` itself would refuse, the businessId, and the gateway's authenticate
 * hook. Everything here answers with a WeftError the front door turns into
 * an HTTP status and JSON body; nothing is upgraded yet.
 */
import type { IncomingMessage } from 'node:http';
import { WeftError, toWeftError } from '../../errors.js';
import type { WireHandshake } from '../../protocol/frames.js';
import type { Authenticate } from '../http-api.js';
import { parseQuery } from '../http-api.js';

/** A handshake that passed the checks. */
export interface CheckedHandshake {
  path: string;
  service: string;
  /** Does the service override a session hook (so its host wants the handshake's details)? */
  hooks: boolean;
  businessId: string;
  query: Record<string, string>;
}

/** Finds the WebSocket service of a path. */
export type FindWebSocketService = (path: string) => { service: string; hooks: boolean } | undefined;

const KEY = /^[+/0-9A-Za-z]{22}==$/;
const TOKEN = /^[!#$%&'*+\-.0-9A-Z^_`|~a-z]+$/;
const MAX_BUSINESS_ID_LENGTH = 256;
// eslint-disable-next-line no-control-regex -- control characters are exactly what is refused
const CONTROL = /[\u0000-\u001f]/;

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

function firstHeader(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

/**
 * The checks that need no I/O, in the order a client learns of them.
 * Returns the handshake, or the error to refuse it with (and extra headers).
 */
export function checkHandshake(
  req: IncomingMessage,
  findService: FindWebSocketService,
): CheckedHandshake | { error: WeftError; headers?: Record<string, string> } {
  const url = req.url ?? '/';
  const q = url.indexOf('?');
  const path = q < 0 ? url : url.slice(0, q);
  const route = findService(path);
  if (route === undefined) return { error: new WeftError('NotFound', `no WebSocket service at ${path}`) };
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
  const businessId = query['businessid'] ?? query['bussinessid'] ?? firstHeader(req, 'businessid') ?? firstHeader(req, 'bussinessid');
  if (businessId === undefined || businessId === '') {
    return { error: new WeftError('BadRequest', 'businessId is required, in the query string (?businessId=) or a businessId header') };
  }
  if (businessId.length > MAX_BUSINESS_ID_LENGTH || CONTROL.test(businessId)) {
    return { error: new WeftError('BadRequest', `businessId must be at most ${MAX_BUSINESS_ID_LENGTH} characters without control characters`) };
  }
  return { path, service: route.service, hooks: route.hooks, businessId, query };
}

/**
 * Runs the gateway's authenticate hook on a checked handshake. Resolves with
 * the identity headers it returned; rejects with the WeftError to refuse with.
 */
export async function authenticateHandshake(
  authenticate: Authenticate,
  req: IncomingMessage,
  checked: CheckedHandshake,
): Promise<Record<string, string> | undefined> {
  try {
    const identity = await authenticate({
      kind: 'websocket',
      method: 'GET',
      path: checked.path,
      headers: req.headers,
      query: checked.query,
      remoteAddress: req.socket.remoteAddress ?? '',
    });
    return identity ?? undefined;
  } catch (e) {
    throw toWeftError(e);
  }
}

/** What the host of a service with hooks learns of the handshake. */
export function handshakeOf(req: IncomingMessage, query: Record<string, string>, identity: Record<string, string> | undefined): WireHandshake {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(req.headers)) {
    if (value === undefined || DROPPED_HEADERS.has(name) || name.startsWith('sec-websocket-')) continue;
    headers[name] = Array.isArray(value) ? value.join(', ') : value;
  }
  if (identity !== undefined) Object.assign(headers, identity);
  return { headers, query, remoteAddress: req.socket.remoteAddress ?? '' };
}
