/**
 * weft.v1 requests at the gateway: a client's `request` control message is
 * checked and forwarded to the session's host (client-messages.ts keeps it
 * in the session's window and order); the host's SessionReply becomes the
 * `reply` control message, written to exactly that session. The host's
 * JSON is written as it came, not parsed again.
 */
import { toWire, type WeftError } from '../../errors.js';
import { MAX_REQUEST_ID } from '../../protocol/weft-v1.js';
import { SessionState, type GatewaySession } from './gateway-sessions.js';
import { dataFrame, writeFrame } from './raw-frames.js';

/** The longest message name taken (names are identifiers of a contract). */
const MAX_NAME_LENGTH = 256;

/** A request's id and name, or why it is refused (an id of 0: none to answer). */
export function checkRequest(message: { id?: unknown; name?: unknown }): { id: number; name: string } | { id: number; problem: string } {
  const id = message.id;
  if (typeof id !== 'number' || !Number.isInteger(id) || id < 1 || id > MAX_REQUEST_ID) {
    return { id: 0, problem: `a request needs an id: an integer from 1 to ${MAX_REQUEST_ID}` };
  }
  const name = message.name;
  if (typeof name !== 'string' || name === '' || name.length > MAX_NAME_LENGTH) {
    return { id, problem: `a request needs a name: the name of a message of the service, at most ${MAX_NAME_LENGTH} characters` };
  }
  return { id, name };
}

/** The text of a reply: `{"type":"reply","id":<id>,"result":<json>}`, or `"error":<json>`. */
export function replyText(requestId: number, ok: boolean, json: Uint8Array): Buffer {
  const head = Buffer.from(`{"type":"reply","id":${requestId},"${ok ? 'result' : 'error'}":`, 'utf8');
  return Buffer.concat([head, json, CLOSE_BRACE]);
}

const CLOSE_BRACE = Buffer.from('}');

/** Writes a reply to an open session; false if it is not open. */
export function writeReply(session: GatewaySession, requestId: number, ok: boolean, json: Uint8Array): boolean {
  // readyState guards the moment between a close frame and the 'close' event.
  if (session.state !== SessionState.Open || session.ws?.readyState !== 1) return false;
  writeFrame(session.socket, dataFrame(replyText(requestId, ok, json), true));
  return true;
}

/** Answers a request with an error the gateway found itself. */
export function writeErrorReply(session: GatewaySession, requestId: number, error: WeftError): boolean {
  return writeReply(session, requestId, false, Buffer.from(JSON.stringify(toWire(error)), 'utf8'));
}
