/**
 * History of a WebSocket service: how many of the last pushes to each
 * businessId are kept for clients that reconnect. Set per service with a
 * static `history` on its class; `false` keeps none.
 *
 * @example
 * class ChatService extends WsAppServiceBase {
 *   static override history = { maxEntries: 500, ttlMs: 300_000 };
 * }
 */
import type { Static } from '@sinclair/typebox';
import { WeftError, invalidOption } from '../errors.js';
import type { HistoryLimits } from '../history/history-store.js';
import { defineOptions, positiveInteger, positiveNumber, resolveOptions } from '../options/schema.js';

export const WS_HISTORY_OPTION_PROPERTIES = {
  maxEntries: positiveInteger({
    unit: 'pushes',
    default: 100,
    description: 'Pushes kept per businessId; a client that missed more is told it did not recover.',
  }),
  ttlMs: positiveNumber({
    unit: 'ms',
    default: 120_000,
    description: 'How long a push is kept; a client away longer is told it did not recover.',
  }),
};

export const WS_HISTORY_OPTIONS = defineOptions(WS_HISTORY_OPTION_PROPERTIES);

/** The `history` of a WebSocket service class; see docs/options.md. */
export interface WsHistoryOptions extends Static<typeof WS_HISTORY_OPTIONS> {}

/** The limits a service's `static history` asks for, or undefined for `false`. */
export function historyLimitsOf(serviceName: string, value: unknown): HistoryLimits | undefined {
  if (value === false) return undefined;
  if (value !== undefined && (typeof value !== 'object' || value === null)) {
    throw invalidOption(`${serviceName}.history`, 'must be false or { maxEntries, ttlMs }');
  }
  try {
    const { maxEntries, ttlMs } = resolveOptions(WS_HISTORY_OPTIONS, value, `${serviceName}.history`);
    return { maxEntries, ttlMs };
  } catch (e) {
    // Named from the class down, so the message says which service to fix.
    if (e instanceof WeftError && e.code === 'InvalidOption')
      throw new WeftError('InvalidOption', e.message.replace('option "', `option "${serviceName}.history.`));
    throw e;
  }
}
