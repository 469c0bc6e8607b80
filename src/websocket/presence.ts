/**
 * Presence as a WebSocket service sees it: the metadata a host attaches to a
 * session in onOpen (checked here, before it leaves for the gateway), and
 * the sessions of a businessId with their records, as SessionManager
 * returns them. docs/presence.md says what the events guarantee.
 */
import { WeftError } from '../errors.js';
import { parseMetadata } from '../directory/presence-events.js';
import type { DescribedSession } from '../directory/session-directory.js';
export { DEFAULT_MAX_SESSION_METADATA_BYTES } from '../host/host-options.js';

/** One session of a businessId, cluster-wide, as `sessionManager.sessions(businessId)` lists it. */
export interface SessionDetails {
  readonly sessionId: string;
  readonly businessId: string;
  /** The gateway that holds its socket. */
  readonly gatewayNodeId: string;
  /** When its gateway completed the handshake (epoch ms, that gateway's clock); 0 when its directory keeps no record. */
  readonly openedAt: number;
  /** What its host attached in onOpen (`session.setMetadata`); undefined when nothing was. */
  readonly metadata: unknown;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const proto = Object.getPrototypeOf(value) as unknown;
  return proto === Object.prototype || proto === null;
}

/**
 * The JSON text of metadata a host attaches, or BadRequest: not a plain
 * object, not JSON (a BigInt, a cycle), over `maxBytes`, or too late
 * (`sealed`: onOpen already returned).
 */
export function metadataJsonOf(metadata: unknown, maxBytes: number, sealed: boolean): string {
  if (sealed) throw new WeftError('BadRequest', 'session metadata can be set only inside onOpen');
  if (!isPlainObject(metadata)) throw new WeftError('BadRequest', 'session metadata must be a plain JSON object');
  let json: string;
  try {
    json = JSON.stringify(metadata);
  } catch (cause) {
    throw new WeftError('BadRequest', `session metadata is not JSON: ${(cause as Error).message}`);
  }
  const bytes = Buffer.byteLength(json);
  if (bytes > maxBytes) {
    throw new WeftError('BadRequest', `session metadata of ${bytes} bytes is over websocket.maxSessionMetadataBytes (${maxBytes})`);
  }
  return json;
}

/** What `sessions(businessId)` resolves with, from the directory's answer: sessions on live gateways only. */
export function sessionDetailsOf(
  businessId: string,
  found: readonly DescribedSession[],
  isLive: (gatewayNodeId: string) => boolean,
): SessionDetails[] {
  const out: SessionDetails[] = [];
  for (const [sessionId, gatewayNodeId, openedAt, metadata] of found) {
    if (isLive(gatewayNodeId)) out.push({ sessionId, businessId, gatewayNodeId, openedAt, metadata: parseMetadata(metadata) });
  }
  return out;
}
