// Chaos run of a Keystate cluster: its own redis-server (AOF, fsync always), N `keystate serve`
// nodes in cluster "chaos", the counter and shopping-cart examples deployed once, then the chaos
// workload while every --kill-every-s one random node is killed with SIGKILL and restarted (same
// node id, same data dir). Afterwards every touched entity is read back and checked. The run
// itself is test/helpers/chaos-run.ts (test/integration/cluster-chaos.test.ts runs a short one).
//
//   node --import=tsx scripts/chaos.ts [--nodes 3] [--duration-s 120] [--kill-every-s 10] [--keys 10000]
//                                       [--concurrency 16] [--lease-ms 2000] [--json results.json]
//
// Exit code 1 on any violation or failed restart (or when the cluster never became ready).
import { writeFile } from "node:fs/promises";
import { parseArgs } from "node:util";
import { formatReport } from "../test/helpers/chaos-checker.js";
import { runChaos, type ChaosSettings } from "../test/helpers/chaos-run.js";

const { values: flags } = parseArgs({
  options: {
    nodes: { type: "string", default: "3" },
    "duration-s": { type: "string", default: "120" },
    "kill-every-s": { type: "string", default: "10" },
    keys: { type: "string", default: "10000" },
    concurrency: { type: "string", default: "16" },
    "lease-ms": { type: "string", default: "2000" },
    json: { type: "string" },
  },
});
const positive = (name: keyof typeof flags): number => {
  const n = Number(flags[name]);
  if (!(Number.isFinite(n) && n > 0)) throw new Error(`--${name} must be a number > 0, got "${String(flags[name])}"`);
  return n;
};
const settings: ChaosSettings = {
  nodes: positive("nodes"),
  durationMs: positive("duration-s") * 1000,
  killEveryMs: positive("kill-every-s") * 1000,
  keys: positive("keys"),
  concurrency: positive("concurrency"),
  leaseMs: positive("lease-ms"),
};
const log = (line: string) => process.stdout.write(`[chaos ${new Date().toISOString().slice(11, 23)}] ${line}\n`);

let exitCode = 1;
try {
  const { report, kills, violations, restartsFailed } = await runChaos(settings, log);
  process.stdout.write(formatReport(report) + "\n");
  if (restartsFailed > 0) log(`${restartsFailed} restarts failed`);
  if (flags.json) {
    const { samples, ...recovery } = report.recovery;
    await writeFile(flags.json, JSON.stringify({ settings, ...report, recovery: { ...recovery, samples: samples.length }, recoverySamplesMs: samples, kills, violations }, null, 2) + "\n");
    log(`results written to ${flags.json}`);
  }
  exitCode = violations === 0 && restartsFailed === 0 ? 0 : 1;
} catch (err) {
  log(`chaos run failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
}
process.exit(exitCode);
