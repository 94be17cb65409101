// `npm run bench:startup`: cold start, deploy latency, fresh instances and rehydration,
// next to a worker thread and a node process started in the same run.
import { readFileSync } from "node:fs";
import { ensureModuleBuilt } from "../lib/prepare.js";
import { fmtRatio, fmtUs } from "../lib/progress.js";
import { startBenchRedis, REDIS_DURABILITY } from "../lib/redis.js";
import { goal, type Cell, type SuiteBody, type SuiteContext } from "../lib/result.js";
import type { Latency } from "../lib/histogram.js";
import { cartWorkload } from "../lib/workloads.js";
import { measureStartupBaselines } from "./startup-baselines.js";
import { measureEndToEndStartup } from "./startup-e2e.js";
import { measureInProcessStartup } from "./startup-inproc.js";
import { measureRehydration } from "./startup-rehydrate.js";

const ms = (us: number) => us / 1000;

/** "25x faster" / "3.1x slower": how `value` compares with `baseline` (lower is better). */
function speedup(baseline: number, value: number): string {
  return baseline >= value ? `${fmtRatio(baseline, value).slice(1)}x faster` : `${fmtRatio(value, baseline).slice(1)}x slower`;
}

function latencyRow(label: string, l: Latency, baselines: Latency[]): Cell[] {
  return [label, fmtUs(l.p50), fmtUs(l.p99), l.n, ...baselines.map((b) => (l === b ? "(baseline)" : speedup(b.p50, l.p50)))];
}

