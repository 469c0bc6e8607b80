/**
 * Every default of weft, with its unit, in one place. The defaults of
 * options come from their schemas (node/, host/, gateway/ *-options.ts); the
 * rest are the fixed LIMITS (limits.ts), listed here with why they are fixed.
 * docs/options.md shows them all (its "All defaults" table is generated from
 * this list). It sits at the top layer because it gathers every role.
 */
import type { TSchema } from '@sinclair/typebox';
import { GATEWAY_OWN_OPTION_PROPERTIES } from './gateway/gateway-options.js';
import { HOST_OWN_OPTION_PROPERTIES } from './host/host-options.js';
import { NODE_OPTION_PROPERTIES } from './node/node-options.js';
import { REDIS_CLUSTER_OPTION_PROPERTIES } from './node/redis-cluster-options.js';
import { LIMITS } from './limits.js';
import { DEFAULT, optionInfo, type Unit } from './options/schema.js';

/** One default: its value and unit, and the option that sets it (or why nothing does). */
export interface DefaultEntry<V> {
  readonly value: V;
  readonly unit: Unit | undefined;
  readonly setBy: { readonly option: string; readonly of: string | undefined } | { readonly fixed: string };
}

/** The default of a declared option; `of` says whose option it is when not every node's. */
function fromOption<S extends TSchema & { readonly [DEFAULT]: unknown }>(schema: S, option: string, of?: string): DefaultEntry<S[typeof DEFAULT]> {
  return { value: schema[DEFAULT], unit: optionInfo(schema)?.unit, setBy: { option, of } };
}

function fixed<V>(value: V, unit: Unit, why: string): DefaultEntry<V> {
  return { value, unit, setBy: { fixed: why } };
}

const node = NODE_OPTION_PROPERTIES;
const host = HOST_OWN_OPTION_PROPERTIES;
const gateway = GATEWAY_OWN_OPTION_PROPERTIES;
const redis = REDIS_CLUSTER_OPTION_PROPERTIES;

