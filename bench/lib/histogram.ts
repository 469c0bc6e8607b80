/**
 * Latency histogram with microsecond buckets: exact below 1,024 µs, then
 * 512 buckets per power of two (about 0.2 % precision) up to about 70 s.
 * Fixed size, so recording a value allocates nothing.
 */
const LINEAR = 1024;
const SUB = 512;
const SIZE = LINEAR + 18 * SUB;

function bucketOf(us: number): number {
  if (us < LINEAR) return us < 0 ? 0 : us | 0;
  const v = Math.floor(us);
  const e = 31 - Math.clz32(v) - 9; // v >> e lands in [512, 1023]
  const idx = LINEAR + (e - 1) * SUB + ((v >>> e) - SUB);
  return idx >= SIZE ? SIZE - 1 : idx;
}

/** Middle of a bucket, in microseconds. */
function valueOf(idx: number): number {
  if (idx < LINEAR) return idx;
  const e = Math.floor((idx - LINEAR) / SUB) + 1;
  const low = (((idx - LINEAR) % SUB) + SUB) * 2 ** e;
  return low + (2 ** e - 1) / 2;
}

export type SparseHistogram = [index: number, count: number][];

export class Histogram {
  readonly counts = new Uint32Array(SIZE);
  total = 0;
  max = 0;

  record(us: number): void {
    this.counts[bucketOf(us)]! += 1;
    this.total += 1;
    if (us > this.max) this.max = us;
  }

  reset(): void {
    this.counts.fill(0);
    this.total = 0;
    this.max = 0;
  }

  /** Only the non-empty buckets, small enough to send over IPC. */
  sparse(): SparseHistogram {
    const out: SparseHistogram = [];
    for (let i = 0; i < SIZE; i++) if (this.counts[i] !== 0) out.push([i, this.counts[i]!]);
    return out;
  }

  add(sparse: SparseHistogram, max = 0): void {
    for (const [i, n] of sparse) {
      this.counts[i]! += n;
      this.total += n;
    }
    if (max > this.max) this.max = max;
  }

  /** Value (µs) at quantile q in [0, 1]; NaN when empty. */
  quantile(q: number): number {
    if (this.total === 0) return Number.NaN;
    const rank = Math.max(1, Math.ceil(q * this.total));
    let seen = 0;
    for (let i = 0; i < SIZE; i++) {
      seen += this.counts[i]!;
      if (seen >= rank) return valueOf(i);
    }
    return this.max;
  }

  /** p50/p99/p99.9/max in milliseconds. */
  summaryMs(): { p50Ms: number; p99Ms: number; p999Ms: number; maxMs: number } {
    const ms = (us: number): number => Math.round(us) / 1000;
    return { p50Ms: ms(this.quantile(0.5)), p99Ms: ms(this.quantile(0.99)), p999Ms: ms(this.quantile(0.999)), maxMs: ms(this.max) };
  }
}
