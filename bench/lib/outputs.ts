// Where a run writes: full runs update bench/RESULTS.md (committed); quick runs write
// bench/quick/ (git-ignored), so a smoke test never overwrites the real figures.
import { join } from "node:path";
import type { OutputPaths } from "./report.js";
import { BENCH_DIR } from "./paths.js";

export function outputPaths(quick: boolean): OutputPaths {
  return quick
    ? { resultsDir: join(BENCH_DIR, "quick", "results"), markdown: join(BENCH_DIR, "quick", "RESULTS.md"), chartsDir: join(BENCH_DIR, "quick") }
    : { resultsDir: join(BENCH_DIR, "results"), markdown: join(BENCH_DIR, "RESULTS.md"), chartsDir: BENCH_DIR };
}
