/**
 * Options of `createGateway`: node options plus HTTP, WebSocket and docs.
 */
import type { Static } from '@sinclair/typebox';
import { invalidOption } from '../errors.js';
import { MAX_ROOM_NAME_LENGTH } from '../protocol/room-names.js';
import type { Authenticate } from './auth/auth-request.js';
import { IDENTITY_HEADER } from './auth/identity-header.js';
import { MIN_SECRET_BYTES, checkJwtSettings } from './auth/jwt-keys.js';
import { DEFAULT_STOP_TIMEOUT_MS, NODE_OPTION_PROPERTIES } from '../node/node-options.js';
import {
  anyString,
  custom,
  defineOptions,
  flag,
  nonEmptyString,
  nonNegativeNumber,
  port,
  positiveInteger,
  positiveNumber,
  record,
  section,
  stringList,
  type Resolved,
} from '../options/schema.js';

/**
 * Room a link frame needs around one WebSocket message (frame header, ids,
 * the session's business id), so a message at the limit still fits.
 */
export const WS_FRAME_OVERHEAD_BYTES = 4096;

/** Typed as a list, not a tuple, so `DEFAULTS.forwardHeaders` stays `readonly string[]`. */
const DEFAULT_FORWARD_HEADERS: readonly string[] = ['authorization', 'accept-language', 'x-request-id', 'traceparent', 'user-agent'];

/** `'*'`, or a list of origins (`https://app.example.com`). */
export type OriginList = '*' | readonly string[];

function isOriginList(value: unknown): value is OriginList {
  return value === '*' || (Array.isArray(value) && value.every((v) => typeof v === 'string'));
}

/** An origin as a browser sends it: scheme, host and port only, lower case, no path. */
function originProblem(origin: string): string | undefined {
  let url: URL;
  try {
    url = new URL(origin);
  } catch {
    return `${JSON.stringify(origin)} is not an origin (scheme://host[:port])`;
  }
  if (url.origin !== origin) return `${JSON.stringify(origin)} is not an origin as a browser sends it; write ${JSON.stringify(url.origin)}`;
  return undefined;
}

function checkOrigins(name: string, origins: OriginList): void {
  if (origins === '*') return;
  for (const origin of origins) {
    const problem = originProblem(origin);
    if (problem !== undefined) throw invalidOption(name, problem);
  }
}

function isClaims(value: unknown): value is Readonly<Record<string, string>> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && Object.values(value).every((v) => typeof v === 'string');
}

function isAuthenticate(value: unknown): value is Authenticate {
  return typeof value === 'function';
}

