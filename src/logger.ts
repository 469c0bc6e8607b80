/**
 * Logging: pino. Every node logs JSON lines with its node id; pass your own
 * pino logger in the `logger` option, or set WEFT_LOG_LEVEL.
 */
import { pino, type Logger as PinoLogger } from 'pino';

export type Logger = PinoLogger;

/** The default logger: JSON to stderr at WEFT_LOG_LEVEL (default `info`). */
export function createDefaultLogger(): Logger {
  return pino({ level: process.env['WEFT_LOG_LEVEL'] ?? 'info', base: null }, pino.destination(2));
}
