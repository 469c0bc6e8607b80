/**
 * Push history: the last pushes to each (service, businessId), with the
 * position each got, so a client that was away can ask for what it missed.
 *
 * A position is an epoch and an offset. Offsets grow by one per push to a
 * stream and never repeat within an epoch; the epoch changes when the
 * backend lost the stream (a Redis that restarted empty, a new memory
 * cluster), so a client holding an offset of an older epoch knows its
 * offset means nothing any more.
 */

/** Where a push stands in its stream. */
export interface Position {
  readonly epoch: string;
  readonly offset: number;
}

/** How much of a stream is kept: the last `maxEntries` pushes, none older than `ttlMs`. */
export interface HistoryLimits {
  readonly maxEntries: number;
  readonly ttlMs: number;
}

/** One kept push. */
export interface HistoryEntry {
  readonly offset: number;
  readonly payload: Uint8Array;
  readonly text: boolean;
}

/** Why a stream could not give everything after a position. */
export type NotRecoveredReason = 'epoch-changed' | 'window-passed' | 'no-history';

export type HistoryRead =
  /** Everything after the asked position, in order; `top` is the last position of the stream. */
  | { readonly recovered: true; readonly top: Position; readonly entries: readonly HistoryEntry[] }
  /** The stream cannot say what was missed; `top` is where it stands now (offset 0: nothing kept). */
  | { readonly recovered: false; readonly reason: NotRecoveredReason; readonly top: Position };

export interface HistoryStore {
  /**
   * Keeps a push and gives it its position. With `dedupeKey`, a second append
   * with the same key (the same call run again on another host after a
   * failover) keeps nothing and gives the first one's position, so clients
   * drop the copy by position.
   */
  append(service: string, businessId: string, payload: Uint8Array, text: boolean, limits: HistoryLimits, dedupeKey?: string): Promise<Position>;
  /**
   * What came after `since` (every entry with a larger offset), or with no
   * `since` only where the stream stands. `ttlMs` is the service's window.
   */
  read(service: string, businessId: string, since: Position | undefined, ttlMs: number): Promise<HistoryRead>;
  close(): Promise<void>;
}

/** `epoch:offset`, the form a position takes in a URL (`?since=`). */
export function formatPosition(position: Position): string {
  return `${position.epoch}:${position.offset}`;
}

/** A position from its `epoch:offset` form, or undefined if it is not one. */
export function parsePosition(text: string): Position | undefined {
  const cut = text.lastIndexOf(':');
  if (cut <= 0 || cut > 64) return undefined;
  const epoch = text.slice(0, cut);
  const digits = text.slice(cut + 1);
  if (!/^[A-Za-z0-9_-]+$/.test(epoch) || !/^\d{1,15}$/.test(digits)) return undefined;
  return { epoch, offset: Number(digits) };
}