/** What a gateway adds to the node options, in the order docs/options.md lists them. */
export const GATEWAY_OWN_OPTION_PROPERTIES = {
  http: section({
    host: nonEmptyString({ unit: 'address', default: '127.0.0.1', description: 'Where HTTP and WebSocket clients connect.' }),
    port: port({ default: 5_000, description: '`0` picks a free port (read it from `gateway.port`).' }),
  }),
  maxBodyBytes: positiveInteger({
    unit: 'bytes',
    default: 1024 * 1024,
    description: 'Largest JSON request body; over it, 413 `PayloadTooLarge`.',
  }),
  forwardHeaders: stringList({
    unit: 'header names',
    default: DEFAULT_FORWARD_HEADERS,
    // Node gives incoming header names in lower case, so that is how they are looked up.
    normalize: (names: readonly string[]) => names.map((name) => name.toLowerCase()),
    description:
      "Client headers passed on to services: HTTP ones (in `currentContext().headers`) and WebSocket ones (in `session.headers`), lower-case names; no other client header reaches a service (cookies included). The gateway always adds `x-forwarded-for`, and `x-weft-identity` when it verified a token; a client's own `x-weft-identity` is never passed on, and with `auth.jwt` neither is a Bearer `authorization`.",
  }),
  allowedOrigins: custom({
    is: isOriginList,
    docType: "string array or `'*'`",
    expected: "an array of origins or '*'",
    defaultNote: "none: only the gateway's own origin (that of the `Host` header)",
    description:
      "Browser origins (`https://app.example.com`, exact) that may open WebSocket sessions, or `'*'` for any. A handshake with another `Origin` is refused with 403 `Unauthorized`; one without `Origin` (not a browser) passes. See docs/security.md.",
  }),
  cors: record(
    {
      origins: custom({
        is: isOriginList,
        docType: "string array or `'*'`",
        expected: "an array of origins or '*'",
        required: true,
        description: "Origins (exact) whose pages may call HTTP routes, or `'*'` for any.",
      }),
      credentials: flag({
        default: false,
        description: "Send `Access-Control-Allow-Credentials: true` (cookies, HTTP auth); not with `origins: '*'`.",
      }),
      maxAgeSeconds: nonNegativeNumber({ unit: 'seconds', default: 600, description: 'How long a browser may cache a preflight answer.' }),
    },
    {
      description:
        'CORS for HTTP routes: preflight `OPTIONS` answered 204, `Access-Control-Allow-Origin` on answers to allowed origins. Without it, no CORS headers (browsers keep cross-site pages from reading answers) and `OPTIONS` is 404.',
    },
  ),
  trustedProxies: stringList({
    default: [],
    description:
      "Addresses of proxies in front of the gateway. Only from these is a client's `X-Forwarded-For` believed: the client's address (`remoteAddress`) is then the last forwarded one that is not a trusted proxy. From anyone else, the peer is the client and its `X-Forwarded-For` is dropped.",
  }),
  authenticate: custom({
    is: isAuthenticate,
    docType: '`(request: AuthRequest) => void | headers | Promise<...>`',
    expected: 'a function',
    defaultNote: 'none (no check)',
    description:
      "Runs before every HTTP request and WebSocket handshake reaches a service (after the token check of `auth.jwt`; it sees the request's `businessId` and `identity`). Throw `WeftError('Unauthenticated' | 'Unauthorized', ...)` to refuse (401 / 403); return headers (e.g. `{ 'x-user-id': '42' }`) to pass on to the service. Held to `authTimeoutMs`.",
  }),
  auth: record(
    {
      jwt: record(
        {
          secret: nonEmptyString({
            description: `Shared HMAC key (HS256 unless \`algorithms\` says otherwise), at least ${MIN_SECRET_BYTES} bytes. One of \`secret\`, \`publicKey\`, \`jwksUrl\`.`,
          }),
          publicKey: nonEmptyString({
            description: 'PEM public key (or certificate) tokens are signed for: RSA, P-256/384/521 or Ed25519.',
          }),
          jwksUrl: nonEmptyString({
            description:
              'URL of a JSON Web Key Set (https, or http to a loopback address): fetched on first use, cached, fetched again when stale or when a token names a key it does not hold (key rotation).',
          }),
          algorithms: stringList({
            defaultNote: "`HS256` for a secret; the key's own (`RS256`, `ES256`...) for a PEM; `RS256`, `ES256`, `EdDSA` for a JWKS",
            description: 'Algorithms a token may be signed with. HMAC ones only with a secret, asymmetric ones only with a key.',
          }),
          issuer: nonEmptyString({ description: 'Required `iss` of tokens.' }),
          audience: nonEmptyString({ description: 'Required `aud` of tokens (one of them, when `aud` is a list).' }),
          clockToleranceSeconds: nonNegativeNumber({
            unit: 'seconds',
            default: 5,
            description: 'Leeway for `exp` and `nbf`; a session closes with 4001 at `exp` plus this.',
          }),
          businessIdClaim: nonEmptyString({
            default: 'sub',
            description: 'The claim that is the businessId: a client-given businessId that differs is refused (403); none given, this one is used.',
          }),
          requireExpiry: flag({ default: true, description: 'Refuse tokens without `exp` (401).' }),
          jwksCooldownMs: nonNegativeNumber({
            unit: 'ms',
            default: 30_000,
            description: 'After a JWKS fetch, how long a token naming an unknown key waits before it may cause another fetch.',
          }),
          jwksCacheMaxAgeMs: positiveNumber({
            unit: 'ms',
            default: 600_000,
            description: 'A JWKS older than this is fetched again before use.',
          }),
        },
        {
          description:
            "Built-in token (JWT) authentication of every HTTP request and WebSocket handshake: 401 without a valid token, 403 for a businessId that is not the token's. See docs/security.md.",
        },
      ),
    },
    { description: 'Authentication built into the gateway.' },
  ),
  authTimeoutMs: positiveNumber({
    unit: 'ms',
    default: 5_000,
    description: 'Time token verification (a JWKS fetch included) and `authenticate` have together; then the request or handshake gets 504.',
  }),
  websocket: section({
    maxMessageBytes: positiveInteger({
      unit: 'bytes',
      default: 1024 * 1024,
      description: `Largest inbound WebSocket message; over it, close 1009. Must be at least ${WS_FRAME_OVERHEAD_BYTES} bytes under \`maxFrameBytes\`.`,
    }),
    maxBufferedBytes: positiveInteger({
      unit: 'bytes',
      default: 4 * 1024 * 1024,
      description: 'Outbound bytes a client may leave unread before it is closed 1008 (slow consumer).',
    }),
    pingIntervalMs: positiveNumber({
      unit: 'ms',
      default: 10_000,
      description: 'Each session is pinged once per interval; a client silent for two intervals is closed.',
    }),
    sessionOpenTimeoutMs: positiveNumber({
      unit: 'ms',
      default: 5_000,
      description:
        'Time a host has to accept a new session (run `onOpen`); then the handshake gets 504, and the host, which learns this deadline in `SessionOpen`, gives the session up.',
    }),
    maxQueuedMessages: positiveInteger({
      unit: 'messages',
      default: 256,
      description:
        "Client messages of one session that may wait for its `onMessage` (sent to its host, not yet handled). There the gateway stops reading the client's socket, and reads again as the handler catches up: nothing is dropped. A host closes a session past it with 1013.",
    }),
    maxHandshakesPerIpPerSecond: positiveNumber({
      unit: 'per second',
      default: 50,
      description:
        'WebSocket handshakes one client address may start per second (a token bucket, bursts up to this many), checked before the token and before any host; over it, 429 with `Retry-After`.',
    }),
    maxSessionsPerIp: positiveInteger({
      unit: 'sessions',
      default: 1000,
      description: 'Sessions (open, or being opened) one client address may hold on this gateway; over it, 429 with `Retry-After`.',
    }),
    maxSessionsPerBusinessId: positiveInteger({
      unit: 'sessions',
      default: 100,
      description:
        'Sessions (open, or being opened) one businessId may hold on this gateway, all WebSocket services together; over it, 429 with `Retry-After`.',
    }),
    maxRoomsPerSession: positiveInteger({
      unit: 'rooms',
      default: 100,
      description: 'Rooms one session may be in at once; a `join` past it rejects with `BadRequest`.',
    }),
    maxRoomNameLength: positiveInteger({
      unit: 'characters',
      default: 200,
      description: `Longest room name a \`join\` may use (at most ${MAX_ROOM_NAME_LENGTH}); a longer one rejects with \`BadRequest\`.`,
    }),
  }),
  stopTimeoutMs: positiveNumber({
    unit: 'ms',
    default: DEFAULT_STOP_TIMEOUT_MS,
    description: 'Time `stop()` gives requests and sessions in flight.',
  }),
  retryAfterSeconds: positiveInteger({
    unit: 'seconds',
    default: 2,
    description: '`Retry-After` header on 503 answers, and on 429 for the WebSocket session limits.',
  }),
  goneRouteGraceMs: positiveNumber({
    unit: 'ms',
    default: 60_000,
    description:
      'A route whose service has no live instance answers 503 (retry later) for this long, as during a rolling restart; after it, the route is removed and answers 404.',
  }),
  demo: record(
    {
      wsPath: nonEmptyString({ required: true, description: 'WebSocket path of the service, e.g. `/api/wstest`.' }),
      echoPath: nonEmptyString({ required: true, description: 'HTTP path of its echo method, e.g. `/api/wstest/echo`.' }),
      notifyPath: nonEmptyString({
        description:
          'HTTP path of a method that pushes to the whole businessId with history, e.g. `/api/wstest/notify`; the page then shows positions and resume.',
      }),
      chatPath: nonEmptyString({
        description:
          "WebSocket path of a chat room service, with a `{room}` segment, e.g. `/api/{room}/chat`; the page then shows a chat room: sessions join the room, send a typed `say` message and get its reply, and receive the room's `said` pushes.",
      }),
      issueTokens: flag({
        default: false,
        description:
          'Serve `GET /demo/token?businessId=...`, which signs a token for any businessId with `auth.jwt.secret`: lets anyone in, so for the demo only.',
      }),
    },
    { description: 'Serve the demo page at `/demo` for that WebSocket service and echo method.' },
  ),
  openApi: section({
    title: anyString({ default: 'weft gateway', description: 'Title of the document at `/swagger.json`.' }),
    version: anyString({ default: '1.0.0', description: 'Version of the document at `/swagger.json`.' }),
  }),
  dashboard: record(
    {
      requireClaim: custom({
        is: isClaims,
        docType: 'object of strings',
        expected: 'an object whose values are strings',
        defaultNote: 'none: whoever the gateway admits',
        description:
          "Claims the token must hold, exactly (e.g. `{ role: 'admin' }`); another token gets 403. Needs `auth.jwt`, whose verified claims these are.",
      }),
      allowOpen: flag({
        default: false,
        description:
          'Serve the dashboard though the gateway has neither `auth.jwt` nor `authenticate`, so to anyone who can reach it (logged at warn). Without it, such a gateway refuses to start with `dashboard` set.',
      }),
      topBusinessIds: positiveInteger({
        default: 10,
        description: 'How many businessIds the dashboard lists, those with the most sessions on this gateway first.',
      }),
    },
    {
      description:
        'Serve a live dashboard at `GET /dashboard` (its data at `GET /dashboard/data`): nodes, services and routes, sessions per service and the top businessIds on this gateway, push and RPC rates, links. Behind the same auth as HTTP routes; see docs/operations.md and docs/security.md.',
    },
  ),
  metrics: flag({
    default: true,
    description:
      'Serve the Prometheus metrics of this process at `GET /metrics` (docs/metrics.md): counts and durations, service and method names, no businessId or payload.',
  }),
};

