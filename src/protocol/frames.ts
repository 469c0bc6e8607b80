/**
 * Frames between weft nodes: pure encode/decode, no I/O.
 *
 * On the wire a frame is a 4-byte big-endian body length followed by the
 * body, a MessagePack array whose first element is the frame type. Frames are
 * tuples so that encoding is one `pack` with no mapping. docs/protocol.md
 * describes every frame; PROTOCOL_VERSION changes when a frame changes shape.
 */
import { Packr } from 'msgpackr';
import { WeftError, type WireError } from '../errors.js';

/** 4: PushAcks, the room frames (50-54), SessionRequest and SessionReply (60-61), SessionMetadata (70). */
export const PROTOCOL_VERSION = 4;

/** Default and hard ceiling of one frame's body. */
export const DEFAULT_MAX_FRAME_BYTES = 16 * 1024 * 1024; // 16 MiB
export const FRAME_HEADER_BYTES = 4;

export const FrameType = {
  Challenge: 1,
  Hello: 2,
  Welcome: 3,
  Refuse: 4,
  Call: 10,
  Result: 11,
  Error: 12,
  SessionOpen: 20,
  SessionAccept: 21,
  SessionReject: 22,
  SessionMessage: 23,
  SessionClosed: 24,
  SessionClose: 25,
  SessionHandled: 26,
  PushSession: 30,
  PushBusiness: 31,
  PushService: 32,
  PushAck: 33,
  PushAcks: 34,
  Ping: 40,
  Pong: 41,
  Draining: 42,
  SessionMetadata: 70,
  // Rooms (50-59): room-frames below.
  RoomJoin: 50,
  RoomLeave: 51,
  PushRoom: 52,
  RoomSize: 53,
  RoomAck: 54,
  // 60-69: client requests and their replies (typed messages).
  SessionRequest: 60,
  SessionReply: 61,
} as const;
export type FrameType = (typeof FrameType)[keyof typeof FrameType];

/** Context that travels with a call: short keys, it is on every call. */
export interface WireCallContext {
  /** trace id */
  t: string;
  /** calling node id */
  c: string;
  /** forwarded client headers (lower-case names) */
  h?: Record<string, string>;
  /** milliseconds left before the caller gives up */
  d?: number;
  /** W3C traceparent of the caller's span (OpenTelemetry) */
  p?: string;
  /** the call's key, the same on every attempt of it (failover): what a push made by the call is deduplicated by */
  k?: string;
}

/** What a WebSocket host learns of a session's handshake. */
export interface WireHandshake {
  headers: Record<string, string>;
  query: Record<string, string>;
  remoteAddress: string;
  /** The claims of the token the gateway verified (`auth.jwt`); absent without one. */
  identity?: Record<string, unknown>;
  /**
   * How long the host may run onOpen, in ms: the gateway's
   * `websocket.sessionOpenTimeoutMs`. Past it the gateway has answered its
   * client 504, and the host gives the session up. Absent: 5000.
   */
  openTimeoutMs?: number;
  /** W3C traceparent of the handshake (its `traceparent` header): the host's onOpen span is its child. */
  traceparent?: string;
  /**
   * The most client messages the gateway lets wait for the session's
   * onMessage (`websocket.maxQueuedMessages`): it stops reading the client
   * there. The host closes a session past it with 1013. Absent: 256.
   */
  maxQueuedMessages?: number;
  /** The values of the `{param}` segments of the service's route template, by name (`{tenant}` -> `tenant`). */
  params?: Record<string, string>;
}

export type ChallengeFrame = [typeof FrameType.Challenge, version: number, nodeId: string, nonce: Uint8Array];
export type HelloFrame = [typeof FrameType.Hello, version: number, nodeId: string, nonce: Uint8Array, proof: Uint8Array];
export type WelcomeFrame = [typeof FrameType.Welcome, proof: Uint8Array];
export type RefuseFrame = [typeof FrameType.Refuse, error: WireError];
export type CallFrame = [typeof FrameType.Call, callId: number, service: string, method: string, args: unknown[], ctx: WireCallContext];
export type ResultFrame = [typeof FrameType.Result, callId: number, value: unknown];
export type ErrorFrame = [typeof FrameType.Error, callId: number, error: WireError];
export type SessionOpenFrame = [typeof FrameType.SessionOpen, sessionId: string, service: string, businessId: string, handshake: WireHandshake];
export type SessionAcceptFrame = [typeof FrameType.SessionAccept, sessionId: string];
export type SessionRejectFrame = [typeof FrameType.SessionReject, sessionId: string, error: WireError];
export type SessionMessageFrame = [typeof FrameType.SessionMessage, sessionId: string, data: Uint8Array, text: boolean];
export type SessionClosedFrame = [
  typeof FrameType.SessionClosed,
  sessionId: string,
  code: number,
  reason: string,
  service: string,
  businessId: string,
];
export type SessionCloseFrame = [typeof FrameType.SessionClose, sessionId: string, code: number, reason: string];
/** The host ran onMessage for `count` more of the session's client messages: the gateway may send that many more. */
export type SessionHandledFrame = [typeof FrameType.SessionHandled, sessionId: string, count: number];
/**
 * A weft.v1 client's request (a named message awaiting a reply). `body` is
 * the client's request message as it sent it (JSON, UTF-8); the host reads
 * its `params`. It takes a place in the session's window and order like a
 * SessionMessage, and is counted off by SessionHandled.
 */
