// `npm run bench [-- startup|throughput|density|cluster ...] [--quick] [--json] [--no-restate]`:
// runs each chosen suite in its own process, then regenerates RESULTS.md from the latest
// result of every suite and prints the goals (or, with --json, every result) at the end.
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parseBenchArgs } from "./lib/args.js";
import { outputPaths } from "./lib/outputs.js";
import { BENCH_DIR, REPO_ROOT, tsNodeArgs } from "./lib/paths.js";
import { progress } from "./lib/progress.js";
import { writeMarkdown } from "./lib/report.js";
import type { SuiteResult } from "./lib/result.js";
import { ensureDist } from "./lib/prepare.js";

const args = parseBenchArgs(process.argv.slice(2));
const paths = outputPaths(args.quick);
// The same means the tests use to get redis-server and h2load (installs only when missing, needs root).
const deps = args.renderOnly ? { status: 0 } : spawnSync("bash", [join(REPO_ROOT, "scripts", "ensure-system-deps.sh")], { stdio: ["ignore", "inherit", "inherit"] });
if (deps.status !== 0) progress("bench", "warning: scripts/ensure-system-deps.sh failed; suites that need redis-server or h2load will say so");
if (!args.renderOnly) ensureDist("bench");

const failed: string[] = [];
for (const suite of args.renderOnly ? [] : args.suites) {
  const flags = [args.quick ? "--quick" : "", args.noRestate ? "--no-restate" : ""].filter(Boolean);
  const run = spawnSync(process.execPath, ["--expose-gc", ...tsNodeArgs("run-suite.ts", suite, ...flags)], {
    stdio: ["ignore", "inherit", "inherit"],
    env: { ...process.env, KEYSTATE_BENCH_COMMAND: args.command, KEYSTATE_LOG_LEVEL: process.env.KEYSTATE_LOG_LEVEL ?? "warn" },
  });
  if (run.status !== 0) {
    progress("bench", `suite ${suite} failed (exit ${run.status ?? run.signal}); its previous result, if any, stays in RESULTS.md`);
    failed.push(suite);
  }
}

writeMarkdown(paths, readFileSync(join(BENCH_DIR, "lib", "results-preamble.md"), "utf8"), readFileSync(join(BENCH_DIR, "lib", "results-notes.md"), "utf8"));
const results = args.suites
  .filter((s) => !failed.includes(s))
  .map((s) => JSON.parse(readFileSync(join(paths.resultsDir, `${s}.json`), "utf8")) as SuiteResult);

if (args.json) {
  process.stdout.write(JSON.stringify(results, null, 2) + "\n");
} else {
  for (const result of results) {
    process.stdout.write(`\n${result.title}\n`);
    for (const g of result.goals) process.stdout.write(`  ${g.met === undefined ? "n/a    " : g.met ? "met    " : "NOT met"}  ${g.goal}: ${g.measured}\n`);
  }
  process.stdout.write(`\nResults written to ${paths.markdown}\n`);
}
process.exitCode = failed.length > 0 ? 1 : 0;
