// The latency of each named step of a profiling loop, printed as one p50/p99 line per step.
import { Recorder } from "./histogram.js";
import { fmtUs } from "./progress.js";

export class StepTimes<Step extends string> {
  readonly #recorders: Map<Step, Recorder>;

  constructor(steps: readonly Step[]) {
    this.#recorders = new Map(steps.map((step) => [step, new Recorder()]));
  }

  /** One sample of `step`, from two `performance.now()` readings. */
  record(step: Step, fromMs: number, toMs: number): void {
    this.#recorders.get(step)!.recordNs((toMs - fromMs) * 1e6);
  }

  print(): void {
    const width = Math.max(...[...this.#recorders.keys()].map((step) => step.length)) + 2;
    for (const [step, recorder] of this.#recorders) {
      const { p50, p99 } = recorder.summary();
      process.stdout.write(`${step.padEnd(width)} p50 ${fmtUs(p50).padStart(9)}  p99 ${fmtUs(p99).padStart(9)}\n`);
    }
  }
}
