// Long convergence run of replicated (CRDT) entities across a cluster: its own redis-server,
// N nodes dropping a fraction of their outgoing changes (test-only switch), rounds of
// concurrent writes of all eight CRDT types on every node, each round checked against a
// sequential model; a node killed with SIGKILL and restarted every --restart-every rounds.
// Prints the convergence time T (last acknowledged write -> every node reads the model's
// values) as p50 / p99 / max over the rounds. At the end every node is killed at once and
// restarted (plus a new node), and every round is read again on each. The run is test/helpers/crdt-convergence-run.ts
// (test/integration/crdt-replication.test.ts runs a short one).
//
//   node --import=tsx scripts/crdt-convergence.ts [--nodes 3] [--rounds 40] [--keys 8] [--writes-per-node 300]
//        [--writers 4] [--drop 0.2] [--anti-entropy-ms 1000] [--restart-every 5] [--json out.json]
//
// Exit code 1 when a round failed a write, did not converge, or a restarted node read wrong values.
import { writeFile } from "node:fs/promises";
import { parseArgs } from "node:util";
import { percentile } from "../test/helpers/crdt-convergence.js";
import { runConvergence, type ConvergenceSettings } from "../test/helpers/crdt-convergence-run.js";

const { values: flags } = parseArgs({
  options: {
    nodes: { type: "string", default: "3" },
    rounds: { type: "string", default: "40" },
    keys: { type: "string", default: "8" },
    "writes-per-node": { type: "string", default: "300" },
    writers: { type: "string", default: "4" },
    drop: { type: "string", default: "0.2" },
    "anti-entropy-ms": { type: "string", default: "1000" },
    "restart-every": { type: "string", default: "5" },
    json: { type: "string" },
  },
});
const number = (name: keyof typeof flags, min: number): number => {
  const n = Number(flags[name]);
  if (!(Number.isFinite(n) && n >= min)) throw new Error(`--${name} must be a number >= ${min}, got "${String(flags[name])}"`);
  return n;
};
const settings: ConvergenceSettings = {
  nodes: number("nodes", 2),
  rounds: number("rounds", 1),
  keys: number("keys", 1),
  writesPerNode: number("writes-per-node", 1),
  writersPerNode: number("writers", 1),
  drop: number("drop", 0),
  antiEntropyMs: number("anti-entropy-ms", 1),
  restartEvery: number("restart-every", 0),
  convergeWithinMs: 60_000,
  wholeClusterRestart: true,
};
const log = (line: string) => process.stdout.write(`[crdt ${new Date().toISOString().slice(11, 23)}] ${line}\n`);

let exitCode = 1;
try {
  const result = await runConvergence(settings, log);
  const converged = result.rounds.filter((r) => r.convergedMs !== undefined).map((r) => r.convergedMs!);
  const failedWrites = result.rounds.reduce((n, r) => n + r.failures.length, 0);
  const diverged = result.rounds.filter((r) => r.convergedMs === undefined);
  const writes = result.rounds.reduce((n, r) => n + r.writes, 0);
  const summary = {
    settings,
    writes,
    failedWrites,
    rounds: result.rounds.length,
    restarts: result.rounds.filter((r) => r.restartedNode !== undefined).length,
    divergedRounds: diverged.length,
    wrongAfterRestart: result.afterRestarts.length,
    convergenceMs: converged.length === 0 ? undefined : { p50: percentile(converged, 50), p99: percentile(converged, 99), max: Math.max(...converged) },
    metrics: result.metrics,
  };
  process.stdout.write(JSON.stringify(summary, null, 2) + "\n");
  for (const round of diverged) log(`diverged: ${round.differences.slice(0, 10).join("; ")}`);
  for (const line of result.afterRestarts.slice(0, 10)) log(line);
  if (flags.json) await writeFile(flags.json, JSON.stringify({ ...summary, samplesMs: converged }, null, 2) + "\n");
  exitCode = failedWrites === 0 && diverged.length === 0 && result.afterRestarts.length === 0 ? 0 : 1;
} catch (err) {
  log(`run failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
}
process.exit(exitCode);
