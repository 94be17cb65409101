// One run of the durable-timers proof, for scripts/timers.ts and test/integration/timers.test.ts:
// a real `keystate serve` (on its own redis-server unless told to use the embedded store) with
// test/fixtures/timers deployed; `count` alarms each schedule one timer, due evenly over
// `spreadMs`; the node is killed with SIGKILL at `killAtMs` and restarted on the same store;
// then every alarm is read back. Lateness comes from the nodes' own "timer fired" log lines
// (debug level), so it is the host's view: due time to the moment the timer's call starts.
import { setTimeout as sleep } from "node:timers/promises";
import { join } from "node:path";
import { contractClient, type ContractClient } from "./grpc-client.js";
import { deploy } from "./deployed-node.js";
import { REPO_ROOT, startNodeProcess, type NodeProcess } from "./node-process.js";
import { startRedis, type RunningRedis } from "./redis-server.js";
import { makeTempDir, removeDir } from "./temp-dir.js";

export interface TimersSettings {
  /** The built test/fixtures/timers module. */
  readonly wasm: string;
  readonly count: number;
  /** Timers are due evenly from ~1 s after scheduling to this much later. */
  readonly spreadMs: number;
  /** ms after the first timer was scheduled: SIGKILL, then restart. */
  readonly killAtMs: number;
  readonly store: "redis" | "embedded";
}

export interface TimersReport {
  readonly scheduled: number;
  /** Alarms whose timer fired exactly once / never / more than once (by the entity's own count). */
  readonly firedOnce: number;
  readonly neverFired: string[];
  readonly firedTwice: string[];
  /** Every "timer fired" the nodes logged, in ms late (a redelivered duplicate counts too). */
  readonly latenessMs: number[];
  /** The same, of the node before the kill, and of the restarted node (whose timers due while it was down or taking its shards back are late by that). */
  readonly latenessBeforeKillMs: number[];
  readonly latenessAfterRestartMs: number[];
  /** Kill to the restarted node's banner. */
  readonly restartMs: number;
  /** Timers due while the node was down (their lateness includes the restart). */
  readonly dueWhileDown: number;
}

const ALARMS = "keystate.test.timers.Alarms";
const PROTO_DIR = join(REPO_ROOT, "test", "fixtures", "timers", "proto");
/** Scheduling starts this long before the first timer is due. */
const LEAD_MS = 1_000;

export async function runTimers(settings: TimersSettings): Promise<TimersReport> {
  const dataDir = await makeTempDir("timers");
  let redis: RunningRedis | undefined;
  const nodes: NodeProcess[] = [];
  try {
    if (settings.store === "redis") redis = await startRedis();
    const start = () =>
      startNodeProcess({ dataDir, redisUrl: redis?.url, cluster: "timers", extraArgs: ["--admin-token", "test-token"], env: { KEYSTATE_LOG_LEVEL: "debug" } }).then((node) => {
        nodes.push(node);
        return node;
      });
    await writeToken(dataDir);
    const first = await start();
    await deploy(first, settings.wasm);
    const ids = Array.from({ length: settings.count }, (_, i) => `alarm-${i}`);
    const t0 = Date.now();
    const due = new Map<string, number>();
    let client = contractClient(PROTO_DIR, "alarms.proto", ALARMS, first.grpcPort);
    // Scheduled in parallel batches: each alarm's timer is due at t0 + LEAD + i * spread / count.
    for (let i = 0; i < ids.length; i += 50) {
      await Promise.all(
        ids.slice(i, i + 50).map(async (id, j) => {
          const at = t0 + LEAD_MS + Math.floor(((i + j) * settings.spreadMs) / settings.count);
          due.set(id, at);
          await client.methods.Schedule!({ id, delayMs: String(Math.max(0, at - Date.now())) });
        }),
      );
    }
    await sleep(Math.max(0, t0 + settings.killAtMs - Date.now()));
    const killedAt = Date.now();
    await first.kill("SIGKILL");
    client.close();
    const second = await start();
    const restartMs = Date.now() - killedAt;
    const dueWhileDown = [...due.values()].filter((at) => at >= killedAt && at < killedAt + restartMs).length;
    client = contractClient(PROTO_DIR, "alarms.proto", ALARMS, second.grpcPort);
    // Wait for the last due time plus a bound, then read every alarm.
    const lastDue = Math.max(...due.values());
    const counts = await waitForAll(client, ids, lastDue + 15_000);
    client.close();
    return {
      scheduled: ids.length,
      firedOnce: ids.filter((id) => counts.get(id) === 1).length,
      neverFired: ids.filter((id) => (counts.get(id) ?? 0) === 0),
      firedTwice: ids.filter((id) => (counts.get(id) ?? 0) > 1),
      latenessMs: nodes.flatMap(firedLateness),
      latenessBeforeKillMs: firedLateness(first),
      latenessAfterRestartMs: firedLateness(second),
      restartMs,
      dueWhileDown,
    };
  } finally {
    for (const node of nodes) await node.kill("SIGKILL").catch(() => undefined);
    await redis?.stop();
    await removeDir(dataDir);
  }
}

async function writeToken(dataDir: string): Promise<void> {
  const { writeFile } = await import("node:fs/promises");
  await writeFile(join(dataDir, "admin-token"), "test-token\n", { mode: 0o600 });
}

/** Fired counts per alarm once all have fired (or `deadline` passed). */
async function waitForAll(client: ContractClient, ids: string[], deadline: number): Promise<Map<string, number>> {
  const counts = new Map<string, number>();
  for (;;) {
    const pending = ids.filter((id) => (counts.get(id) ?? 0) === 0);
    for (let i = 0; i < pending.length; i += 100) {
      await Promise.all(
        pending.slice(i, i + 100).map(async (id) => {
          const alarm = await client.methods.Get!({ id });
          counts.set(id, Number(alarm.fired));
        }),
      );
    }
    if (ids.every((id) => (counts.get(id) ?? 0) > 0) || Date.now() > deadline) break;
    await sleep(250);
  }
  // A last read of every alarm: a duplicate firing would show as 2 here.
  await sleep(1_000);
  for (let i = 0; i < ids.length; i += 100) {
    await Promise.all(ids.slice(i, i + 100).map(async (id) => counts.set(id, Number((await client.methods.Get!({ id })).fired))));
  }
  return counts;
}

/** The latenessMs of every "timer fired" line a node logged. */
function firedLateness(node: NodeProcess): number[] {
  const lateness: number[] = [];
  for (const line of node.output.join("").split("\n")) {
    if (!line.includes('"timer fired"')) continue;
    try {
      const parsed = JSON.parse(line) as { latenessMs?: number };
      if (typeof parsed.latenessMs === "number") lateness.push(parsed.latenessMs);
    } catch {
      // A line cut by the SIGKILL.
    }
  }
  return lateness;
}

/** The p-th percentile (0-100) of `values`, nearest rank. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}
