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
}

const storage = new AsyncLocalStorage<CallContext>();

/**
 * The context of the call being served, or undefined outside a call.
 *
 * @example
 * greet(name) { const lang = currentContext()?.headers['accept-language']; ... }
 */
export function currentContext(): CallContext | undefined {
  return storage.getStore();
}

export function runInContext<T>(context: CallContext, fn: () => T): T {
  return storage.run(context, fn);
}

export function newTraceId(): string {
  return randomBytes(12).toString('hex');
}
