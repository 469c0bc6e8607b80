/**
 * The gateway's response body, as Silky's wrapper has it:
 * `{result, status, code, errorMessage, validErrors}`.
 */
import { countHandshake } from '../metrics/metrics.js';
import type { ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { ERRORS, type WeftError } from '../errors.js';

const SUCCESS_TAIL = ',"status":200,"code":"Success","errorMessage":null,"validErrors":null}';

/** The success body; built by hand because it is on every request. */
export function successBody(result: unknown): string {
  const json = result === undefined ? 'null' : JSON.stringify(result);
  return '{"result":' + (json === undefined ? 'null' : json) + SUCCESS_TAIL;
}

export function errorBody(error: WeftError): string {
  return JSON.stringify({
    result: null,
    status: ERRORS[error.code].status,
    code: error.code,
    errorMessage: error.message,
    validErrors: error.validErrors ?? null,
  });
}

export function sendJson(res: ServerResponse, httpStatus: number, body: string, headers?: Record<string, string>): void {
  if (res.headersSent) {
    res.end();
    return;
  }
  const head: Record<string, string | number> = { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body) };
  if (headers !== undefined) Object.assign(head, headers);
  res.writeHead(httpStatus, head);
  res.end(body);
}

/** `Retry-After` for the answers that say "come back later": 503 (no host, draining) and 429 (over a limit). */
function retryAfter(status: number, seconds: number): Record<string, string> {
  return status === 503 || status === 429 ? { 'retry-after': String(seconds) } : {};
}

export function sendError(res: ServerResponse, error: WeftError, retryAfterSeconds: number, extraHeaders: Record<string, string> = {}): void {
  const status = ERRORS[error.code].httpStatus;
  sendJson(res, status, errorBody(error), { ...retryAfter(status, retryAfterSeconds), ...extraHeaders });
}

/** An HTTP error on a raw socket (WebSocket handshake refused before any upgrade). */
export function writeSocketError(socket: Duplex, error: WeftError, retryAfterSeconds: number, extraHeaders: Record<string, string> = {}): void {
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  const status = ERRORS[error.code].httpStatus;
  countHandshake(status);
  const body = errorBody(error);
  const headers: Record<string, string> = {
    'content-type': 'application/json; charset=utf-8',
    'content-length': String(Buffer.byteLength(body)),
    connection: 'close',
    ...retryAfter(status, retryAfterSeconds),
    ...extraHeaders,
  };
  const head = Object.entries(headers)
    .map(([k, v]) => `${k}: ${v}`)
    .join('\r\n');
  // end() then destroy once written: destroy() alone could drop the answer.
  socket.once('finish', () => socket.destroy());
  socket.end(`HTTP/1.1 ${status} ${STATUS_TEXT[status] ?? 'Error'}\r\n${head}\r\n\r\n${body}`);
}

const STATUS_TEXT: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  413: 'Payload Too Large',
  426: 'Upgrade Required',
  429: 'Too Many Requests',
  500: 'Internal Server Error',
  501: 'Not Implemented',
  503: 'Service Unavailable',
  504: 'Gateway Timeout',
};
