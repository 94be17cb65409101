// Saga chaos proof for the money-transfer example (modules/transfer): per seed, a real
// redis-server and a real `keystate serve` node; accounts with known balances (some
// frozen); --transfers transfers started at once (random amounts, some into frozen
// accounts, some out of them, some overdrafts); the node SIGKILLed at a point drawn from the
// seed and restarted on the same Redis; a bounded wait until every transfer is final; then
// the check (test/helpers/saga-checker.ts): money conserved, every transfer COMPLETED /
// COMPENSATED / FAILED with exactly the money moves that means, no step applied twice.
// The run itself is test/helpers/saga-run.ts (test/integration/saga.test.ts runs short ones).
//
//   node --import=tsx scripts/saga-chaos.ts --seed 1 [--seed 2 ...] [--transfers 200] [--accounts 12]
//        [--frozen 3] [--step-timeout-ms 1000] [--kill-window-ms 400] [--settle-timeout-ms 120000]
//        [--lease-ms 2000] [--json results.json]
//
// Exit code 1 on any violation, or when a run could not be carried out.
import { writeFile } from "node:fs/promises";
import { parseArgs } from "node:util";
import { formatSagaReport } from "../test/helpers/saga-checker.js";
import { buildTransferModule, runSagaChaos, type SagaRunResult } from "../test/helpers/saga-run.js";
import { makeTempDir, removeDir } from "../test/helpers/temp-dir.js";

const { values: flags } = parseArgs({
  options: {
    seed: { type: "string", multiple: true, default: ["1"] },
    transfers: { type: "string", default: "200" },
    accounts: { type: "string", default: "12" },
    frozen: { type: "string", default: "3" },
    "step-timeout-ms": { type: "string", default: "1000" },
    "kill-window-ms": { type: "string", default: "400" },
    "settle-timeout-ms": { type: "string", default: "120000" },
    "lease-ms": { type: "string", default: "2000" },
    json: { type: "string" },
  },
});
const whole = (name: string, value: string | undefined, min = 1): number => {
  const n = Number(value);
  if (!(Number.isInteger(n) && n >= min)) throw new Error(`--${name} must be a whole number >= ${min}, got "${String(value)}"`);
  return n;
};
const seeds = flags.seed.map((s) => whole("seed", s, 0));
const log = (line: string) => process.stdout.write(`[saga ${new Date().toISOString().slice(11, 23)}] ${line}\n`);

let exitCode = 0;
const results: SagaRunResult[] = [];
const buildDir = await makeTempDir("saga-build");
try {
  // One build for every seed: the module is the same.
  const wasm = await buildTransferModule(buildDir);
  for (const seed of seeds) {
    const result = await runSagaChaos(
      {
        seed,
        transfers: whole("transfers", flags.transfers),
        accounts: whole("accounts", flags.accounts, 3),
        frozen: whole("frozen", flags.frozen),
        killWindowMs: whole("kill-window-ms", flags["kill-window-ms"]),
        stepTimeoutMs: whole("step-timeout-ms", flags["step-timeout-ms"]),
        settleTimeoutMs: whole("settle-timeout-ms", flags["settle-timeout-ms"]),
        leaseMs: whole("lease-ms", flags["lease-ms"]),
        wasm,
      },
      log,
    );
    results.push(result);
    const f = result.figures;
    process.stdout.write(
      `\n== seed ${seed}: kill at ${f.killAtMs} ms (${f.startedAtKill} started, ${f.finalAtKill} final by then), restart ${f.restartMs} ms, ` +
        `settled ${f.settleMs} ms after the first Start (${f.settleAfterRestartMs} ms after the restart), ${f.startRetries} Start retries, ${f.pickedUpAfterRestart} stored effects and timers picked up by the restarted node\n` +
        formatSagaReport(result.report) + "\n\n",
    );
    if (f.pickedUpAfterRestart <= 0) {
      const when = f.startRetries > 0 ? "before any Start was stored (it proves the Start retries and the restart, not step recovery)" : "after the work was done (it proves little)";
      log(`seed ${seed}: the restarted node picked up nothing stored: the kill came ${when}`);
    }
    if (result.report.violations.length > 0) exitCode = 1;
  }
  const summary = results.map((r) => `seed ${r.plan.seed}: ${r.report.violations.length} violations, settled in ${r.figures.settleMs} ms, ${Object.entries(r.report.byStatus).sort().map(([s, n]) => `${s} ${n}`).join(" ")}`);
  process.stdout.write(`summary:\n  ${summary.join("\n  ")}\n`);
  if (flags.json) {
    await writeFile(flags.json, JSON.stringify(results.map(({ plan, report, figures, logDir }) => ({ seed: plan.seed, killAfterMs: plan.killAfterMs, figures, report, logDir })), null, 2) + "\n");
    log(`results written to ${flags.json}`);
  }
} catch (err) {
  log(`saga chaos run failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
  exitCode = 1;
} finally {
  await removeDir(buildDir);
}
process.exit(exitCode);
