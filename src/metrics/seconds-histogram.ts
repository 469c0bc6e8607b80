/**
 * A Prometheus histogram of durations that a hot path observes with one
 * Map lookup and a few additions. prom-client's own Histogram hashes and
 * validates its label object on every observation, which cost an HTTP
 * request or a push several per cent of its CPU; this one keeps a series
 * per label values and is turned into prom-client's shape only when
 * `/metrics` is scraped (`get`, which a prom-client Registry calls).
 */

/** One set of label values: counts per bucket (not cumulative), sum and count. */
export interface SecondsSeries {
  observe(seconds: number): void;
}

class Series implements SecondsSeries {
  readonly labels: Readonly<Record<string, string>>;
  readonly counts: Float64Array;
  sum = 0;
  count = 0;
  readonly #bounds: readonly number[];

  constructor(labels: Record<string, string>, bounds: readonly number[]) {
    this.labels = labels;
    this.#bounds = bounds;
    this.counts = new Float64Array(bounds.length + 1);
  }

  observe(seconds: number): void {
    if (!Number.isFinite(seconds)) return;
    const bounds = this.#bounds;
    let i = 0;
    while (i < bounds.length && seconds > bounds[i]!) i++;
    this.counts[i]! += 1;
    this.sum += seconds;
    this.count += 1;
  }
}

interface ExportedValue {
  labels: Record<string, string | number>;
  sharedLabels: Record<string, string>;
  value: number;
  metricName: string;
}

export class SecondsHistogram<L extends string> {
  readonly name: string;
  readonly help: string;
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  readonly #labelNames: readonly L[];
  readonly #bounds: readonly number[];
  /** Every series, for the scrape; and the same reached through one Map per label value (no key string built per observation). */
  readonly #series: Series[] = [];
  readonly #tree = new Map<string, unknown>();

  constructor(name: string, help: string, labelNames: readonly L[], bounds: readonly number[]) {
    this.name = name;
    this.help = help;
    this.#labelNames = labelNames;
    this.#bounds = [...bounds].sort((a, b) => a - b);
  }

  /** The series of these label values, in the order of the label names; keep it to observe without a lookup. */
  series(...values: string[]): SecondsSeries {
    let node = this.#tree;
    const last = values.length - 1;
    for (let i = 0; i < last; i++) {
      let next = node.get(values[i]!) as Map<string, unknown> | undefined;
      if (next === undefined) {
        next = new Map();
        node.set(values[i]!, next);
      }
      node = next;
    }
    let series = node.get(values[last] ?? '') as Series | undefined;
    if (series === undefined) {
      const labels: Record<string, string> = {};
      this.#labelNames.forEach((name, i) => (labels[name] = values[i] ?? ''));
      series = new Series(labels, this.#bounds);
      node.set(values[last] ?? '', series);
      this.#series.push(series);
    }
    return series;
  }

  /** What a prom-client Registry prints: cumulative buckets, then +Inf, sum and count per series. */
  get(): { name: string; help: string; type: string; aggregator: string; values: ExportedValue[] } {
    const values: ExportedValue[] = [];
    const bucket = `${this.name}_bucket`;
    for (const s of this.#series) {
      let cumulative = 0;
      this.#bounds.forEach((le, i) => {
        cumulative += s.counts[i]!;
        values.push({ labels: { le }, sharedLabels: { ...s.labels }, value: cumulative, metricName: bucket });
      });
      values.push({ labels: { le: '+Inf' }, sharedLabels: { ...s.labels }, value: s.count, metricName: bucket });
      values.push({ labels: { ...s.labels }, sharedLabels: {}, value: s.sum, metricName: `${this.name}_sum` });
      values.push({ labels: { ...s.labels }, sharedLabels: {}, value: s.count, metricName: `${this.name}_count` });
    }
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }

  reset(): void {
    this.#series.length = 0;
    this.#tree.clear();
  }
}
