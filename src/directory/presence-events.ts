/**
 * Presence in the session directory: the record a gateway writes with each
 * session (when it opened, what its host attached), and the join, leave,
 * online and offline events of a service, kept apart from the directory's
 * own bookkeeping so its backends only call in here.
 *
 * Events travel as one message per service and batch (a gateway's tick, or
 * one dead gateway's removal): a MessagePack array of tuples
 * `[kind, businessId, sessionId, gatewayNodeId, at, metadata JSON or '']`.
 * They are at most once: nothing is kept or replayed, and a subscriber that
 * needs the truth reads `sessions()` again (docs/presence.md).
 */
import { Packr } from 'msgpackr';
import type { DescribedSession, PresenceEvent, PresenceListener, SessionRecord } from './session-directory.js';

const KIND_JOIN = 0;
const KIND_LEAVE = 1;
const KIND_ONLINE = 2;
const KIND_OFFLINE = 3;
const KINDS = ['join', 'leave', 'online', 'offline'] as const;

/** One event on the wire. */
export type WirePresence = [kind: number, businessId: string, sessionId: string, gatewayNodeId: string, at: number, metadata: string];

const packr = new Packr({ useRecords: false });

/** A record as the directory stores it: `openedAt\nmetadata JSON` (nothing after the newline: no metadata). */
export function encodeRecord(record: SessionRecord): string {
  return `${record.openedAt}\n${record.metadata ?? ''}`;
}

/** The record `encodeRecord` wrote; undefined for a value that is not one. */
export function decodeRecord(value: string | null | undefined): SessionRecord | undefined {
  if (typeof value !== 'string') return undefined;
  const cut = value.indexOf('\n');
  if (cut < 0) return undefined;
  const openedAt = Number(value.slice(0, cut));
  const metadata = value.slice(cut + 1);
  return { openedAt: Number.isFinite(openedAt) ? openedAt : 0, metadata: metadata === '' ? undefined : metadata };
}

/** A session with its record (openedAt 0 and no metadata when none was written: an older gateway). */
export function described(sessionId: string, gatewayNodeId: string, record: SessionRecord | undefined): DescribedSession {
  return [sessionId, gatewayNodeId, record?.openedAt ?? 0, record?.metadata];
}

export function joinEvent(businessId: string, sessionId: string, gatewayNodeId: string, record: SessionRecord | undefined, at: number): WirePresence {
  return [KIND_JOIN, businessId, sessionId, gatewayNodeId, at, record?.metadata ?? ''];
}

export function leaveEvent(
  businessId: string,
  sessionId: string,
  gatewayNodeId: string,
  record: SessionRecord | undefined,
  at: number,
): WirePresence {
  return [KIND_LEAVE, businessId, sessionId, gatewayNodeId, at, record?.metadata ?? ''];
}

export function businessEvent(online: boolean, businessId: string, at: number): WirePresence {
  return [online ? KIND_ONLINE : KIND_OFFLINE, businessId, '', '', at, ''];
}

export function packPresence(events: readonly WirePresence[]): Buffer {
  return packr.pack(events);
}

/** Events of a message; a malformed one yields none. */
export function unpackPresence(message: Buffer): WirePresence[] {
  try {
    const value = packr.unpack(message) as unknown;
    if (!Array.isArray(value)) return [];
    return value.filter(
      (e): e is WirePresence =>
        Array.isArray(e) &&
        e.length === 6 &&
        typeof e[0] === 'number' &&
        KINDS[e[0]] !== undefined &&
        typeof e[1] === 'string' &&
        typeof e[4] === 'number',
    );
  } catch {
    return [];
  }
}

/** Metadata JSON as a value; undefined for none ('' or absent) and for JSON that does not parse. */
export function parseMetadata(json: string | undefined): unknown {
  if (json === undefined || json === '') return undefined;
  try {
    return JSON.parse(json) as unknown;
  } catch {
    return undefined;
  }
}

/** The event a listener sees. */
export function presenceEventOf(service: string, wire: WirePresence): PresenceEvent {
  const [kind, businessId, sessionId, gatewayNodeId, at, metadata] = wire;
  const type = KINDS[kind]!;
  if (type === 'online' || type === 'offline') return Object.freeze({ type, service, businessId, at });
  const parsed = parseMetadata(metadata);
  return Object.freeze(
    parsed === undefined
      ? { type, service, businessId, sessionId, gatewayNodeId, at }
      : { type, service, businessId, sessionId, gatewayNodeId, metadata: parsed, at },
  );
}

