/**
 * Entries grouped by a key, built to be small and fast for the shape of
 * sessions: most businessIds have one or a few sessions. A small group is a
 * flat array of (key, value) pairs; a group past SMALL_GROUP pairs becomes a
 * Map. Empty groups are deleted, so memory follows live entries. Used for
 * the session directory's view (sessionId -> gateway) and for a gateway's
 * own sessions (sessionId -> its socket state).
 */

/** Pairs kept in a flat array up to this many; a Map beyond. */
export const SMALL_GROUP = 16;

type Group<V> = (string | V)[] | Map<string, V>;

export class GroupedIndex<V> {
  readonly #groups = new Map<string, Group<V>>();
  #size = 0;

  /** Entries across all groups. */
  get size(): number {
    return this.#size;
  }

  /** Number of non-empty groups. */
  get groupCount(): number {
    return this.#groups.size;
  }

  /** Adds or replaces the entry `key` of `group`. */
  set(group: string, key: string, value: V): void {
    const g = this.#groups.get(group);
    if (g === undefined) {
      this.#groups.set(group, [key, value]);
      this.#size += 1;
      return;
    }
    if (g instanceof Map) {
      if (!g.has(key)) this.#size += 1;
      g.set(key, value);
      return;
    }
    for (let i = 0; i < g.length; i += 2) {
      if (g[i] === key) {
        g[i + 1] = value;
        return;
      }
    }
    this.#size += 1;
    if (g.length < SMALL_GROUP * 2) {
      g.push(key, value);
      return;
    }
    const map = new Map<string, V>();
    for (let i = 0; i < g.length; i += 2) map.set(g[i] as string, g[i + 1] as V);
    map.set(key, value);
    this.#groups.set(group, map);
  }

  /** Removes the entry `key` of `group`; returns whether it was there. */
  delete(group: string, key: string): boolean {
    const g = this.#groups.get(group);
    if (g === undefined) return false;
    if (g instanceof Map) {
      if (!g.delete(key)) return false;
      if (g.size === 0) this.#groups.delete(group);
      this.#size -= 1;
      return true;
    }
    for (let i = 0; i < g.length; i += 2) {
      if (g[i] !== key) continue;
      // Order does not matter: move the last pair into the hole.
      const last = g.length - 2;
      g[i] = g[last]!;
      g[i + 1] = g[last + 1]!;
      g.length = last;
      if (last === 0) this.#groups.delete(group);
      this.#size -= 1;
      return true;
    }
    return false;
  }

  /** Calls `fn` for each value of `group`; `fn` must not change this index. Returns how many it visited. */
  forEachValue(group: string, fn: (value: V) => void): number {
    const g = this.#groups.get(group);
    if (g === undefined) return 0;
    if (g instanceof Map) {
      for (const v of g.values()) fn(v);
      return g.size;
    }
    for (let i = 1; i < g.length; i += 2) fn(g[i] as V);
    return g.length / 2;
  }

  /** The (key, value) pairs of `group`, as a snapshot: callers may change the index while they iterate. */
  entriesOf(group: string): [string, V][] {
    const g = this.#groups.get(group);
    const out: [string, V][] = [];
    if (g === undefined) return out;
    if (g instanceof Map) {
      for (const e of g) out.push(e);
      return out;
    }
    for (let i = 0; i < g.length; i += 2) out.push([g[i] as string, g[i + 1] as V]);
    return out;
  }

  /** Every entry as [group, key, value], from a snapshot of each group. */
  *entries(): IterableIterator<[string, string, V]> {
    for (const group of [...this.#groups.keys()]) {
      for (const [key, value] of this.entriesOf(group)) yield [group, key, value];
    }
  }

  /** Calls `fn` for every value of every group; `fn` must not change this index. */
  forEach(fn: (value: V) => void): void {
    for (const g of this.#groups.values()) {
      if (g instanceof Map) for (const v of g.values()) fn(v);
      else for (let i = 1; i < g.length; i += 2) fn(g[i] as V);
    }
  }
}