export async function runStartup(ctx: SuiteContext): Promise<SuiteBody> {
  const workload = cartWorkload;
  const wasm = ensureModuleBuilt("startup", workload.module);
  if (!wasm) throw new Error(`modules/${workload.module} has no build; run \`node bin/keystate.js build modules/${workload.module}\``);
  const bytes = readFileSync(wasm);

  const baselines = await measureStartupBaselines(ctx);
  const inproc = await measureInProcessStartup(ctx, workload, bytes);
  const e2e = await measureEndToEndStartup(ctx, workload, bytes, wasm);
  const redis = await startBenchRedis();
  let rehydration;
  try {
    rehydration = await measureRehydration(ctx, redis.url, bytes, [0, 10, 100, 1000]);
  } finally {
    await redis.stop();
  }

  const base = [baselines.worker, baselines.spawnNode];
  const main: Cell[][] = [
    latencyRow("cold start in-process: stored → compiled → instantiated → first reply", inproc.coldStart, base),
    latencyRow("cold start end to end: node process spawned (module in its store) → first gRPC reply", e2e.processFirstReply, base),
    latencyRow("  of which: process spawned → node listening", e2e.processReady, base),
    latencyRow("    as the node reports it (startMs): process start → Keystate's code running (Node's own start, loading the code)", e2e.processPhases.code, base),
    latencyRow("    then: opening the store (embedded LMDB)", e2e.processPhases.store, base),
    latencyRow("    then: binding the gRPC port, loading the stored module", e2e.processPhases.modules, base),
    latencyRow("cold start end to end over gRPC: running node (--lazy-modules), module stored but not compiled → first gRPC reply", e2e.lazyFirstReply, base),
    latencyRow("  same node, next call on another new key (module warm)", e2e.lazyWarmReply, base),
    latencyRow("  that node's own start, not in the two rows above: process spawned (--lazy-modules) → node listening", e2e.lazyReady, base),
    latencyRow("deploy in-process: registry.deploy(bytes) → first reply", inproc.deploy, base),
    latencyRow("deploy through the admin API: POST /modules → first gRPC reply", e2e.adminDeploy, base),
    latencyRow("fresh instance from a compiled module (GuestInstance), replacing a disposed one: dispose (memory zeroed, kept) + instantiate on that memory", inproc.freshInstance, base),
    latencyRow("  same, with a new memory (none disposed to reuse)", inproc.newMemoryInstance, base),
    latencyRow("  bare `new WebAssembly.Instance` of the same module on a new memory", inproc.rawInstance, base),
    latencyRow("baseline: `new Worker()` → first message", baselines.worker, base),
    latencyRow("baseline: spawn `node -e 0` → exit", baselines.spawnNode, base),
  ];
  const phaseRows = (phases: Record<string, Latency>): Cell[][] => Object.entries(phases).map(([name, l]) => [name, fmtUs(l.p50), fmtUs(l.p99), l.n]);
  const instrumentP50 = inproc.deployPhases["  within compileModule: instrumentation (fuel + memory cap)"]!.p50;
  const upTo10 = rehydration.filter((r) => r.k <= 10);
  const worstUpTo10 = Math.max(...upTo10.map((r) => r.recover.p50));
  const coldVsWorker = baselines.worker.p50 / inproc.coldStart.p50;

  return {
    title: "Startup: cold start, deploy, fresh instance, rehydration",
    tables: [
      {
        title: `Startup latency (${workload.module} module, ${bytes.length} bytes; embedded store in a temp dir)`,
        columns: ["what", "p50", "p99", "n", "vs `new Worker()` (p50)", "vs `node -e 0` (p50)"],
        rows: main,
        notes: [
          "Every compile uses unique bytes (a custom section with a counter is appended), so V8's compiled-module cache never serves a cold start.",
          "First reply = GetCart on a key never seen before (a journal read, no write).",
          "Cold start over gRPC on a running node: a `keystate serve --lazy-modules` process is started on the data dir that holds the deployed module (one process per sample); it registers the module's services from the stored artifact without compiling it. Once it is listening, the client's HTTP/2 connection is set up and one server reflection call (which touches no module) has been answered, the timer covers one GetCart → reply, so the figure is compile + instantiate + first call, with no process start and no connection set-up in it. Each sample is a fresh process, so V8 has no compiled copy of the module; before the timed call the node serves 300 calls to the counter (a value entity) and 200 to the transfer example's Account (event-sourced, like the cart: 100 accounts opened, then read), both modules themselves loaded lazily, so its own gRPC, router, value and event-sourced entity and store code is warm, as in a node that has been serving (until 2026-12-07 the warm-up was the counter alone, and this row carried ~1 ms of the process's first-ever event-sourced call). The next call, on another new key, is the warm contrast. The process-spawn row above is the cold start of a node that is not running.",
        ],
      },
      { title: "Where cold-start time goes (each phase measured alone, unique bytes each time)", columns: ["phase", "p50", "p99", "n"], rows: phaseRows(inproc.coldPhases) },
      {
        title: "Where deploy time goes (the runtime has no per-phase timing hook: the first two rows split each deploy iteration; the indented ones are measured alone)",
        columns: ["phase", "p50", "p99", "n"],
        rows: phaseRows(inproc.deployPhases),
        notes: [inproc.instrumentNote],
      },
      {
        title: `Entity rehydration from Redis (${REDIS_DURABILITY}): snapshot of a 10-line cart + k events`,
        columns: ["k events after the snapshot", "recover + replay p50", "p99", "first reply, fresh entity manager p50", "p99", "n"],
        rows: rehydration.map((r) => [r.k, fmtUs(r.recover.p50), fmtUs(r.recover.p99), fmtUs(r.firstReply.p50), fmtUs(r.firstReply.p99), r.recover.n]),
      },
    ],
    goals: [
      goal("cold start p50 < 1 ms in-process", fmtUs(inproc.coldStart.p50), inproc.coldStart.p50 < 1000),
      goal("cold start >= 20x faster than `new Worker()` (p50)", `x${coldVsWorker.toFixed(1)} (${fmtUs(inproc.coldStart.p50)} vs ${fmtUs(baselines.worker.p50)})`, coldVsWorker >= 20),
      goal(
        "deploy p50 < 5 ms for the shopping cart, instrumentation included",
        `${fmtUs(inproc.deploy.p50)} (instrumentation in the deploy path; alone ${fmtUs(instrumentP50)})`,
        inproc.deploy.p50 < 5000,
      ),
      goal("fresh instance p50 <= 15 us", fmtUs(inproc.freshInstance.p50), inproc.freshInstance.p50 <= 15),
      goal("rehydration, snapshot + <= 10 events, p50 <= 0.5 ms", `${fmtUs(worstUpTo10)} (worst of k = 0 and k = 10)`, worstUpTo10 <= 500),
      goal(
        "issue 14: cold start over gRPC on a running `--lazy-modules` node p50 < 1.5 ms",
        `${fmtUs(e2e.lazyFirstReply.p50)} (its next call ${fmtUs(e2e.lazyWarmReply.p50)})`,
        e2e.lazyFirstReply.p50 < 1500,
      ),
      goal(
        "issue 14: node process start, spawned → listening p50 <= 120 ms",
        `${fmtUs(e2e.processReady.p50)} (\`node -e 0\` ${fmtUs(baselines.spawnNode.p50)}; where it goes: the startMs rows)`,
        e2e.processReady.p50 <= 120_000,
      ),
    ],
    goalsFrom: "issues 6 and 14",
    notes: [],
    charts: [
      {
        file: "startup.svg",
        title: "Startup p50 (ms, log scale): Keystate vs a worker thread and a node process",
        unit: "ms",
        logScale: true,
        bars: [
          { label: "fresh instance (compiled module)", value: ms(inproc.freshInstance.p50) },
          { label: "rehydrate: snapshot + 10 events", value: ms(rehydration.find((r) => r.k === 10)!.recover.p50) },
          { label: "cold start in-process", value: ms(inproc.coldStart.p50) },
          { label: "deploy in-process", value: ms(inproc.deploy.p50) },
          { label: "running node (lazy) → first gRPC reply", value: ms(e2e.lazyFirstReply.p50) },
          { label: "deploy via admin API", value: ms(e2e.adminDeploy.p50) },
          { label: "new Worker() → first message", value: ms(baselines.worker.p50), baseline: true },
          { label: "spawn node -e 0", value: ms(baselines.spawnNode.p50), baseline: true },
          { label: "node process → first gRPC reply", value: ms(e2e.processFirstReply.p50) },
        ],
      },
    ],
    figures: {
      coldStartP50Us: inproc.coldStart.p50,
      coldStartP99Us: inproc.coldStart.p99,
      processFirstReplyP50Us: e2e.processFirstReply.p50,
      lazyFirstReplyP50Us: e2e.lazyFirstReply.p50,
      lazyFirstReplyP99Us: e2e.lazyFirstReply.p99,
      lazyWarmReplyP50Us: e2e.lazyWarmReply.p50,
      deployP50Us: inproc.deploy.p50,
      adminDeployP50Us: e2e.adminDeploy.p50,
      instrumentP50Us: instrumentP50,
      freshInstanceP50Us: inproc.freshInstance.p50,
      workerP50Us: baselines.worker.p50,
      spawnNodeP50Us: baselines.spawnNode.p50,
      ...Object.fromEntries(rehydration.map((r) => [`rehydrateK${r.k}P50Us`, r.recover.p50])),
    },
  };
}
