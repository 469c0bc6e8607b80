/**
 * The context that travels with a call: trace id, calling node, the client
 * headers the gateway forwarded, and the deadline. Nested calls inherit it.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { randomBytes } from 'node:crypto';

export interface CallContext {
  /** Same for every call of one request, across nodes. */
  readonly traceId: string;
  /** Node id of the direct caller. */
  readonly callerNodeId: string;
  /** Client headers forwarded by the gateway, lower-case names. */
  readonly headers: Readonly<Record<string, string>>;
  /** Epoch ms after which the caller has given up; nested calls get what is left. */
  readonly deadline: number;
  /** W3C `traceparent` of the span serving this call, for nested calls (OpenTelemetry); absent without one. */
  readonly traceparent?: string;
  /**
   * The same on every attempt of this call: when a caller fails over and the
   * method runs again on another host, a push it makes is kept once.
   */
  readonly callKey?: string;
}

const storage = new AsyncLocalStorage<CallContext>();

/**
 * The context of the call being served, or undefined outside a call.
 *
 * @example
 * implement(IGreeterAppService, {
 *   greet: (name) => (currentContext()?.headers['accept-language']?.startsWith('fr') ? `bonjour ${name}` : `hello ${name}`),
 * });
 */
export function currentContext(): CallContext | undefined {
  return storage.getStore();
}

/** Calls `fn` on `self` with `args` inside `context` (no closure needed). */
export function runInContext(context: CallContext, fn: (...args: unknown[]) => unknown, self: unknown, args: unknown[]): unknown {
  return storage.run(context, callWith, fn, self, args);
}

function callWith(fn: (...args: unknown[]) => unknown, self: unknown, args: unknown[]): unknown {
  return fn.apply(self, args);
}

// A random prefix per process and a counter: unique across the cluster in
// practice, and far cheaper than random bytes on every call.
// 24 hex characters and 8 of counter: a W3C trace id (32 lower-case hex).
const traceIdPrefix = randomBytes(12).toString('hex');
let traceIdCounter = 0;

export function newTraceId(): string {
  traceIdCounter = (traceIdCounter + 1) % 0x7fffffff;
  return traceIdPrefix + traceIdCounter.toString(16).padStart(8, '0');
}

const callKeyPrefix = traceIdPrefix.slice(0, 12);
let callKeyCounter = 0;

/** A key for one call, unique across the cluster in practice (the process's random prefix and a counter). */
export function newCallKey(): string {
  callKeyCounter += 1;
  return callKeyPrefix + callKeyCounter.toString(36);
}
