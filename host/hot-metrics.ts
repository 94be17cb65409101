// Metric series updated on every call or command, printed in Prometheus's text format.
// prom-client's inc() and observe() check and hash the labels object on every call (about
// 0.5 and 1 us, a few percent of a node's CPU at full load). A hot series is looked up by
// its label values in a Map and then updated with a few additions; the label text is
// built once. Printed as prom-client prints its own: same line order, labels and escaping.

const escapeLabel = (value: string) => value.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/"/g, '\\"');

export abstract class HotMetric<S> {
  readonly #series = new Map<string, S>();
  readonly #header: string;

  constructor(
    readonly name: string,
    help: string,
    type: "counter" | "histogram",
    readonly labelNames: readonly string[],
  ) {
    this.#header = `# HELP ${name} ${help.replace(/\\/g, "\\\\").replace(/\n/g, "\\n")}\n# TYPE ${name} ${type}`;
  }

  /** The series of a metric with one label: series(value) without the array of a rest parameter (per command). */
  seriesOf(value: string): S {
    return this.#series.get(value) ?? this.series(value);
  }

  /** The series of one set of label values (in labelNames order), made on first use. */
  series(...values: string[]): S {
    const key = values.length === 1 ? values[0]! : values.join("\u0000");
    let series = this.#series.get(key);
    if (series === undefined) {
      series = this.make(this.labelNames.map((name, i) => `${name}="${escapeLabel(values[i]!)}"`).join(","));
      this.#series.set(key, series);
    }
    return series;
  }

  exposition(): string {
    return [this.#header, ...[...this.#series.values()].flatMap((series) => this.lines(series))].join("\n");
  }

  protected abstract make(labels: string): S;
  protected abstract lines(series: S): string[];
}

export interface CounterSeries {
  readonly labels: string;
  value: number;
}

export class HotCounter extends HotMetric<CounterSeries> {
  constructor(name: string, help: string, labelNames: readonly string[]) {
    super(name, help, "counter", labelNames);
  }

  protected make(labels: string): CounterSeries {
    return { labels, value: 0 };
  }

  protected lines(series: CounterSeries): string[] {
    return [`${this.name}{${series.labels}} ${series.value}`];
  }
}

export class HistogramSeries {
  /** Observations per bucket (not cumulative; summed when printed). */
  readonly counts: number[];
  sum = 0;
  count = 0;

  constructor(
    readonly labels: string,
    readonly bounds: readonly number[],
  ) {
    this.counts = bounds.map(() => 0);
  }

  observe(value: number): void {
    this.sum += value;
    this.count += 1;
    const bounds = this.bounds;
    for (let i = 0; i < bounds.length; i++) {
      if (value <= bounds[i]!) {
        this.counts[i]! += 1;
        return;
      }
    }
  }
}

export class HotHistogram extends HotMetric<HistogramSeries> {
  readonly #bounds: readonly number[];

  constructor(name: string, help: string, labelNames: readonly string[], bounds: readonly number[]) {
    super(name, help, "histogram", labelNames);
    this.#bounds = bounds;
  }

  protected make(labels: string): HistogramSeries {
    return new HistogramSeries(labels, this.#bounds);
  }

  protected lines(series: HistogramSeries): string[] {
    let cumulative = 0;
    const buckets = this.#bounds.map((bound, i) => `${this.name}_bucket{le="${bound}",${series.labels}} ${(cumulative += series.counts[i]!)}`);
    return [
      ...buckets,
      `${this.name}_bucket{le="+Inf",${series.labels}} ${series.count}`,
      `${this.name}_sum{${series.labels}} ${series.sum}`,
      `${this.name}_count{${series.labels}} ${series.count}`,
    ];
  }
}
