// Runs one suite in a process of its own (so one suite's heap and JIT state do not
// colour the next) and saves its result as JSON: bench/run-suite.ts <suite> [--quick] [--no-restate].
import { parseBenchArgs, type SuiteName } from "./lib/args.js";
import { machineInfo } from "./lib/machine.js";
import { outputPaths } from "./lib/outputs.js";
import { progress } from "./lib/progress.js";
import { saveSuite } from "./lib/report.js";
import type { SuiteBody, SuiteContext } from "./lib/result.js";

const args = parseBenchArgs(process.argv.slice(2));
const suite = args.suites[0]!;
const command = process.env.KEYSTATE_BENCH_COMMAND ?? args.command;

async function load(name: SuiteName): Promise<(ctx: SuiteContext) => Promise<SuiteBody>> {
  switch (name) {
    case "startup":
      return (await import("./suites/startup.js")).runStartup;
    case "throughput":
      return (await import("./suites/throughput.js")).runThroughput;
    case "density":
      return (await import("./suites/density.js")).runDensity;
    case "cluster":
      return (await import("./suites/cluster.js")).runCluster;
    case "presence":
      return (await import("./suites/presence.js")).runPresence;
    case "eventing":
      return (await import("./suites/eventing.js")).runEventing;
    case "polyglot":
      return (await import("./suites/polyglot.js")).runPolyglot;
  }
}

const ctx: SuiteContext = {
  quick: args.quick,
  noRestate: args.noRestate,
  budget: (full, quick) => (args.quick ? quick : full),
};
const startedAt = new Date();
const started = performance.now();
progress(suite, `starting${args.quick ? " (quick mode)" : ""}`);
const body = await (await load(suite))(ctx);
saveSuite(outputPaths(args.quick), {
  suite,
  command,
  quick: args.quick,
  startedAt: startedAt.toISOString().replace(/\.\d+Z$/, "Z"),
  seconds: (performance.now() - started) / 1000,
  machine: machineInfo(),
  ...body,
});
progress(suite, `done in ${((performance.now() - started) / 1000).toFixed(1)} s`);
// Servers and timers of the suite must not keep this process alive.
process.exit(0);
