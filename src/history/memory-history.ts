/**
 * History in memory, shared by every node of one memory cluster (one
 * process). A stream is a bounded array of its last pushes; a stream that
 * saw no push for its window is forgotten by a sweep.
 */
import { randomBytes } from 'node:crypto';
import type { HistoryEntry, HistoryLimits, HistoryRead, HistoryStore, Position } from './history-store.js';

interface Kept extends HistoryEntry {
  readonly atMs: number;
  readonly dedupeKey: string | undefined;
}

interface Stream {
  /** Made when the stream is: a stream forgotten and made again is a new epoch. */
  readonly epoch: string;
  entries: Kept[];
  /** Dedupe keys of the kept entries -> their offsets. */
  keys: Map<string, number>;
  offset: number;
  lastAtMs: number;
  ttlMs: number;
}

const SWEEP_INTERVAL_MS = 10_000;

export class MemoryHistoryHub {
  readonly streams = new Map<string, Stream>();
  #sweeper: NodeJS.Timeout | undefined;

  stream(service: string, businessId: string): Stream | undefined {
    return this.streams.get(keyOf(service, businessId));
  }

  create(service: string, businessId: string, ttlMs: number): Stream {
    const stream: Stream = { epoch: newEpoch(), entries: [], keys: new Map(), offset: 0, lastAtMs: Date.now(), ttlMs };
    this.streams.set(keyOf(service, businessId), stream);
    this.#sweeper ??= setInterval(() => this.#sweep(), SWEEP_INTERVAL_MS).unref();
    return stream;
  }

  #sweep(): void {
    const now = Date.now();
    for (const [key, stream] of this.streams) if (now - stream.lastAtMs > stream.ttlMs) this.streams.delete(key);
    if (this.streams.size === 0 && this.#sweeper !== undefined) {
      clearInterval(this.#sweeper);
      this.#sweeper = undefined;
    }
  }
}

// Random per process, then a counter: unique across processes without a randomBytes call per push
// (Redis appends pass a candidate each time; it is used only when a stream has no epoch yet).
const EPOCH_BASE = randomBytes(6).toString('base64url');
let epochCount = 0;

/** A fresh epoch: unique, short, URL-safe. */
export function newEpoch(): string {
  epochCount += 1;
  return `${EPOCH_BASE}${epochCount.toString(36)}`;
}

function keyOf(service: string, businessId: string): string {
  return `${service}\u0000${businessId}`;
}

export class MemoryHistory implements HistoryStore {
  readonly #hub: MemoryHistoryHub;

  constructor(hub: MemoryHistoryHub) {
    this.#hub = hub;
  }

  append(service: string, businessId: string, payload: Uint8Array, text: boolean, limits: HistoryLimits, dedupeKey?: string): Promise<Position> {
    const now = Date.now();
    // A stream idle past its window is gone, as its Redis keys would have expired: a new epoch.
    const stream = this.#hub.stream(service, businessId) ?? this.#hub.create(service, businessId, limits.ttlMs);
    const seen = dedupeKey === undefined ? undefined : stream.keys.get(dedupeKey);
    if (seen !== undefined) return Promise.resolve({ epoch: stream.epoch, offset: seen });
    stream.ttlMs = limits.ttlMs;
    stream.offset += 1;
    stream.lastAtMs = now;
    // Copied: the caller's buffer may be reused.
    stream.entries.push({ offset: stream.offset, payload: Uint8Array.prototype.slice.call(payload), text, atMs: now, dedupeKey });
    if (dedupeKey !== undefined) stream.keys.set(dedupeKey, stream.offset);
    if (stream.entries.length > limits.maxEntries) {
      for (const gone of stream.entries.splice(0, stream.entries.length - limits.maxEntries)) {
        if (gone.dedupeKey !== undefined) stream.keys.delete(gone.dedupeKey);
      }
    }
    return Promise.resolve({ epoch: stream.epoch, offset: stream.offset });
  }

  read(service: string, businessId: string, since: Position | undefined, ttlMs: number): Promise<HistoryRead> {
    // Made if missing, so the answer names an epoch a later resume can refer to.
    const stream = this.#hub.stream(service, businessId) ?? this.#hub.create(service, businessId, ttlMs);
    return Promise.resolve(readFrom(stream.entries, { epoch: stream.epoch, offset: stream.offset }, since, ttlMs));
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}

/**
 * The answer to a read, from a stream's kept entries (oldest first) and its
 * top: shared by both stores, so they answer alike.
 */
export function readFrom(
  entries: readonly (HistoryEntry & { atMs: number })[],
  top: Position,
  since: Position | undefined,
  ttlMs: number,
  nowMs = Date.now(),
): HistoryRead {
  if (since === undefined) return { recovered: true, top, entries: [] };
  if (since.epoch !== top.epoch) return { recovered: false, reason: 'epoch-changed', top };
  // A position ahead of the stream is not one it gave: the stream was lost and started again.
  if (since.offset > top.offset) return { recovered: false, reason: 'epoch-changed', top };
  if (since.offset === top.offset) return { recovered: true, top, entries: [] };
  const oldestKept = nowMs - ttlMs;
  const out: HistoryEntry[] = [];
  for (const e of entries) if (e.offset > since.offset && e.atMs >= oldestKept) out.push({ offset: e.offset, payload: e.payload, text: e.text });
  // Recovered only if nothing between `since` and the top is missing.
  if (out.length === 0 || out[0]!.offset !== since.offset + 1 || out.length !== top.offset - since.offset) {
    return { recovered: false, reason: 'window-passed', top };
  }
  return { recovered: true, top, entries: out };
}
