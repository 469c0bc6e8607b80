/**
 * WebSocket close codes and reasons a service may send (RFC 6455 section 7.4).
 */

/**
 * Close codes weft itself sends, from the application range (4000-4999).
 * Services should not send these: `weft/client` reconnects on them.
 */
export const WeftCloseCode = {
  /** The session's token expired (`exp` plus the clock tolerance); reconnect with a fresh token. */
  TokenExpired: 4001,
  /** The client answered no ping (nor sent anything) for two ping intervals; reconnect. */
  PingTimeout: 4002,
} as const;

/**
 * 1013 (try again later): more of a session's client messages waited for its
 * onMessage than its window (`websocket.maxQueuedMessages`); the client may
 * reconnect. 1013 rather than 1008 (policy violation): the client broke no
 * rule (a gateway stops reading a client at the window, so only a gateway that
 * did not is past it), and 1008 already means a slow consumer.
 */
export const QUEUE_FULL_CLOSE_CODE = 1013;

/** Longest close reason: a close frame's payload is at most 125 bytes, 2 of them the code. */
export const MAX_CLOSE_REASON_BYTES = 123;

/** Codes a server may send: the registered ones meant for it, and 3000-4999 for applications. */
export function isSendableCloseCode(code: number): boolean {
  return (
    code === 1000 ||
    code === 1001 ||
    code === 1008 ||
    code === 1011 ||
    code === 1012 ||
    code === 1013 ||
    (Number.isInteger(code) && code >= 3000 && code <= 4999)
  );
}

/** `reason` cut to at most 123 UTF-8 bytes, never in the middle of a character. */
export function closeReason(reason: string): string {
  if (Buffer.byteLength(reason) <= MAX_CLOSE_REASON_BYTES) return reason;
  let out = '';
  let bytes = 0;
  for (const ch of reason) {
    const n = Buffer.byteLength(ch);
    if (bytes + n > MAX_CLOSE_REASON_BYTES) break;
    out += ch;
    bytes += n;
  }
  return out;
}
