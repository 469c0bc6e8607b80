/**
 * Every default of weft, with its unit, in one place; and the checks that
 * options pass once, at construction. docs/options.md lists them.
 */
import { invalidOption } from './errors.js';

export const DEFAULTS = {
  /** Link server address of a node. */
  listenHost: '127.0.0.1',
  listenPort: 0,
  /** RPC call timeout. */
  callTimeoutMs: 5_000,
  /** Instances one call may try (the first included) on transport failure. */
  maxAttempts: 3,
  /** Consecutive failures that open an endpoint's circuit, and how long it stays open. */
  breakerFailureThreshold: 5,
  breakerResetAfterMs: 5_000,
  /** Dialing a peer: give up after this long; then back off from initial to max. */
  connectTimeoutMs: 2_000,
  backoffInitialMs: 100,
  backoffMaxMs: 5_000,
  /** Link handshake must finish within this. */
  handshakeTimeoutMs: 5_000,
  /** Idle links ping this often; silent for 3 intervals means dead. */
  linkPingIntervalMs: 5_000,
  /** Largest frame body between nodes. */
  maxFrameBytes: 16 * 1024 * 1024,
  /** Bytes a link may hold unsent; beyond, it refuses frames with Overloaded until it drains. */
  maxLinkQueuedBytes: 64 * 1024 * 1024,
  /** Calls a host serves at once; beyond, Overloaded (the caller fails over). */
  maxConcurrentCalls: 10_000,
  /** Time a stopping host or gateway gives work in flight. */
  stopTimeoutMs: 10_000,
  /** Redis registry: record TTL and heartbeat (TTL + heartbeat bounds how long a dead node stays visible). */
  registryTtlMs: 6_000,
  registryHeartbeatMs: 2_000,
  redisPrefix: 'weft',
  /** Gateway HTTP. */
  httpHost: '127.0.0.1',
  httpPort: 5_000,
  maxBodyBytes: 1024 * 1024,
  /** Client headers the gateway passes on to services (lower-case). */
  forwardHeaders: ['authorization', 'accept-language', 'x-request-id', 'traceparent', 'user-agent'] as readonly string[],
  /** WebSocket front door. */
  maxMessageBytes: 1024 * 1024,
  maxBufferedBytes: 4 * 1024 * 1024,
  wsPingIntervalMs: 10_000,
  sessionOpenTimeoutMs: 5_000,
  retryAfterSeconds: 2,
  /** Outcome of a push is awaited from gateways for at most this long. */
  pushAckTimeoutMs: 5_000,
} as const;

export function checkPositive(name: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
    throw invalidOption(name, `must be a positive number, got ${JSON.stringify(value)}`);
  }
  return value;
}

export function checkPositiveInt(name: string, value: unknown): number {
  checkPositive(name, value);
  if (!Number.isInteger(value)) throw invalidOption(name, `must be an integer, got ${String(value)}`);
  return value as number;
}

export function checkPort(name: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > 65535) {
    throw invalidOption(name, `must be a port number 0-65535, got ${JSON.stringify(value)}`);
  }
  return value;
}

export function checkString(name: string, value: unknown): string {
  if (typeof value !== 'string' || value === '') throw invalidOption(name, `must be a non-empty string`);
  return value;
}

/** Rejects keys that are not options: a typo should not pass silently. */
export function checkKnownKeys(what: string, options: object, known: readonly string[]): void {
  for (const key of Object.keys(options)) {
    if (!known.includes(key)) throw invalidOption(key, `is not an option of ${what}`);
  }
}
