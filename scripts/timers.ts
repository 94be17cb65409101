// The durable-timers proof at full size (issue 13): 1,000 timers due over 10 s, the node
// killed with SIGKILL 5 s in and restarted on the same store; all must fire, each once.
// Prints lateness p50/p99 (overall, before the kill, after the restart) per store.
//   node --import=tsx scripts/timers.ts [--count 1000] [--spread-ms 10000] [--kill-at-ms 5000] [--store redis|embedded|both]
import { parseArgs } from "node:util";
import { join } from "node:path";
import { builtModule } from "../test/helpers/build-cache.js";
import { REPO_ROOT } from "../test/helpers/node-process.js";
import { percentile, runTimers, type TimersReport } from "../test/helpers/timers-run.js";

const { values } = parseArgs({
  options: {
    count: { type: "string", default: "1000" },
    "spread-ms": { type: "string", default: "10000" },
    "kill-at-ms": { type: "string", default: "5000" },
    store: { type: "string", default: "both" },
  },
});
const stores = values.store === "both" ? (["embedded", "redis"] as const) : [values.store as "redis" | "embedded"];
// `keystate build` through the tests' build cache (in process, binaryen would load through tsx: ~18 s).
const wasm = await builtModule(join(REPO_ROOT, "test", "fixtures", "timers"));
let failed = false;
for (const store of stores) {
  const report = await runTimers({ wasm, count: Number(values.count), spreadMs: Number(values["spread-ms"]), killAtMs: Number(values["kill-at-ms"]), store });
  console.log(`${store}: ${describe(report)}`);
  failed ||= report.neverFired.length > 0 || report.firedTwice.length > 0;
}
process.exitCode = failed ? 1 : 0;

function describe(r: TimersReport): string {
  const p = (values: number[]) => `p50 ${percentile(values, 50)} ms / p99 ${percentile(values, 99)} ms (${values.length})`;
  return [
    `${r.firedOnce}/${r.scheduled} fired exactly once, ${r.neverFired.length} never, ${r.firedTwice.length} twice`,
    `lateness all ${p(r.latenessMs)}`,
    `before the kill ${p(r.latenessBeforeKillMs)}`,
    `after the restart ${p(r.latenessAfterRestartMs)}`,
    `restart ${r.restartMs} ms, ${r.dueWhileDown} due while the process was down`,
  ].join("; ");
}
