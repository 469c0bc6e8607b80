/**
 * HTTP to RPC: admits a request (auth/auth-gate.ts), binds its path, query,
 * headers and JSON body to the method's parameters, calls the service and
 * answers with the wrapper.
 */
import { SpanKind, contextFromHeaders, endSpan, startSpan, type Context } from '../tracing/tracing.js';
import { observeHttp } from '../metrics/metrics.js';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { WeftError, toWeftError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { ParamDescriptor } from '../contract/contract.js';
import type { CallOptions, RpcClient } from '../rpc/rpc-client.js';
import type { Admission, AuthGate } from './auth/auth-gate.js';
import { businessIdProblem, givenBusinessIds, isBusinessIdName } from './auth/business-id.js';
import type { ClientAddresses } from './auth/client-address.js';
import { IDENTITY_HEADER, encodeIdentity } from './auth/identity-header.js';
import { isTokenHeader, withoutToken } from './auth/token-source.js';
import { sendError, sendJson, successBody } from './responses.js';
import type { RouteMatch } from './route-table.js';

export type { AuthRequest, Authenticate } from './auth/auth-request.js';

export interface HttpApiOptions {
  maxBodyBytes: number;
  forwardHeaders: readonly string[];
  retryAfterSeconds: number;
  /** Tokens, businessId binding and the authenticate hook. */
  gate: AuthGate;
  logger: Logger;
  /** The client's address and the x-forwarded-for passed on (`trustedProxies`). */
  addresses: ClientAddresses;
}

/** `application/json` or `application/<x>+json`, in UTF-8 (RFC 8259) when a charset is named. */
function isJsonContentType(header: string | undefined): boolean {
  if (header === undefined) return false;
  const [type = '', ...params] = header.split(';').map((p) => p.trim().toLowerCase());
  if (type !== 'application/json' && !/^application\/[\w.+-]+\+json$/.test(type)) return false;
  for (const param of params) {
    const [name, value] = param.split('=').map((p) => p.trim());
    if (name === 'charset' && value?.replace(/^"|"$/g, '') !== 'utf-8') return false;
  }
  return true;
}

const UTF8 = new TextDecoder('utf-8', { fatal: true });

/** Query string as a map with lower-case names (first value wins), so names match case-insensitively. */
export function parseQuery(raw: string): Record<string, string> {
  const out: Record<string, string> = {};
  if (raw === '') return out;
  // Nothing to decode: each pair is the text between two '&', as URLSearchParams would give it, without its objects.
  // (A leading '?' is one URLSearchParams drops, so such a query takes the long way.)
  if (!raw.includes('%') && !raw.includes('+') && raw.charCodeAt(0) !== 0x3f) {
    // The next '=' is looked for again only once passed, so `a&a&a...` costs one scan, not one per pair.
    let eq = raw.indexOf('=');
    for (let start = 0; start < raw.length;) {
      let end = raw.indexOf('&', start);
      if (end < 0) end = raw.length;
      if (eq >= 0 && eq < start) eq = raw.indexOf('=', start);
      if (end > start) {
        if (eq < 0 || eq > end) keepFirst(out, raw.slice(start, end), '');
        else keepFirst(out, raw.slice(start, eq), raw.slice(eq + 1, end));
      }
      start = end + 1;
    }
    return out;
  }
  for (const [key, value] of new URLSearchParams(raw)) keepFirst(out, key, value);
  return out;
}

/** An own property, so `constructor` or `__proto__` is a name like any other. */
function keepFirst(out: Record<string, string>, key: string, value: string): void {
  const k = key.toLowerCase();
  if (Object.hasOwn(out, k)) return;
  if (k === '__proto__') Object.defineProperty(out, k, { value, enumerable: true, writable: true, configurable: true });
  else out[k] = value;
}

const NO_TYPES: ReadonlySet<string> = new Set();
/** By schema object: a route's schemas live as long as its contract, and are read on every request. */
const typesBySchema = new WeakMap<object, ReadonlySet<string>>();

function schemaTypes(schema: unknown): ReadonlySet<string> {
  if (typeof schema !== 'object' || schema === null) return NO_TYPES;
  let types = typesBySchema.get(schema);
  if (types === undefined) {
    types = typesIn(schema);
    typesBySchema.set(schema, types);
  }
  return types;
}

function typesIn(schema: object): Set<string> {
  const types = new Set<string>();
  const visit = (s: unknown): void => {
    if (typeof s !== 'object' || s === null) return;
    const x = s as { type?: unknown; anyOf?: unknown[]; const?: unknown };
    if (typeof x.type === 'string') types.add(x.type);
    else if (Array.isArray(x.type)) for (const t of x.type) types.add(String(t));
    else if (x.const !== undefined) types.add(typeof x.const);
    if (Array.isArray(x.anyOf)) x.anyOf.forEach(visit);
  };
  visit(schema);
  return types;
}

/** A query or header string turned into the scalar the schema asks for; left as is when it cannot be. */
export function coerce(value: string, schema: unknown): unknown {
  const types = schemaTypes(schema);
  if (types.has('string')) return value;
  if ((types.has('integer') || types.has('number')) && value.trim() !== '') {
    const n = Number(value);
    if (Number.isFinite(n)) return n;
  }
  if (types.has('boolean')) {
    if (value === 'true' || value === '1') return true;
    if (value === 'false' || value === '0') return false;
  }
  if (types.has('null') && (value === '' || value === 'null')) return null;
  return value;
}

function firstHeader(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

export class HttpApi {
  readonly #rpc: RpcClient;
  readonly #o: HttpApiOptions;

  constructor(rpc: RpcClient, options: HttpApiOptions) {
    this.#rpc = rpc;
    this.#o = options;
  }

  /**
   * Serves a request that matched a route. Returns what to call when the
   * response closes (the gateway's one 'close' listener): it observes the
   * request and ends its span.
   */
  handle(req: IncomingMessage, res: ServerResponse, match: RouteMatch, query: Record<string, string>, path: string): () => void {
    // By route template, never by path: a label per URL would grow without bound.
    const startedAt = performance.now();
    const route = match.route;
    const { path: template, verb } = route.method;
    // The client's traceparent, if any, is the parent of this request's span and of the call it makes.
    const traced = startSpan(route.spanName, SpanKind.SERVER, contextFromHeaders(req.headers), route.spanAttributes);
    const closed = (): void => {
      // A response cut off before it finished (the client left) is not a request served: no observation.
      if (res.writableFinished) {
        observeHttp(template, verb, res.statusCode, (performance.now() - startedAt) / 1000);
        traced.span.setAttribute('http.response.status_code', res.statusCode);
      }
      endSpan(traced.span, res.statusCode >= 500 ? String(res.statusCode) : undefined);
    };
    const given = givenBusinessIds(query, req.headers, match.pathParams);
    for (const id of given) {
      const problem = businessIdProblem(id);
      if (problem !== undefined) {
        req.resume();
        sendError(res, new WeftError('BadRequest', problem), this.#o.retryAfterSeconds);
        return closed;
      }
    }
    const gate = this.#o.gate;
    const withBody = (body: unknown): void => {
      if (!gate.active) {
        this.#call(req, res, match, query, body, undefined, traced.ctx, path);
        return;
      }
      void gate
        .admit({
          kind: 'http',
          method: req.method ?? 'GET',
          path,
          params: match.pathParams,
          headers: req.headers,
          query,
          remoteAddress: req.socket.remoteAddress ?? '',
          givenBusinessIds: given,
        })
        .then((result) => {
          if ('error' in result) sendError(res, result.error, this.#o.retryAfterSeconds, result.headers);
          else this.#call(req, res, match, query, body, result, traced.ctx, path);
        });
    };
    if (route.bodyParam === undefined) {
      req.resume();
      withBody(undefined);
      return closed;
    }
    this.#readJson(req, res, withBody);
    return closed;
  }

  /** An error that is not a weft error is a bug: logged, and answered as a ServerError that says nothing of it. */
  #fail(res: ServerResponse, e: unknown, path: string): void {
    const error = toWeftError(e);
    if (error.code === 'ServerError') this.#o.logger.error({ err: e, path }, 'unexpected error serving a request');
    sendError(res, error, this.#o.retryAfterSeconds);
  }

  #call(
    req: IncomingMessage,
    res: ServerResponse,
    match: RouteMatch,
    query: Record<string, string>,
    body: unknown,
    admission: Admission | undefined,
    traceContext: Context,
    path: string,
  ): void {
    try {
      const args = this.#args(req, match, query, body, admission);
      // A callback, not a promise: a request makes no promise, resolving functions or await.
      this.#rpc.start(match.route.target, args, this.#callOptions(req, admission, traceContext), (error, result) => {
        if (error !== undefined) this.#fail(res, error, path);
        else this.#succeed(res, result, path);
      });
    } catch (e) {
      this.#fail(res, e, path);
    }
  }

  #succeed(res: ServerResponse, result: unknown, path: string): void {
    try {
      sendJson(res, 200, successBody(result));
    } catch (e) {
      // A result JSON cannot hold (a BigInt, a cycle): the service's bug, answered as one.
      this.#fail(res, e, path);
    }
  }

  #args(req: IncomingMessage, match: RouteMatch, query: Record<string, string>, body: unknown, admission: Admission | undefined): unknown[] {
    const { route, pathParams } = match;
    const tokens = this.#o.gate.tokens;
    // With tokens, the token is not the service's to see; the businessId is the token's.
    const seenQuery = tokens ? withoutToken(query) : query;
    const tokenBusinessId = tokens ? admission?.businessId : undefined;
    const params = route.method.params;
    const args = new Array<unknown>(params.length);
    for (let i = 0; i < params.length; i++) args[i] = this.#bind(params[i]!, req, seenQuery, pathParams, body, tokenBusinessId);
    return args;
  }

  #callOptions(req: IncomingMessage, admission: Admission | undefined, traceContext: Context): CallOptions {
    const tokens = this.#o.gate.tokens;
    const headers: Record<string, string> = {};
    for (const name of this.#o.forwardHeaders) {
      const raw = req.headers[name];
      if (tokens && isTokenHeader(name, raw)) continue;
      const v = firstHeader(raw);
      if (v !== undefined) headers[name] = v;
    }
    const remote = req.socket.remoteAddress;
    // A client's own x-forwarded-for is believed only from a trusted proxy; the peer is always appended.
    if (remote !== undefined) headers['x-forwarded-for'] = this.#o.addresses.forwardedFor(remote, req.headers);
    else delete headers['x-forwarded-for'];
    if (admission?.identity !== undefined) headers[IDENTITY_HEADER] = encodeIdentity(admission.identity);
    if (admission?.hookHeaders !== undefined) Object.assign(headers, admission.hookHeaders);
    const requestId = firstHeader(req.headers['x-request-id']);
    return requestId !== undefined && /^[\w.:-]{1,128}$/.test(requestId) ? { headers, traceId: requestId, traceContext } : { headers, traceContext };
  }

  #bind(
    p: ParamDescriptor,
    req: IncomingMessage,
    query: Record<string, string>,
    pathParams: Record<string, string>,
    body: unknown,
    tokenBusinessId: string | undefined,
  ): unknown {
    // The admission checked that any businessId the client gave is the token's; none given, the token's is used.
    if (tokenBusinessId !== undefined && p.from !== 'body' && isBusinessIdName(p.name)) return coerce(tokenBusinessId, p.schema);
    switch (p.from) {
      case 'body':
        return body;
      case 'path': {
        const v = pathParams[p.name];
        return v === undefined ? undefined : coerce(v, p.schema);
      }
      case 'query': {
        const v = query[p.name.toLowerCase()];
        return v === undefined ? undefined : coerce(v, p.schema);
      }
      case 'header': {
        const v = firstHeader(req.headers[p.name.toLowerCase()]);
        return v === undefined ? undefined : coerce(v, p.schema);
      }
    }
  }

  #readJson(req: IncomingMessage, res: ServerResponse, done: (body: unknown) => void): void {
    const limit = this.#o.maxBodyBytes;
    const tooLarge = (): void => {
      res.setHeader('connection', 'close');
      sendError(res, new WeftError('PayloadTooLarge', `request body is over the limit of ${limit} bytes`), this.#o.retryAfterSeconds);
      // Stop reading; the connection closes after the answer.
      req.unpipe();
      req.pause();
      res.once('finish', () => req.socket.destroy());
    };
    const declared = Number(req.headers['content-length']);
    if (Number.isFinite(declared) && declared > limit) {
      tooLarge();
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let over = false;
    req.on('data', (chunk: Buffer) => {
      if (over) return;
      size += chunk.length;
      if (size > limit) {
        over = true;
        tooLarge();
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => {
      if (over) return;
      if (size === 0) {
        done(undefined);
        return;
      }
      if (!isJsonContentType(req.headers['content-type'])) {
        const given = req.headers['content-type'] ?? 'none';
        sendError(
          res,
          new WeftError('UnsupportedMediaType', `request body must be JSON (Content-Type: application/json), not ${JSON.stringify(given)}`),
          this.#o.retryAfterSeconds,
        );
        return;
      }
      let text: string;
      try {
        text = UTF8.decode(Buffer.concat(chunks, size));
      } catch {
        sendError(res, new WeftError('BadRequest', 'request body is not valid UTF-8'), this.#o.retryAfterSeconds);
        return;
      }
      let parsed: unknown;
      try {
        parsed = JSON.parse(text);
      } catch (e) {
        sendError(res, new WeftError('BadRequest', `request body is not valid JSON: ${(e as Error).message}`), this.#o.retryAfterSeconds);
        return;
      }
      done(parsed);
    });
    req.on('error', () => res.destroy());
  }
}
