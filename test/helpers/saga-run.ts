// One saga chaos run, for scripts/saga-chaos.ts and test/integration/saga.test.ts: a real
// redis-server and one real `keystate serve` node on it with the transfer example deployed;
// the plan's accounts opened (some frozen); every planned transfer started at once; the node
// SIGKILLed at the plan's kill point and restarted on the same Redis; then a bounded wait
// until every transfer is final, and the check (saga-checker.ts) of what the store holds.
//
// Always cleans up (node, redis-server, data dirs). The node logs are kept, in `logDir`,
// only when the run found a violation or failed, and their path is logged.
import { randomBytes } from "node:crypto";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { buildModuleTo } from "./build-cache.js";
import { deploy } from "./deployed-node.js";
import { REPO_ROOT, startNodeProcess, type NodeProcess } from "./node-process.js";
import { startRedis } from "./redis-server.js";
import { checkSaga, FINAL_STATUSES, type ObservedTransfer, type SagaReport } from "./saga-checker.js";
import { SagaClients, readAccountJournal, type SagaNode } from "./saga-client.js";
import { makePlan, type PlanSettings, type SagaPlan } from "./saga-plan.js";
import { makeTempDir, removeDir } from "./temp-dir.js";

export interface SagaRunSettings extends PlanSettings {
  /** Every transfer's StartTransfer.step_timeout_ms. */
  readonly stepTimeoutMs: number;
  /** How long to wait, from the first Start, for every transfer to be final. */
  readonly settleTimeoutMs: number;
  /** The node's --lease-ms: how long its restart waits for the killed process's shards. */
  readonly leaseMs: number;
  /** A built transfer module; built from modules/transfer into the run's own dir when absent. */
  readonly wasm?: string;
}

export interface SagaFigures {
  /** The kill, in ms after the first Start was sent. */
  readonly killAtMs: number;
  /** What the client knew at the kill: Starts acknowledged, and transfers seen final. */
  readonly startedAtKill: number;
  readonly finalAtKill: number;
  /** SIGKILL to the restarted node answering a call. */
  readonly restartMs: number;
  /** First Start to the last transfer seen final (polled every POLL_MS). */
  readonly settleMs: number;
  /** Restarted node answering to the last transfer seen final. */
  readonly settleAfterRestartMs: number;
  /** Start calls that failed (the kill) and were sent again. */
  readonly startRetries: number;
  /**
   * Stored side effects and timers the restarted node picked up from the outbox (from its
   * log): the steps the kill left in flight. -1 when the log has no such line.
   */
  readonly pickedUpAfterRestart: number;
}

export interface SagaRunResult {
  readonly plan: SagaPlan;
  readonly report: SagaReport;
  readonly figures: SagaFigures;
  /** Set when the logs were kept (a violation). */
  readonly logDir?: string;
}

const POLL_MS = 200;
const TRANSFER_CLUSTER = "saga";

