/**
 * Lua scripts run by SHA1: EVALSHA, then EVAL on the server that lacks the
 * script yet (NOSCRIPT: first use, a restart, a failover, another master).
 */
import { createHash } from 'node:crypto';

/** A script and its SHA1. */
export interface Script {
  readonly lua: string;
  readonly sha: string;
}

/**
 * A script to run with `runScript`.
 *
 * @example
 * const ping = script("return redis.call('PING')");
 */
export function script(lua: string): Script {
  return { lua, sha: createHash('sha1').update(lua).digest('hex') };
}

/**
 * EVALSHA, then EVAL when the server does not have the script yet. Not
 * ioredis `defineCommand`: with auto-pipelining, a command defined after
 * the connection's first commands can land in a pipeline built before it
 * was defined, which lacks it (`pipeline[functionName] is not a function`).
 */
export async function runScript<T>(sha: () => Promise<T>, lua: () => Promise<T>): Promise<T> {
  try {
    return await sha();
  } catch (e) {
    if (e instanceof Error && e.message.startsWith('NOSCRIPT')) return lua();
    throw e;
  }
}
