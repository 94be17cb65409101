// A short chaos run (test/helpers/chaos-run.ts, the same one as scripts/chaos.ts at full length):
// three `keystate serve` nodes on one redis-server (AOF, fsync always), counter increments and
// cart adds from 8 callers over 2,000 keys for 25 s while a random node is killed with SIGKILL
// every 7 s and restarted with the same id and data dir. Every touched entity is read back:
// counters within [acked, acked + in doubt], every acknowledged cart item present exactly once
// (twice only after a client retry of an in-doubt attempt), nothing refused or never sent
// present, and each cart's journal gapless (seqs 1..n, one per item added).
import test from "ava";
import { formatReport } from "../helpers/chaos-checker.js";
import { runChaos, type ChaosSettings } from "../helpers/chaos-run.js";
import { removeDir } from "../helpers/temp-dir.js";

const SETTINGS: ChaosSettings = { nodes: 3, durationMs: 25_000, killEveryMs: 7_000, keys: 2_000, concurrency: 8, leaseMs: 2_000 };

// Operations that succeed (after the workload's one retry on another node), over all operations.
// A kill makes its node's shards ownerless until a survivor acquires them (one lease plus a
// round, ~2-3 s here); survivors hold calls for such shards until then (bounded by the 3 s call
// deadline), so an operation fails only when both its attempts do: mostly a call in flight on the
// killed node whose retry also lands before the move. Measured on the 2-core box with other
// engineers' suites running (load average 6-11), 17 runs of these settings, 4 of them two at a
// time: 99.815-100 % (0-10 failed of 1,800-15,200 operations over 2 kills). 0.95 is more than 20
// times the worst failure rate seen: room for a much slower box where calls hit their deadline,
// not a number that passes by luck. The ratio counts operations, and a caller held to its 3 s
// deadline fails once however long the outage, so a long outage shows more in the recovery
// times and never-recovered keys below than here.
const AVAILABILITY_FLOOR = 0.95;
// Recovery (kill to a failed key's next success) is bounded by the lease plus the acquisition
// round and the client's 200 ms revisit: p99 2.0-4.2 s measured; 5 s is the slack for load.
const RECOVERY_P99_LIMIT_MS = SETTINGS.leaseMs + 5_000;

test("chaos: nodes killed with SIGKILL and restarted under load lose, double or reorder no acknowledged write", async (t) => {
  // Setup ~10 s (redis, 3 nodes, 2 deploys), 25 s of workload, read-back ~3 s: 28-38 s measured.
  t.timeout(90_000);
  const lines: string[] = [];
  const log = (line: string) => lines.push(`${new Date().toISOString().slice(11, 23)} ${line}`);
  let result: Awaited<ReturnType<typeof runChaos>>;
  try {
    result = await runChaos(SETTINGS, log);
  } catch (err) {
    t.log(lines.join("\n"));
    throw err;
  }
  const { report, kills, violations, restartsFailed, logDir } = result;
  // The node logs stay for a failed run (their directory is in the run log).
  t.teardown(() => (t.passed ? removeDir(logDir) : undefined));

  t.log(formatReport(report));
  const ratio = report.availability.ratio ?? 0;
  const { p99, samples, unrecovered } = report.recovery;
  const failedOps = report.availability.total - report.availability.ok;
  const good =
    violations === 0 &&
    restartsFailed === 0 &&
    kills.length >= 1 &&
    ratio >= AVAILABILITY_FLOOR &&
    unrecovered === 0 &&
    (failedOps === 0 || samples.length > 0) &&
    (p99 === null || p99 < RECOVERY_P99_LIMIT_MS);
  if (!good) t.log(lines.join("\n"));

  t.is(violations, 0, "counter bounds, cart items and journal seqs (see the report)");
  t.true(kills.length >= 1, "a node was killed");
  t.deepEqual(
    kills.filter((k) => k.error).map((k) => `${k.node}: ${k.error}`),
    [],
    "every killed node restarted",
  );
  t.true(report.counters.checked > 0 && report.carts.checked > 0 && report.journalsChecked === report.carts.checked, "counters, carts and journals were read back");
  t.log(`availability ${(ratio * 100).toFixed(3)} % (floor ${AVAILABILITY_FLOOR * 100} %)`);
  t.true(ratio >= AVAILABILITY_FLOOR, `availability ${ratio} below ${AVAILABILITY_FLOOR}`);
  // Every key that failed after a kill succeeded again before the end.
  t.is(unrecovered, 0, "keys that never recovered");
  // Samples come only from operations that failed even after their retry. A kill need not cause
  // one (survivors hold calls until the shards move): 2 of 17 measured runs had none and 100 %
  // availability. So: samples whenever an operation failed, and then p99 under the limit.
  if (failedOps > 0) t.true(samples.length > 0, `${failedOps} operations failed but no recovery was measured`);
  else t.log("no operation failed even after a kill: no recovery samples (nothing to recover from)");
  if (samples.length > 0) t.true(p99 !== null && p99 < RECOVERY_P99_LIMIT_MS, `recovery p99 ${p99} ms, limit ${RECOVERY_P99_LIMIT_MS} ms`);
});
