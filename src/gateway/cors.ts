/**
 * CORS for HTTP routes (the gateway's `cors` option): a preflight `OPTIONS`
 * from an allowed origin is answered 204; an answer to an allowed origin
 * carries `Access-Control-Allow-Origin` (and `Vary: Origin` when it names
 * one). Without the option, nothing here runs: no CORS headers at all, so a
 * browser keeps a page of another site from reading an answer.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';

export interface CorsSettings {
  readonly origins: '*' | readonly string[];
  readonly credentials: boolean;
  readonly maxAgeSeconds: number;
}

/** Header names as a preflight may ask for them. */
const HEADER_LIST = /^[!#$%&'*+\-.0-9A-Z^_`|~a-z]+(\s*,\s*[!#$%&'*+\-.0-9A-Z^_`|~a-z]+)*$/;
const DEFAULT_ALLOWED_HEADERS = 'authorization, content-type, x-request-id, traceparent';
/** Headers of gateway answers a page may read. */
const EXPOSED_HEADERS = 'retry-after, www-authenticate';

export class Cors {
  readonly #s: CorsSettings;
  readonly #origins: ReadonlySet<string> | undefined;

  constructor(settings: CorsSettings) {
    this.#s = settings;
    this.#origins = settings.origins === '*' ? undefined : new Set(settings.origins);
  }

  #allowed(origin: string | undefined): origin is string {
    return origin !== undefined && (this.#origins === undefined || this.#origins.has(origin));
  }

  /** Adds the CORS headers an answer to `req` carries (none for a request without an allowed Origin). */
  decorate(req: IncomingMessage, res: ServerResponse): void {
    const origin = req.headers.origin;
    if (this.#origins !== undefined) res.setHeader('vary', 'Origin');
    if (!this.#allowed(origin)) return;
    res.setHeader('access-control-allow-origin', this.#origins === undefined ? '*' : origin);
    if (this.#s.credentials) res.setHeader('access-control-allow-credentials', 'true');
    res.setHeader('access-control-expose-headers', EXPOSED_HEADERS);
  }

  /** Is `req` a preflight from an allowed origin? (Call decorate first.) */
  isPreflight(req: IncomingMessage): boolean {
    return req.method === 'OPTIONS' && this.#allowed(req.headers.origin) && req.headers['access-control-request-method'] !== undefined;
  }

  /** Answers a preflight for a path served with `methods`. */
  preflight(req: IncomingMessage, res: ServerResponse, methods: readonly string[]): void {
    const asked = req.headers['access-control-request-headers'];
    const headers = asked !== undefined && HEADER_LIST.test(asked.trim()) ? asked.trim().toLowerCase() : DEFAULT_ALLOWED_HEADERS;
    req.resume();
    res.writeHead(204, {
      'access-control-allow-methods': methods.join(', '),
      'access-control-allow-headers': headers,
      'access-control-max-age': String(Math.floor(this.#s.maxAgeSeconds)),
    });
    res.end();
  }
}