export type SessionRequestFrame = [typeof FrameType.SessionRequest, sessionId: string, requestId: number, name: string, body: Uint8Array];
/** The reply to a SessionRequest: `body` is the JSON of the handler's result when `ok`, else of the WireError. */
export type SessionReplyFrame = [typeof FrameType.SessionReply, sessionId: string, requestId: number, ok: boolean, body: Uint8Array];
/** `traceparent` (W3C) of the push's span, '' when none: the gateway's delivery span is its child. */
export type PushSessionFrame = [
  typeof FrameType.PushSession,
  ackId: number,
  sessionId: string,
  payload: Uint8Array,
  text: boolean,
  traceparent: string,
];
export type PushBusinessFrame = [
  typeof FrameType.PushBusiness,
  ackId: number,
  service: string,
  businessId: string,
  payload: Uint8Array,
  text: boolean,
  /** The push's position in its (service, businessId) stream; '' and 0 when the service keeps no history. */
  epoch: string,
  offset: number,
  /** With `ack: 'client'`: how long gateways wait for weft/client receipts (ms); 0 otherwise. */
  receiptTimeoutMs: number,
  traceparent: string,
];
export type PushServiceFrame = [
  typeof FrameType.PushService,
  ackId: number,
  service: string,
  payload: Uint8Array,
  text: boolean,
  traceparent: string,
];
export type PushAckFrame = [typeof FrameType.PushAck, ackId: number, delivered: number];
/** Several acknowledgements of one turn on one link: ackId, delivered, ackId, delivered... */
export type PushAcksFrame = [typeof FrameType.PushAcks, acks: number[]];
/** Puts a session in a room, at the gateway that holds it; answered with RoomAck (1 joined, 0 no such session, -1 refused). */
export type RoomJoinFrame = [typeof FrameType.RoomJoin, ackId: number, sessionId: string, room: string];
/** Takes a session out of a room; answered with RoomAck (1 it was in it, 0 it was not). */
export type RoomLeaveFrame = [typeof FrameType.RoomLeave, ackId: number, sessionId: string, room: string];
/** A push to the members of a room a gateway holds; answered with PushAck like the other pushes. */
export type PushRoomFrame = [
  typeof FrameType.PushRoom,
  ackId: number,
  service: string,
  room: string,
  payload: Uint8Array,
  text: boolean,
  /** The push's position in the room's stream; '' and 0 when the service keeps no history. */
  epoch: string,
  offset: number,
  traceparent: string,
];
/** How many members of a room a gateway holds; answered with RoomAck (the count). */
export type RoomSizeFrame = [typeof FrameType.RoomSize, ackId: number, service: string, room: string];
/** The answer to a room request: its result, and '' or why it was refused (result -1). */
export type RoomAckFrame = [typeof FrameType.RoomAck, ackId: number, result: number, error: string];
/** A room request to a gateway; its ack id (index 1) is set by the asking node. */
export type RoomRequestFrame = RoomJoinFrame | RoomLeaveFrame | RoomSizeFrame;
export type PingFrame = [typeof FrameType.Ping];
export type PongFrame = [typeof FrameType.Pong];
export type DrainingFrame = [typeof FrameType.Draining];
/** What the host's onOpen attached to the session (JSON text), sent just before its SessionAccept: the gateway writes it with the session's directory entry. */
export type SessionMetadataFrame = [typeof FrameType.SessionMetadata, sessionId: string, metadata: string];

/** A push to sessions; its ack id (index 1) is set by the pushing node, 0 when no ack is wanted. */
export type PushFrame = PushSessionFrame | PushBusinessFrame | PushServiceFrame | PushRoomFrame;

