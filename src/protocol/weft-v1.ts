/**
 * The `weft.v1` WebSocket subprotocol between a gateway and a client that
 * asks for it (weft/client does): pushes carry their position, and the
 * client can resume, confirm receipt and refresh its token in-band.
 * docs/protocol.md describes it. A client that does not ask gets the bare
 * payloads, exactly as before.
 *
 * - A binary message from the gateway is a push envelope (`encodePush`).
 * - A text message from the gateway is a control message (JSON, `ServerControl`).
 * - A binary message from the client is an application message: one flags
 *   byte (bit 0: the payload is text), then the payload.
 * - A text message from the client is a control message (JSON, `ClientControl`),
 *   among them `request`: a named message whose `reply` the client awaits.
 * - A named push (a contract's `pushes`) is a text push whose payload is
 *   `{"push":<name>,"data":<payload>}` (`namedPushText`), for plain clients too.
 *
 * Pure: Uint8Array, DataView and TextEncoder only, so the browser client
 * uses this same file.
 */

export const WEFT_V1 = 'weft.v1';

/** A position as it crosses to clients. */
export interface WirePosition {
  epoch: string;
  offset: number;
}

/** Control messages from the gateway. */
export type ServerControl =
  /**
   * First message of every session. `position` is where the businessId's
   * stream stands (resume from it later); `recovered` says whether every push
   * after the client's `since` was replayed (`replayed` of them) before it.
   */
  | {
      type: 'welcome';
      sessionId: string;
      position: WirePosition | null;
      recovered: boolean;
      reason?: string;
      replayed: number;
      /** Epoch ms at which the session's token stops holding; send a fresh one before. */
      expiresAt?: number;
    }
  /**
   * The service put the session in a room (`joined: true`; where the room's
   * stream stands and whether the client's position for it was recovered,
   * as in `welcome`), or took it out (`joined: false`, nothing else).
   */
  | {
      type: 'room';
      room: string;
      joined: boolean;
      position?: WirePosition | null;
      recovered?: boolean;
      reason?: string;
      replayed?: number;
    }
  /** A fresh token was taken: the session now lasts until `expiresAt`. */
  | { type: 'token'; expiresAt: number | null }
  /** A control message was refused; the session goes on. */
  | { type: 'error'; code: string; message: string }
  /** The answer to the client's `request` of the same `id`: the handler's `result`, or the `error` it gave. */
  | { type: 'reply'; id: number; result?: unknown; error?: WireReplyError };

/** The error of a refused request, as weft's error catalogue has it (docs/errors.md). */
export interface WireReplyError {
  code: string;
  message: string;
  data?: unknown;
  validErrors?: { memberNames: string[]; errorMessage: string }[];
}

/** Control messages from the client. */
export type ClientControl =
  /** A fresh token for this session (same businessId). */
  | { type: 'token'; token: string }
  /** The pushes with these receipt ids reached the application. */
  | { type: 'receipt'; ids: number[] }
  /**
   * Runs the service's handler of message `name` with `params`; answered by
   * a `reply` with the same `id` (a positive integer the client picks, unique
   * among its requests waiting for a reply).
   */
  | { type: 'request'; id: number; name: string; params?: unknown };

/** The largest request id (ids are positive integers up to 2^31 - 1). */
export const MAX_REQUEST_ID = 0x7fff_ffff;

const NAMED_PUSH_PREFIX = '{"push":"';

/**
 * The text of a named push: `{"push":<name>,"data":<json>}`, where `dataJson`
 * is the payload's JSON, encoded once by the caller.
 */
export function namedPushText(name: string, dataJson: string): string {
  return `{"push":${JSON.stringify(name)},"data":${dataJson}}`;
}

/** A text push's name and payload when it is a named push, else undefined. */
export function parseNamedPush(text: string): { name: string; data: unknown } | undefined {
  if (!text.startsWith(NAMED_PUSH_PREFIX)) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  const { push, data } = value as { push?: unknown; data?: unknown };
  if (typeof push !== 'string' || !('data' in (value as object)) || Object.keys(value as object).length !== 2) return undefined;
  return { name: push, data };
}

const KIND_PUSH = 1;
export const FLAG_TEXT = 1;
const FLAG_POSITION = 2;
const FLAG_RECEIPT = 4;
const FLAG_ROOM = 8;
const TWO_32 = 0x1_0000_0000;

const encoder = new TextEncoder();