export const GATEWAY_OPTIONS = defineOptions({ ...NODE_OPTION_PROPERTIES, ...GATEWAY_OWN_OPTION_PROPERTIES }, (options) => {
  // A message travels to its host inside one link frame.
  if (options.websocket.maxMessageBytes > options.maxFrameBytes - WS_FRAME_OVERHEAD_BYTES) {
    throw invalidOption(
      'websocket.maxMessageBytes',
      `must leave room in a link frame: at most maxFrameBytes - ${WS_FRAME_OVERHEAD_BYTES} = ${options.maxFrameBytes - WS_FRAME_OVERHEAD_BYTES}, got ${options.websocket.maxMessageBytes}`,
    );
  }
  if (options.websocket.maxRoomNameLength > MAX_ROOM_NAME_LENGTH) {
    throw invalidOption('websocket.maxRoomNameLength', `must be at most ${MAX_ROOM_NAME_LENGTH}, got ${options.websocket.maxRoomNameLength}`);
  }
  const jwt = options.auth?.jwt;
  if (jwt !== undefined) checkJwtSettings(jwt);
  if (options.demo?.issueTokens === true && jwt?.secret === undefined) {
    throw invalidOption('demo.issueTokens', 'needs auth.jwt.secret to sign the tokens with');
  }
  const dashboard = options.dashboard;
  if (dashboard?.requireClaim !== undefined && jwt === undefined) {
    throw invalidOption('dashboard.requireClaim', 'needs auth.jwt: the claims are those of the verified token');
  }
  if (dashboard !== undefined && !dashboard.allowOpen && jwt === undefined && options.authenticate === undefined) {
    throw invalidOption(
      'dashboard.allowOpen',
      'the gateway has neither auth.jwt nor authenticate, so the dashboard would be open to anyone who reaches it: set auth, or dashboard.allowOpen: true to serve it open',
    );
  }
  if (options.allowedOrigins !== undefined) checkOrigins('allowedOrigins', options.allowedOrigins);
  const cors = options.cors;
  if (cors !== undefined) {
    checkOrigins('cors.origins', cors.origins);
    if (cors.origins === '*' && cors.credentials) {
      throw invalidOption(
        'cors.credentials',
        "cannot go with origins '*': every site could read answers with the user's credentials; list the origins",
      );
    }
  }
  if (options.forwardHeaders.includes(IDENTITY_HEADER)) {
    throw invalidOption('forwardHeaders', `cannot hold ${IDENTITY_HEADER}: the gateway sets it from the verified token, never from the client`);
  }
});

/** Options of `createGateway`; see docs/options.md. */
export interface GatewayOptions extends Static<typeof GATEWAY_OPTIONS> {}

/** Gateway options once resolved: defaults filled in, frozen. */
export type ResolvedGatewayOptions = Resolved<typeof GATEWAY_OPTIONS.properties>;