export type Frame =
  | ChallengeFrame
  | HelloFrame
  | WelcomeFrame
  | RefuseFrame
  | CallFrame
  | ResultFrame
  | ErrorFrame
  | SessionOpenFrame
  | SessionAcceptFrame
  | SessionRejectFrame
  | SessionMessageFrame
  | SessionClosedFrame
  | SessionCloseFrame
  | SessionHandledFrame
  | SessionRequestFrame
  | SessionReplyFrame
  | PushSessionFrame
  | PushBusinessFrame
  | PushServiceFrame
  | PushAckFrame
  | PushAcksFrame
  | RoomJoinFrame
  | RoomLeaveFrame
  | PushRoomFrame
  | RoomSizeFrame
  | RoomAckFrame
  | PingFrame
  | PongFrame
  | DrainingFrame
  | SessionMetadataFrame;

// Element checks per frame type: s string, n number, b bytes, B boolean, o object, a array, x anything.
const SHAPES: Readonly<Record<number, string>> = {
  [FrameType.Challenge]: 'nsb',
  [FrameType.Hello]: 'nsbb',
  [FrameType.Welcome]: 'b',
  [FrameType.Refuse]: 'o',
  [FrameType.Call]: 'nssao',
  [FrameType.Result]: 'nx',
  [FrameType.Error]: 'no',
  [FrameType.SessionOpen]: 'ssso',
  [FrameType.SessionAccept]: 's',
  [FrameType.SessionReject]: 'so',
  [FrameType.SessionMessage]: 'sbB',
  [FrameType.SessionClosed]: 'snsss',
  [FrameType.SessionClose]: 'sns',
  [FrameType.SessionHandled]: 'sn',
  [FrameType.PushSession]: 'nsbBs',
  [FrameType.PushBusiness]: 'nssbBsnns',
  [FrameType.PushService]: 'nsbBs',
  [FrameType.PushAck]: 'nn',
  [FrameType.PushAcks]: 'a',
  [FrameType.RoomJoin]: 'nss',
  [FrameType.RoomLeave]: 'nss',
  [FrameType.PushRoom]: 'nssbBsns',
  [FrameType.RoomSize]: 'nss',
  [FrameType.RoomAck]: 'nns',
  [FrameType.Ping]: '',
  [FrameType.Pong]: '',
  [FrameType.Draining]: '',
  [FrameType.SessionMetadata]: 'ss',
  [FrameType.SessionRequest]: 'snsb',
  [FrameType.SessionReply]: 'snBb',
};

function fits(kind: string, value: unknown): boolean {
  switch (kind) {
    case 's':
      return typeof value === 'string';
    case 'n':
      return typeof value === 'number';
    case 'b':
      return value instanceof Uint8Array;
    case 'B':
      return typeof value === 'boolean';
    case 'o':
      return typeof value === 'object' && value !== null && !Array.isArray(value);
    case 'a':
      return Array.isArray(value);
    default:
      return true;
  }
}

function protocolError(message: string): WeftError {
  return new WeftError('ProtocolError', message);
}

/** Checks that a decoded value is a well-formed frame; throws ProtocolError otherwise. */
export function checkFrame(value: unknown): Frame {
  if (!Array.isArray(value) || value.length === 0) throw protocolError('frame is not a non-empty array');
  const shape = SHAPES[value[0] as number];
  if (shape === undefined) throw protocolError(`unknown frame type ${String(value[0])}`);
  if (value.length !== shape.length + 1) {
    throw protocolError(`frame type ${String(value[0])} has ${value.length - 1} fields, expected ${shape.length}`);
  }
  for (let i = 0; i < shape.length; i++) {
    if (!fits(shape[i]!, value[i + 1])) throw protocolError(`frame type ${String(value[0])}: field ${i + 1} has the wrong type`);
  }
  return value as Frame;
}

// One Packr per process: its internal buffer is reused, earlier results stay valid.
const packr = new Packr({ useRecords: false, moreTypes: false, bundleStrings: false });

/** The MessagePack body of a frame (no length header). */
export function packFrame(frame: Frame): Buffer {
  return packr.pack(frame);
}

/**
 * A frame that goes to several links (a push to every gateway holding its
 * businessId): packed by the first link that needs its bytes, and only
 * once. A link within the process takes the frame itself and never packs.
 */
export class SharedFrame {
  readonly frame: Frame;
  #body: Buffer | undefined;

  constructor(frame: Frame) {
    this.frame = frame;
  }