/** Bytes of a push envelope before its payload (`roomBytes`: the room name's UTF-8 length, 0 for none). */
export function pushHeaderBytes(epochBytes: number, position: boolean, receipt: boolean, roomBytes = 0): number {
  return 2 + (position ? 1 + epochBytes + 8 : 0) + (receipt ? 4 : 0) + (roomBytes > 0 ? 2 + roomBytes : 0);
}

/**
 * Writes a push envelope's header into `out` at `at`; returns where the
 * payload goes. `epoch` must be ASCII (positions' epochs are).
 */
export function writePushHeader(
  out: Uint8Array,
  at: number,
  text: boolean,
  epoch: string | undefined,
  offset: number,
  receiptId: number,
  room?: Uint8Array,
): number {
  const view = new DataView(out.buffer, out.byteOffset, out.byteLength);
  const hasRoom = room !== undefined && room.length > 0;
  out[at] = KIND_PUSH;
  out[at + 1] = (text ? FLAG_TEXT : 0) | (epoch !== undefined ? FLAG_POSITION : 0) | (receiptId > 0 ? FLAG_RECEIPT : 0) | (hasRoom ? FLAG_ROOM : 0);
  let i = at + 2;
  if (epoch !== undefined) {
    out[i++] = epoch.length;
    for (let c = 0; c < epoch.length; c++) out[i++] = epoch.charCodeAt(c);
    view.setUint32(i, Math.floor(offset / TWO_32));
    view.setUint32(i + 4, offset >>> 0);
    i += 8;
  }
  if (receiptId > 0) {
    view.setUint32(i, receiptId);
    i += 4;
  }
  if (hasRoom) {
    view.setUint16(i, room.length);
    out.set(room, i + 2);
    i += 2 + room.length;
  }
  return i;
}

/** A room name as it goes in an envelope (UTF-8). */
export function roomBytes(room: string): Uint8Array {
  return encoder.encode(room);
}

/** A whole push envelope (the gateway builds its frames in place with writePushHeader). */
export function encodePush(payload: Uint8Array, text: boolean, position?: WirePosition, receiptId = 0, room?: string): Uint8Array {
  const name = room === undefined ? undefined : roomBytes(room);
  const head = pushHeaderBytes(position?.epoch.length ?? 0, position !== undefined, receiptId > 0, name?.length ?? 0);
  const out = new Uint8Array(head + payload.length);
  const at = writePushHeader(out, 0, text, position?.epoch, position?.offset ?? 0, receiptId, name);
  out.set(payload, at);
  return out;
}

export interface DecodedPush {
  payload: Uint8Array;
  text: boolean;
  position: WirePosition | undefined;
  /** Non-zero: confirm it with a `receipt` control message. */
  receiptId: number;
  /** The room of a room push (its position is in the room's stream); undefined for the others. */
  room: string | undefined;
}

const roomDecoder = new TextDecoder();

/** A push envelope, or undefined if `bytes` is not one. */
export function decodePush(bytes: Uint8Array): DecodedPush | undefined {
  if (bytes.length < 2 || bytes[0] !== KIND_PUSH) return undefined;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const flags = bytes[1]!;
  let i = 2;
  let position: WirePosition | undefined;
  if ((flags & FLAG_POSITION) !== 0) {
    const epochBytes = bytes[i++];
    if (epochBytes === undefined || i + epochBytes + 8 > bytes.length) return undefined;
    let epoch = '';
    for (let c = 0; c < epochBytes; c++) epoch += String.fromCharCode(bytes[i++]!);
    position = { epoch, offset: view.getUint32(i) * TWO_32 + view.getUint32(i + 4) };
    i += 8;
  }
  let receiptId = 0;
  if ((flags & FLAG_RECEIPT) !== 0) {
    if (i + 4 > bytes.length) return undefined;
    receiptId = view.getUint32(i);
    i += 4;
  }
  let room: string | undefined;
  if ((flags & FLAG_ROOM) !== 0) {
    if (i + 2 > bytes.length) return undefined;
    const n = view.getUint16(i);
    if (i + 2 + n > bytes.length) return undefined;
    room = roomDecoder.decode(bytes.subarray(i + 2, i + 2 + n));
    i += 2 + n;
  }
  return { payload: bytes.subarray(i), text: (flags & FLAG_TEXT) !== 0, position, receiptId, room };
}

/** An application message from the client: the flags byte, then the payload. */
export function encodeClientMessage(data: string | Uint8Array): Uint8Array {
  const text = typeof data === 'string';
  const payload = text ? encoder.encode(data) : data;
  const out = new Uint8Array(1 + payload.length);
  out[0] = text ? FLAG_TEXT : 0;
  out.set(payload, 1);
  return out;
}