/**
 * The listeners of each service on one node. A listener that throws is
 * reported to `onError` and the others still run.
 */
export class PresenceListeners {
  readonly #byService = new Map<string, Set<PresenceListener>>();
  readonly #onError: (err: unknown, service: string) => void;

  constructor(onError: (err: unknown, service: string) => void) {
    this.#onError = onError;
  }

  /** Adds a listener; true when it is the service's first (the caller subscribes then). */
  add(service: string, listener: PresenceListener): boolean {
    let set = this.#byService.get(service);
    const first = set === undefined;
    if (set === undefined) this.#byService.set(service, (set = new Set()));
    set.add(listener);
    return first;
  }

  /** Removes a listener; true when it was the service's last (the caller unsubscribes then). */
  remove(service: string, listener: PresenceListener): boolean {
    const set = this.#byService.get(service);
    if (set === undefined || !set.delete(listener) || set.size > 0) return false;
    this.#byService.delete(service);
    return true;
  }

  has(service: string): boolean {
    return this.#byService.has(service);
  }

  emit(service: string, events: readonly WirePresence[]): void {
    const set = this.#byService.get(service);
    if (set === undefined) return;
    for (const wire of events) {
      const event = presenceEventOf(service, wire);
      for (const listener of [...set]) {
        try {
          listener(event);
        } catch (err) {
          this.#onError(err, service);
        }
      }
    }
  }
}

/**
 * What one batch of directory writes of one unit means for presence: the
 * sessions that joined and left (a session written again after Redis lost
 * it neither joins nor leaves), and, from the businessIds' session counts
 * read in the same MULTI after the writes, which went online or offline.
 */
export class PresenceBatch {
  readonly #events: WirePresence[] = [];
  /** Per businessId touched: sessions that joined, and whether one left. */
  readonly #touched = new Map<string, { joined: number; left: boolean }>();

  #touch(businessId: string): { joined: number; left: boolean } {
    let t = this.#touched.get(businessId);
    if (t === undefined) this.#touched.set(businessId, (t = { joined: 0, left: false }));
    return t;
  }

  join(businessId: string, sessionId: string, gatewayNodeId: string, record: SessionRecord | undefined): void {
    this.#events.push(joinEvent(businessId, sessionId, gatewayNodeId, record, record?.openedAt ?? Date.now()));
    this.#touch(businessId).joined += 1;
  }

  leave(businessId: string, sessionId: string, gatewayNodeId: string, record: SessionRecord | undefined, at: number): void {
    this.#events.push(leaveEvent(businessId, sessionId, gatewayNodeId, record, at));
    this.#touch(businessId).left = true;
  }

  /** A session that joined in this batch closed before the batch was written: it neither joins nor leaves. */
  forget(sessionId: string): void {
    const i = this.#events.findIndex((e) => e[0] === KIND_JOIN && e[2] === sessionId);
    if (i < 0) return;
    const t = this.#touched.get(this.#events[i]![1]);
    this.#events.splice(i, 1);
    if (t !== undefined) t.joined -= 1;
  }

  get empty(): boolean {
    return this.#events.length === 0;
  }

  /** The businessIds whose count the MULTI must read after its writes, in the order `settle` takes the counts. */
  businessIds(): string[] {
    return [...this.#touched.keys()];
  }

  /**
   * The batch's events, with online/offline from the counts after the write:
   * online when every session the businessId has now joined in this batch
   * and none left (it had none before), offline when one left and none is
   * left.
   */
  settle(counts: readonly unknown[]): WirePresence[] {
    const out = this.#events;
    const at = Date.now();
    let i = 0;
    for (const [businessId, { joined, left }] of this.#touched) {
      const count = Number(counts[i++]);
      if (!Number.isFinite(count)) continue;
      if (joined > 0 && !left && count === joined) out.push(businessEvent(true, businessId, at));
      else if (left && count === 0) out.push(businessEvent(false, businessId, at));
    }
    return out;
  }
}
