/**
 * Logging: pino. Every node logs with its node id; pass your own pino logger
 * in the `logger` option, or set WEFT_LOG_LEVEL and WEFT_LOG_FORMAT.
 *
 * The default logger writes to stderr: one human line per entry when stderr
 * is a terminal (or WEFT_LOG_FORMAT=pretty), JSON lines otherwise (or
 * WEFT_LOG_FORMAT=json), so a person reads words and a log shipper reads JSON.
 */
import { writeSync } from 'node:fs';
import { pino, type Logger as PinoLogger } from 'pino';

export type Logger = PinoLogger;

export type LogFormat = 'json' | 'pretty';

/** The format of the default logger: WEFT_LOG_FORMAT when it says one, else pretty on a terminal, JSON otherwise. */
export function logFormat(env: NodeJS.ProcessEnv = process.env, isTTY: boolean = process.stderr.isTTY === true): LogFormat {
  const asked = env['WEFT_LOG_FORMAT']?.trim().toLowerCase();
  if (asked === 'json' || asked === 'pretty') return asked;
  return isTTY ? 'pretty' : 'json';
}

const LEVELS: Record<number, { name: string; color: string }> = {
  10: { name: 'TRACE', color: '90' },
  20: { name: 'DEBUG', color: '36' },
  30: { name: 'INFO ', color: '32' },
  40: { name: 'WARN ', color: '33' },
  50: { name: 'ERROR', color: '31' },
  60: { name: 'FATAL', color: '35' },
};

/** Fields every line has, shown in their own places rather than as key=value. */
const PLACED = new Set(['level', 'time', 'msg', 'node', 'pid', 'hostname']);

function fieldValue(value: unknown): string {
  if (typeof value === 'string') return /^[^\s"=]+$/.test(value) ? value : JSON.stringify(value);
  if (value instanceof Object && 'message' in value && typeof value.message === 'string') return JSON.stringify(value.message);
  return JSON.stringify(value) ?? String(value);
}

/**
 * One pino JSON entry as a line a person reads:
 * `12:00:01.234 INFO  gateway-1a2b3c4d5e  gateway listening  url=http://127.0.0.1:5000`.
 * A line that is not JSON passes through as it is.
 */
export function prettyLine(json: string, color = false): string {
  let entry: Record<string, unknown>;
  try {
    entry = JSON.parse(json) as Record<string, unknown>;
  } catch {
    return json.endsWith('\n') ? json : `${json}\n`;
  }
  const paint = (code: string, text: string): string => (color ? `\x1b[${code}m${text}\x1b[0m` : text);
  const time = typeof entry['time'] === 'number' ? new Date(entry['time']).toISOString().slice(11, 23) : '';
  const level = LEVELS[entry['level'] as number] ?? { name: String(entry['level']).padEnd(5), color: '0' };
  const node = typeof entry['node'] === 'string' ? `${paint('2', entry['node'])}  ` : '';
  const msg = typeof entry['msg'] === 'string' ? entry['msg'] : '';
  const fields = Object.entries(entry)
    .filter(([k]) => !PLACED.has(k))
    .map(([k, v]) => `${paint('2', `${k}=`)}${fieldValue(v)}`)
    .join(' ');
  const stack = entry['err'] instanceof Object && 'stack' in entry['err'] && typeof entry['err'].stack === 'string' ? `\n${entry['err'].stack}` : '';
  return `${paint('2', time)} ${paint(level.color, level.name)} ${node}${msg}${fields === '' ? '' : `  ${fields}`}${stack}\n`;
}

/** A pino destination that writes human lines to a file descriptor, synchronously (nothing is lost at exit). */
export function prettyDestination(fd = 2, color = false): { write(line: string): void } {
  return {
    write(chunk: string): void {
      for (const line of chunk.split('\n')) if (line !== '') writeSync(fd, prettyLine(line, color));
    },
  };
}

/** The default logger: stderr at WEFT_LOG_LEVEL (default `info`), human or JSON lines as {@link logFormat} says. */
export function createDefaultLogger(): Logger {
  const level = process.env['WEFT_LOG_LEVEL'] ?? 'info';
  if (logFormat() === 'pretty') {
    const color = process.stderr.isTTY === true && process.env['NO_COLOR'] === undefined;
    return pino({ level, base: null }, prettyDestination(2, color));
  }
  return pino({ level, base: null }, pino.destination(2));
}
