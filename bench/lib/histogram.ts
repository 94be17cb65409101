// Latency samples go into an HdrHistogram (hdr-histogram-js) in nanoseconds, so
// percentiles come from a well-kept implementation, not from sorting arrays by hand.
import * as hdr from "hdr-histogram-js";

export interface Latency {
  /** Samples recorded. */
  readonly n: number;
  /** Microseconds. */
  readonly p50: number;
  readonly p90: number;
  readonly p99: number;
  readonly max: number;
  readonly mean: number;
}

export class Recorder {
  readonly #histogram = hdr.build({ useWebAssembly: false, numberOfSignificantValueDigits: 3 });

  recordNs(ns: number): void {
    this.#histogram.recordValue(Math.max(1, Math.round(ns)));
  }

  recordUs(us: number): void {
    this.recordNs(us * 1000);
  }

  get count(): number {
    return this.#histogram.totalCount;
  }

  summary(): Latency {
    const h = this.#histogram;
    const us = (ns: number) => ns / 1000;
    return {
      n: h.totalCount,
      p50: us(h.getValueAtPercentile(50)),
      p90: us(h.getValueAtPercentile(90)),
      p99: us(h.getValueAtPercentile(99)),
      max: us(h.maxValue),
      mean: us(h.mean),
    };
  }
}

export interface SampleOptions {
  /** Stop after this long (the suite's time bound) ... */
  readonly budgetMs: number;
  /** ... or after this many samples, whichever comes first ... */
  readonly maxIterations: number;
  /** ... but take at least this many (even past the budget). */
  readonly minIterations?: number;
  /** Untimed iterations first, so JIT tiers and caches settle. */
  readonly warmup?: number;
}

/**
 * Times `run` once per iteration. `prepare` (untimed) builds what one iteration consumes,
 * e.g. fresh module bytes, so the timed part measures only the operation itself.
 */
export async function sample<T>(
  options: SampleOptions,
  prepare: (i: number) => T | Promise<T>,
  run: (input: T, i: number) => unknown,
): Promise<Latency> {
  const recorder = new Recorder();
  for (let i = 0; i < (options.warmup ?? 0); i++) await run(await prepare(-1 - i), -1 - i);
  const deadline = performance.now() + options.budgetMs;
  const min = options.minIterations ?? 5;
  for (let i = 0; i < options.maxIterations; i++) {
    if (i >= min && performance.now() > deadline) break;
    const input = await prepare(i);
    const start = process.hrtime.bigint();
    const result = run(input, i);
    if (result instanceof Promise) await result;
    recorder.recordNs(Number(process.hrtime.bigint() - start));
  }
  return recorder.summary();
}
