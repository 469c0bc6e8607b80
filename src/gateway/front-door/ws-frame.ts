/**
 * Server-to-client WebSocket frames, built once and written as they are.
 *
 * Server frames are not masked, so one push's frame is the same bytes for
 * every session it goes to: the gateway builds it once per push and writes
 * that one buffer to each socket (one write per session instead of `ws`'s
 * header-and-payload pair, and no header allocated per session).
 */

const FIN = 0x80;
const OPCODE_TEXT = 0x1;
const OPCODE_BINARY = 0x2;

/** A complete, unfragmented, unmasked data frame (RFC 6455 section 5.2). */
export function dataFrame(payload: Uint8Array, text: boolean): Buffer {
  const length = payload.length;
  const headerBytes = length < 126 ? 2 : length < 65536 ? 4 : 10;
  const frame = Buffer.allocUnsafe(headerBytes + length);
  frame[0] = FIN | (text ? OPCODE_TEXT : OPCODE_BINARY);
  if (length < 126) {
    frame[1] = length;
  } else if (length < 65536) {
    frame[1] = 126;
    frame.writeUInt16BE(length, 2);
  } else {
    frame[1] = 127;
    frame.writeUInt32BE(Math.floor(length / 0x100000000), 2);
    frame.writeUInt32BE(length >>> 0, 6);
  }
  frame.set(payload, headerBytes);
  return frame;
}
