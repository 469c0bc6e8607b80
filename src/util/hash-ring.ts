/**
 * Consistent hashing over node ids. Every process that sees the same node ids
 * builds the same ring (unlike Silky's, whose ring depends on a per-process
 * randomized string hash), so gateways agree on where a businessId goes.
 *
 * Keys are placed by shard: a key's shard is `hash32(key) mod RING_SHARDS`,
 * and every key of a shard has the same owner. The session directory is
 * partitioned by the same shards, so the host that owns a businessId (its
 * sessions open there, calls hashed on it run there) is the one that keeps
 * that businessId's shard of the directory (docs/architecture.md, "The
 * directory, sharded").
 */

/** 32-bit FNV-1a over UTF-16 code units, then murmur3's finalizer to spread the bits. */
export function hash32(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

export const DEFAULT_VIRTUAL_NODES = 160;

/** How many shards keys fall into: fixed, so that every process and release places a key alike. */
export const RING_SHARDS = 256;

/** The shard of `key`, in [0, RING_SHARDS). */
export function shardOf(key: string): number {
  return hash32(key) % RING_SHARDS;
}

/** Where each shard sits on the ring. */
const SHARD_POINTS = Uint32Array.from({ length: RING_SHARDS }, (_, shard) => hash32(`shard#${shard}`));

export class HashRing {
  readonly #points: Uint32Array;
  readonly #owners: string[];

  /** `nodeIds` in any order; the ring depends only on the set. */
  constructor(nodeIds: readonly string[], virtualNodes: number = DEFAULT_VIRTUAL_NODES) {
    const entries: [number, string][] = [];
    for (const id of nodeIds) {
      for (let v = 0; v < virtualNodes; v++) entries.push([hash32(`${id}#${v}`), id]);
    }
    // Ties broken by id so the order never depends on input order.
    entries.sort((a, b) => a[0] - b[0] || (a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0));
    this.#points = Uint32Array.from(entries, (e) => e[0]);
    this.#owners = entries.map((e) => e[1]);
  }

  get isEmpty(): boolean {
    return this.#owners.length === 0;
  }

  /** The node owning `key`, or undefined on an empty ring. */
  pick(key: string): string | undefined {
    return this.pickWhere(key, () => true);
  }

  /** The first node clockwise from `key` that passes `accept`. */
  pickWhere(key: string, accept: (nodeId: string) => boolean): string | undefined {
    return this.pickShardWhere(shardOf(key), accept);
  }

  /** The first node clockwise from `shard` that passes `accept` (every node when left out). */
  pickShardWhere(shard: number, accept: (nodeId: string) => boolean = () => true): string | undefined {
    const n = this.#points.length;
    if (n === 0) return undefined;
    const h = SHARD_POINTS[shard]!;
    let lo = 0;
    let hi = n;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.#points[mid]! < h) lo = mid + 1;
      else hi = mid;
    }
    // Usually the first owner is accepted; remember refused ones only once there is one.
    let refused: Set<string> | undefined;
    for (let i = 0; i < n; i++) {
      const owner = this.#owners[(lo + i) % n]!;
      if (refused?.has(owner) === true) continue;
      if (accept(owner)) return owner;
      (refused ??= new Set()).add(owner);
    }
    return undefined;
  }
}