export async function runSagaChaos(settings: SagaRunSettings, log: (line: string) => void): Promise<SagaRunResult> {
  const plan = makePlan(settings);
  const work = await makeTempDir(`saga-${settings.seed}`);
  const token = randomBytes(16).toString("hex");
  const dataDir = join(work, "node");
  const redis = await startRedis();
  const logs: string[] = [];
  let node: NodeProcess | undefined;
  let keepLogs = true;
  // Ends the status poller when the run ends early (a failed Start, a node that does not come back).
  let stopPolling = false;
  const current = (): SagaNode | undefined => (node ? { grpcPort: node.grpcPort, adminUrl: node.adminUrl, token } : undefined);
  const clients = new SagaClients(current);
  try {
    const wasm = settings.wasm ?? (await buildTransferModule(work));
    await mkdir(dataDir);
    node = await startNode(dataDir, redis.url, token, settings.leaseMs, log);
    await deploy(node, wasm);
    await untilAnswers(clients, 60_000);
    log(`seed ${plan.seed}: node up (gRPC ${node.grpcPort}), ${plan.accounts.length} accounts (${plan.accounts.filter((a) => a.frozen).length} frozen), ${plan.transfers.length} transfers, kill ${plan.killAfterMs} ms after the first Start is ${plan.killAfter}`);
    for (const account of plan.accounts) {
      await clients.account("Open", { accountId: account.id, initialBalance: String(account.initialBalance) });
      if (account.frozen) await clients.account("Freeze", { accountId: account.id });
    }

    const t0 = Date.now();
    const deadline = t0 + settings.settleTimeoutMs;
    const started = new Set<string>();
    const final = new Map<string, number>(); // transfer id -> when it was seen final
    let startRetries = 0;
    // Resolved from the first acknowledged Start itself, not by polling `started`: a kill
    // timed from the acknowledgement must not wait for the test process's next timer turn.
    let firstAcknowledged!: () => void;
    const firstAck = new Promise<void>((resolve) => (firstAcknowledged = resolve));
    const starts = plan.transfers.map(async (transfer) => {
      const request = { transferId: transfer.id, fromAccount: transfer.from, toAccount: transfer.to, amount: String(transfer.amount), stepTimeoutMs: settings.stepTimeoutMs };
      for (;;) {
        try {
          await clients.transfer("Start", request);
          started.add(transfer.id);
          firstAcknowledged();
          return;
        } catch (err) {
          // Start is idempotent per transfer id (same fields: the state back), so retrying an in-doubt one is safe.
          const code = (err as { code?: number }).code;
          if (code === 3 || code === 6 || Date.now() > deadline) throw new Error(`Start ${transfer.id}: ${String(err)}`);
          startRetries++;
          await sleep(POLL_MS);
        }
      }
    });
    const startsDone = Promise.all(starts);
    startsDone.catch(() => undefined); // awaited below; a rejection meanwhile is not unhandled

    const poller = (async () => {
      while (!stopPolling) {
        const pending = plan.transfers.filter((t) => started.has(t.id) && !final.has(t.id));
        await Promise.all(pending.map(async (t) => {
          try {
            const view = await clients.getTransfer(t.id, 2_000);
            if ((FINAL_STATUSES as readonly string[]).includes(view.status)) final.set(t.id, Date.now());
          } catch {
            // The node is down or busy: polled again next round.
          }
        }));
        if (final.size === plan.transfers.length || Date.now() > deadline) return;
        await sleep(POLL_MS);
      }
    })();

    if (plan.killAfter === "acknowledged") {
      await Promise.race([firstAck, startsDone.then(() => undefined, () => undefined)]);
      await sleep(plan.killAfterMs);
    } else {
      await sleep(Math.max(0, t0 + plan.killAfterMs - Date.now()));
    }
    const killAtMs = Date.now() - t0;
    const startedAtKill = started.size;
    const finalAtKill = final.size;
    const victim = node;
    node = undefined;
    await victim.kill("SIGKILL");
    logs.push(victim.output.join(""));
    log(`seed ${plan.seed}: SIGKILL at ${killAtMs} ms (${startedAtKill} Starts acknowledged, ${finalAtKill} transfers seen final)`);
    const killedAt = Date.now();
    node = await startNode(dataDir, redis.url, token, settings.leaseMs, log);
    await untilAnswers(clients, 60_000);
    const restartedAt = Date.now();
    log(`seed ${plan.seed}: node back after ${restartedAt - killedAt} ms (gRPC ${node.grpcPort})`);

    await startsDone;
    await poller;
    stopPolling = true;
    const lastFinal = final.size > 0 ? Math.max(...final.values()) : Number.NaN;
    log(`seed ${plan.seed}: ${final.size}/${plan.transfers.length} transfers final ${final.size === plan.transfers.length ? `after ${lastFinal - t0} ms` : `when the wait ended (${settings.settleTimeoutMs} ms)`}`);

    const report = checkSaga(plan, await readBack(plan, clients, current()!));
    keepLogs = report.violations.length > 0;
    const figures: SagaFigures = {
      killAtMs,
      startedAtKill,
      finalAtKill,
      restartMs: restartedAt - killedAt,
      settleMs: final.size > 0 ? lastFinal - t0 : -1,
      settleAfterRestartMs: final.size > 0 ? Math.max(0, lastFinal - restartedAt) : -1,
      startRetries,
      pickedUpAfterRestart: pickedUp(node.output),
    };
    return { plan, report, figures, ...(keepLogs ? { logDir: work } : {}) };
  } finally {
    stopPolling = true;
    clients.close();
    if (node) {
      await node.kill("SIGKILL");
      logs.push(node.output.join(""));
    }
    await redis.stop();
    if (keepLogs) {
      await Promise.all(logs.map((text, i) => writeFile(join(work, `node-${i + 1}.log`), text)));
      log(`seed ${plan.seed}: node logs kept in ${work}`);
    } else {
      await removeDir(work);
    }
  }
}