  get body(): Buffer {
    return (this.#body ??= packFrame(this.frame));
  }
}

/** A whole frame: length header and body. */
export function encodeFrame(frame: Frame): Buffer {
  const body = packFrame(frame);
  const out = Buffer.allocUnsafe(FRAME_HEADER_BYTES + body.length);
  out.writeUInt32BE(body.length, 0);
  body.copy(out, FRAME_HEADER_BYTES);
  return out;
}

// Reused for every decode: msgpackr reads it synchronously and keeps no reference.
const range = { start: 0, end: 0 };

/** Decodes one frame body; throws ProtocolError on anything malformed. */
export function decodeFrameBody(body: Uint8Array): Frame {
  return decodeFrameAt(body, 0, body.length);
}

/**
 * Decodes the frame body at `buffer[start, end)` without slicing it: msgpackr
 * then keeps one DataView for the whole chunk instead of one per frame.
 */
export function decodeFrameAt(buffer: Uint8Array, start: number, end: number): Frame {
  let value: unknown;
  range.start = start;
  range.end = end;
  try {
    value = start === end ? undefined : packr.unpack(buffer, range);
  } catch (cause) {
    throw new WeftError('ProtocolError', 'frame body is not valid MessagePack', { cause });
  }
  return checkFrame(value);
}

/**
 * Splits a byte stream into frames. Bytes may arrive in any split; a frame
 * over `maxFrameBytes` is refused as soon as its header is read.
 */
export class FrameDecoder {
  #maxFrameBytes: number;
  #chunks: Buffer[] = [];
  #buffered = 0;
  #need = -1; // body length of the frame being read, -1 while reading the header

  constructor(maxFrameBytes: number = DEFAULT_MAX_FRAME_BYTES) {
    this.#maxFrameBytes = maxFrameBytes;
  }

  /** Feeds bytes; calls `onFrame` for each complete frame. Throws ProtocolError. */
  push(chunk: Buffer, onFrame: (frame: Frame) => void): void {
    if (this.#buffered === 0 && this.#need < 0) {
      // Fast path: parse straight from the chunk, keep only the tail.
      let offset = 0;
      while (chunk.length - offset >= FRAME_HEADER_BYTES) {
        const length = chunk.readUInt32BE(offset);
        this.#checkLength(length);
        if (chunk.length - offset - FRAME_HEADER_BYTES < length) break;
        const start = offset + FRAME_HEADER_BYTES;
        offset = start + length;
        onFrame(decodeFrameAt(chunk, start, offset));
      }
      if (offset < chunk.length) this.#append(chunk.subarray(offset));
      return;
    }
    this.#append(chunk);
    for (;;) {
      if (this.#need < 0) {
        if (this.#buffered < FRAME_HEADER_BYTES) return;
        const head = this.#take(FRAME_HEADER_BYTES);
        this.#need = head.readUInt32BE(0);
        this.#checkLength(this.#need);
      }
      if (this.#buffered < this.#need) return;
      const body = this.#take(this.#need);
      this.#need = -1;
      onFrame(decodeFrameBody(body));
      if (this.#buffered === 0) return;
    }
  }

  /** Changes the largest frame accepted from now on (a link raises it once the peer is authenticated). */
  setMaxFrameBytes(maxFrameBytes: number): void {
    this.#maxFrameBytes = maxFrameBytes;
  }

  /** Bytes held waiting for the rest of a frame. */
  get bufferedBytes(): number {
    return this.#buffered;
  }

  #checkLength(length: number): void {
    if (length > this.#maxFrameBytes) {
      throw new WeftError('ProtocolError', `frame of ${length} bytes is over maxFrameBytes ${this.#maxFrameBytes}`);
    }
  }

  #append(chunk: Buffer): void {
    this.#chunks.push(chunk);
    this.#buffered += chunk.length;
  }

  #take(n: number): Buffer {
    const first = this.#chunks[0]!;
    let out: Buffer;
    if (first.length >= n) {
      out = first.subarray(0, n);
      if (first.length === n) this.#chunks.shift();
      else this.#chunks[0] = first.subarray(n);
    } else {
      out = Buffer.allocUnsafe(n);
      let filled = 0;
      while (filled < n) {
        const c = this.#chunks[0]!;
        const use = Math.min(c.length, n - filled);
        c.copy(out, filled, 0, use);
        filled += use;
        if (use === c.length) this.#chunks.shift();
        else this.#chunks[0] = c.subarray(use);
      }
    }
    this.#buffered -= n;
    return out;
  }
}
