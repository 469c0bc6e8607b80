/**
 * The one place the gateway writes to a socket that `ws` owns, for speed.
 *
 * Server frames are not masked, so one push's frame is the same bytes for
 * every session it goes to: the gateway builds it once per push and writes
 * that buffer to each client socket itself (one write per session instead of
 * `ws`'s header-and-payload pair, and no header allocated per session).
 *
 * This relies on three things `ws` does, and test/raw-frames.test.ts fails if
 * any of them changes:
 * - the socket handed to `handleUpgrade` is the one `ws` writes its own
 *   frames to (pings, pongs, close), each frame in whole `write` calls, so
 *   our whole frames never interleave with a partial one of its own;
 * - with permessage-deflate off, `ws` queues nothing of its own: what it
 *   sends is in the socket's buffer at once, so `writableLength` is the
 *   measure of what a client has not read;
 * - the receiving side of `ws` does not care who wrote a server frame.
 */
import type { Duplex } from 'node:stream';
import { pushHeaderBytes, writePushHeader } from '../../protocol/weft-v1.js';

const FIN = 0x80;
const OPCODE_TEXT = 0x1;
const OPCODE_BINARY = 0x2;

/** A complete, unfragmented, unmasked data frame (RFC 6455 section 5.2). */
export function dataFrame(payload: Uint8Array, text: boolean): Buffer {
  const frame = frameFor(payload.length, text);
  frame.set(payload, frame.length - payload.length);
  return frame;
}

/**
 * A weft.v1 push envelope (protocol/weft-v1.ts) in a binary data frame, built
 * in one buffer. `epoch` undefined: a push without a position.
 */
export function v1PushFrame(payload: Uint8Array, text: boolean, epoch: string | undefined, offset: number, receiptId: number): Buffer {
  const head = pushHeaderBytes(epoch?.length ?? 0, epoch !== undefined, receiptId > 0);
  const frame = frameFor(head + payload.length, false);
  const at = writePushHeader(frame, frame.length - head - payload.length, text, epoch, offset, receiptId);
  frame.set(payload, at);
  return frame;
}

/** A weft.v1 push envelope of a room push (its position is in the room's stream), as a WebSocket data frame. */
export function v1RoomPushFrame(payload: Uint8Array, text: boolean, room: Uint8Array, epoch: string | undefined, offset: number): Buffer {
  const head = pushHeaderBytes(epoch?.length ?? 0, epoch !== undefined, false, room.length);
  const frame = frameFor(head + payload.length, false);
  const at = writePushHeader(frame, frame.length - head - payload.length, text, epoch, offset, 0, room);
  frame.set(payload, at);
  return frame;
}

/** A data frame with its header written and `length` bytes of body left to fill at its end. */
function frameFor(length: number, text: boolean): Buffer {
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
  return frame;
}

/** Writes one whole frame built by `dataFrame` to an upgraded client socket. */
export function writeFrame(socket: Duplex, frame: Buffer): void {
  socket.write(frame);
}

/** Bytes written to a client socket and not yet taken by the kernel. */
export function unsentBytes(socket: Duplex): number {
  return socket.writableLength;
}