/** The sum of `started` over the node's "stored asynchronous side effects … picked up / redelivered" log lines (-1: none). */
export function pickedUp(output: readonly string[]): number {
  let total = -1;
  for (const line of output.join("").split("\n")) {
    if (!line.includes('"msg":"stored asynchronous side effects')) continue;
    const started = /"started":(\d+)/.exec(line);
    if (started) total = Math.max(total, 0) + Number(started[1]);
  }
  return total;
}

/** `keystate build modules/transfer` into `dir` (a concurrent build elsewhere never hands us a half-written file). */
export async function buildTransferModule(dir: string): Promise<string> {
  const wasm = join(dir, "transfer.wasm");
  await buildModuleTo(join(REPO_ROOT, "modules", "transfer"), wasm);
  return wasm;
}

/** Starts the node; a restart right after a kill -9 may be refused while the dead process's heartbeat lives, so it is tried again. */
async function startNode(dataDir: string, redisUrl: string, token: string, leaseMs: number, log: (line: string) => void): Promise<NodeProcess> {
  await writeFile(join(dataDir, "admin-token"), token + "\n", { mode: 0o600 });
  const extraArgs = ["--node-id", "saga-n0", "--lease-ms", String(leaseMs), "--admin-token", token];
  const deadline = Date.now() + 4 * leaseMs + 30_000;
  for (let attempt = 1; ; attempt++) {
    try {
      return await startNodeProcess({ dataDir, redisUrl, cluster: TRANSFER_CLUSTER, extraArgs });
    } catch (err) {
      if (Date.now() > deadline) throw err;
      log(`node start attempt ${attempt} failed (${String(err).split("\n")[0]}); retrying`);
      await sleep(500);
    }
  }
}

/** Resolves once the node answers an Account call (its shards are served). */
async function untilAnswers(clients: SagaClients, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      await clients.account("GetAccount", { accountId: "saga-probe" }, 2_000);
      return;
    } catch (err) {
      if (Date.now() > deadline) throw new Error(`the node did not answer within ${timeoutMs} ms: ${String(err)}`);
      await sleep(100);
    }
  }
}

/** Every account's balance and journal, every transfer's state: what the checker judges. */
async function readBack(plan: SagaPlan, clients: SagaClients, node: SagaNode) {
  const accounts = [];
  for (const account of plan.accounts) {
    const state = await clients.account("GetAccount", { accountId: account.id });
    accounts.push({ id: account.id, balance: Number(state.balance), events: await readAccountJournal(node, account.id) });
  }
  const transfers: ObservedTransfer[] = [];
  for (const transfer of plan.transfers) {
    const view = await clients.getTransfer(transfer.id);
    transfers.push({ id: transfer.id, status: view.status === "TRANSFER_STATUS_UNSPECIFIED" ? "" : view.status, history: view.history });
  }
  return { accounts, transfers };
}