/** Each key of DEFAULTS with where its value comes from, in the order docs/options.md lists them. */
export const DEFAULT_ENTRIES = {
  listenHost: fromOption(node.listen.properties.host, 'listen.host'),
  listenPort: fromOption(node.listen.properties.port, 'listen.port'),
  callTimeoutMs: fromOption(node.callTimeoutMs, 'callTimeoutMs'),
  maxAttempts: fromOption(node.maxAttempts, 'maxAttempts'),
  breakerFailureThreshold: fromOption(node.breaker.properties.failureThreshold, 'breaker.failureThreshold'),
  breakerResetAfterMs: fromOption(node.breaker.properties.resetAfterMs, 'breaker.resetAfterMs'),
  connectTimeoutMs: fromOption(node.connectTimeoutMs, 'connectTimeoutMs'),
  backoffInitialMs: fixed(LIMITS.backoffInitialMs, 'ms', 'first wait before dialing a failed peer again (doubles per failure, with jitter)'),
  backoffMaxMs: fixed(LIMITS.backoffMaxMs, 'ms', 'longest wait between dials'),
  handshakeTimeoutMs: fixed(LIMITS.handshakeTimeoutMs, 'ms', 'a link handshake must finish within this'),
  maxHandshakingLinks: fixed(
    LIMITS.maxHandshakingLinks,
    'links',
    'inbound links a node holds in handshake (not yet authenticated) at once; a connection beyond is closed at once',
  ),
  linkWarningIntervalMs: fixed(
    LIMITS.linkWarningIntervalMs,
    'ms',
    'warnings a peer can cause at will (link refused, bad frame, over the handshake cap) are logged at most once per this per node, with a count of the rest',
  ),
  linkPingIntervalMs: fromOption(node.linkPingIntervalMs, 'linkPingIntervalMs'),
  maxFrameBytes: fromOption(node.maxFrameBytes, 'maxFrameBytes'),
  maxLinkQueuedBytes: fixed(
    LIMITS.maxLinkQueuedBytes,
    'bytes',
    'outbound bytes a link may hold unsent; beyond it the link refuses new frames with `Overloaded` until it drains',
  ),
  maxConcurrentCalls: fromOption(host.maxConcurrentCalls, 'maxConcurrentCalls', 'host'),
  // Hosts and gateways share one default (DEFAULT_STOP_TIMEOUT_MS).
  stopTimeoutMs: fromOption(host.stopTimeoutMs, 'stopTimeoutMs'),
  registryTtlMs: fromOption(redis.ttlMs, 'ttlMs', 'redisCluster'),
  registryHeartbeatMs: fromOption(redis.heartbeatMs, 'heartbeatMs', 'redisCluster'),
  redisPrefix: fromOption(redis.prefix, 'prefix', 'redisCluster'),
  httpHost: fromOption(gateway.http.properties.host, 'http.host', 'gateway'),
  httpPort: fromOption(gateway.http.properties.port, 'http.port', 'gateway'),
  maxBodyBytes: fromOption(gateway.maxBodyBytes, 'maxBodyBytes', 'gateway'),
  forwardHeaders: fromOption(gateway.forwardHeaders, 'forwardHeaders', 'gateway'),
  maxMessageBytes: fromOption(gateway.websocket.properties.maxMessageBytes, 'websocket.maxMessageBytes'),
  maxBufferedBytes: fromOption(gateway.websocket.properties.maxBufferedBytes, 'websocket.maxBufferedBytes'),
  wsPingIntervalMs: fromOption(gateway.websocket.properties.pingIntervalMs, 'websocket.pingIntervalMs'),
  sessionOpenTimeoutMs: fromOption(gateway.websocket.properties.sessionOpenTimeoutMs, 'websocket.sessionOpenTimeoutMs'),
  maxQueuedMessages: fromOption(gateway.websocket.properties.maxQueuedMessages, 'websocket.maxQueuedMessages'),
  maxHandshakesPerIpPerSecond: fromOption(gateway.websocket.properties.maxHandshakesPerIpPerSecond, 'websocket.maxHandshakesPerIpPerSecond'),
  maxSessionsPerIp: fromOption(gateway.websocket.properties.maxSessionsPerIp, 'websocket.maxSessionsPerIp'),
  maxSessionsPerBusinessId: fromOption(gateway.websocket.properties.maxSessionsPerBusinessId, 'websocket.maxSessionsPerBusinessId'),
  maxRoomsPerSession: fromOption(gateway.websocket.properties.maxRoomsPerSession, 'websocket.maxRoomsPerSession'),
  maxRoomNameLength: fromOption(gateway.websocket.properties.maxRoomNameLength, 'websocket.maxRoomNameLength'),
  retryAfterSeconds: fromOption(gateway.retryAfterSeconds, 'retryAfterSeconds', 'gateway'),
  authTimeoutMs: fromOption(gateway.authTimeoutMs, 'authTimeoutMs', 'gateway'),
  pushAckTimeoutMs: fixed(LIMITS.pushAckTimeoutMs, 'ms', 'a push waits at most this long for gateways to say how many sessions they reached'),
  directoryLoadBufferMaxBytes: fixed(
    LIMITS.directoryLoadBufferMaxBytes,
    'bytes',
    'session directory updates a replica holds while it loads a service (Redis); past it they are dropped and the service is loaded again',
  ),
};

type Defaults = { readonly [K in keyof typeof DEFAULT_ENTRIES]: (typeof DEFAULT_ENTRIES)[K]['value'] };

/** Every default of weft by name (durations in ms, sizes in bytes, as the names say). */
export const DEFAULTS: Defaults = Object.freeze(
  Object.fromEntries(Object.entries(DEFAULT_ENTRIES).map(([key, entry]) => [key, entry.value])) as Defaults,
);
