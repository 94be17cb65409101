// `npm run bench:throughput`: in-process command rates, then end-to-end gRPC throughput
// under h2load next to a bare grpc-js server, FaaS + CRUD on the same Redis, and Restate.
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { inProcessNode } from "../lib/inproc.js";
import { choosePinning } from "../lib/pinning.js";
import { ensureModuleBuilt } from "../lib/prepare.js";
import { fmtRate, fmtRatio, fmtUs, progress } from "../lib/progress.js";
import { REDIS_EVERYSEC, setAppendFsync, startBenchRedis } from "../lib/redis.js";
import { goal, type Cell, type Goal, type SuiteBody, type SuiteContext } from "../lib/result.js";
import { cartWorkload, counterWorkload, type Workload } from "../lib/workloads.js";
import { measureEndToEnd, type SystemRun } from "./throughput-e2e.js";
import { measureInProcessThroughput, type RateFigure } from "./throughput-inproc.js";
import { systems } from "./throughput-systems.js";

/** "Keystate (counter module, ...)" → "Keystate"; "baseline (b): FaaS + CRUD (...)" → "FaaS + CRUD". */
function shortName(system: string): string {
  return system.replace(/ \(.*$/, "").replace(/^baseline \(.\): /, "");
}

interface Available {
  readonly workload: Workload;
  readonly wasm: string;
  readonly bytes: Uint8Array;
}

/** The module, if it builds and this checkout's runtime serves its entity kind. */
async function available(workload: Workload): Promise<Available | string> {
  const wasm = ensureModuleBuilt("throughput", workload.module);
  if (!wasm) return `modules/${workload.module} does not build`;
  const bytes = readFileSync(wasm);
  const node = await inProcessNode("discard");
  try {
    await node.registry.deploy(bytes);
    await node.router.call(workload.service, workload.writeMethod, workload.writePayload("probe"));
    return { workload, wasm, bytes };
  } catch (err) {
    return `the runtime does not serve it yet (${(err as Error).message.split("\n")[0]})`;
  } finally {
    await node.close();
  }
}

function hasH2load(): boolean {
  try {
    execFileSync("h2load", ["--version"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

export async function runThroughput(ctx: SuiteContext): Promise<SuiteBody> {
  const suite = "throughput";
  const notes: string[] = [];
  const modules: Available[] = [];
  for (const workload of [counterWorkload, cartWorkload]) {
    const found = await available(workload);
    if (typeof found === "string") {
      progress(suite, `${workload.module}: skipped, ${found}`);
      notes.push(`The ${workload.module} rows are missing: ${found}.`);
    } else modules.push(found);
  }
  if (modules.length === 0) throw new Error("neither example module can be served");
  const primary = modules[0]!;
  const pin = choosePinning();
  const redis = await startBenchRedis();
  pin.pinPid(redis.pid, "load");

  const inproc: RateFigure[] = [];
  let e2e: SystemRun[] = [];
  let everysec: SystemRun[] = [];
  try {
    // Every module's "acknowledges at once" rows first: they stand for a node on the
    // embedded store, which never loads ioredis, and the Redis rows load it for good.
    const atOnce: RateFigure[][] = [];
    for (const m of modules) atOnce.push(await measureInProcessThroughput(ctx, m.workload, m.bytes, "discard"));
    for (const [i, m] of modules.entries()) inproc.push(...atOnce[i]!, ...(await measureInProcessThroughput(ctx, m.workload, m.bytes, { redisUrl: redis.url })));
    if (!hasH2load()) {
      notes.push("The end-to-end rows are missing: h2load is not installed (`bash scripts/ensure-system-deps.sh` installs nghttp2-client).");
    } else {
      const restateSkip = ctx.noRestate ? "skipped (--no-restate)" : ctx.quick ? "skipped in --quick mode (its start alone takes several seconds)" : undefined;
      e2e = await measureEndToEnd(ctx, systems(primary.workload, primary.wasm, redis.url, pin, restateSkip), pin);
      if (!ctx.quick) {
        // The same two Redis-backed systems without an fsync per write: shows how much of
        // each figure is the disk's fsync latency and how much is the server's own work.
        progress(suite, "again with Redis appendfsync everysec (Keystate and FaaS + CRUD only)");
        await setAppendFsync(redis.url, "everysec");
        const redisBacked = systems(primary.workload, primary.wasm, redis.url, pin, restateSkip, REDIS_EVERYSEC).filter((s) => /^Keystate|^baseline \(b\)/.test(s.name));
        everysec = await measureEndToEnd(ctx, redisBacked, pin);
      }
    }
  } finally {
    await redis.stop();
  }

  const rps = (system: string, shape: string, runs = e2e) => runs.find((r) => r.system.startsWith(system) && r.shape === shape)?.result?.rps;
  const rowsOf = (runs: SystemRun[]): Cell[][] => runs.map((r) => {
    if (!r.result) return [r.system, r.durability, r.shape, r.error ?? "n/a", "", "", "", "", "", ""];
    const l = r.result.latency;
    return [
      r.system, r.durability, r.shape, fmtRate(r.result.rps), fmtUs(l.p50), fmtUs(l.p99),
      fmtRatio(r.result.rps, rps("baseline (a)", r.shape)), fmtRatio(r.result.rps, rps("baseline (b)", r.shape, runs)), fmtRatio(r.result.rps, rps("baseline (c)", r.shape)),
      `${r.result.succeeded} / ${r.applied ?? "n/a"}${r.result.failed ? ` (${r.result.failed} failed)` : ""}`,
    ];
  });
  const counterPath = inproc.find((f) => f.label.startsWith("counter: node command path, storage acknowledges at once, 10"));
  const counterGuest = inproc.find((f) => f.label.startsWith("counter: guest call alone"));
  const goals: Goal[] = [
    counterPath && Number.isFinite(counterPath.rate)
      ? goal(">= 500k counter commands/s on one core, in-process", `${fmtRate(counterPath.rate)} through the node's command path (storage acknowledging at once); guest call alone ${fmtRate(counterGuest?.rate)}`, counterPath.rate >= 500_000)
      : goal(">= 500k counter commands/s on one core, in-process", counterPath ? `not measured: ${counterPath.error}` : "counter not served by this checkout", undefined),
  ];
  const shape = "8 keys";
  const ks = rps("Keystate", shape);
  const ratioGoal = (text: string, base: string, factor: number) => {
    const b = rps(base, shape);
    return goal(text, ks !== undefined && b !== undefined ? `${fmtRatio(ks, b)} (${fmtRate(ks)} vs ${fmtRate(b)}, ${shape}, ${primary.workload.module})` : "not measured in this run", ks !== undefined && b !== undefined ? ks / b >= factor : undefined);
  };
  goals.push(
    ratioGoal(">= 0.8x the bare grpc-js server (end to end)", "baseline (a)", 0.8),
    ratioGoal(">= 2x FaaS + CRUD (end to end)", "baseline (b)", 2),
    ratioGoal('"well ahead of Restate" (read here as >= 2x)', "baseline (c)", 2),
  );

  return {
    title: "Throughput and latency",
    // 500k/s and 0.8x are issue 14's; 2x FaaS + CRUD and "ahead of Restate" issue 6's (issue 14 kept 2x).
    goalsFrom: "issues 6 and 14",
    tables: [
      {
        title: "In-process command rate (no network; one process, one core)",
        columns: ["what", "commands/s", "p50", "p99", "in flight", "failed"],
        rows: inproc.map((f) => [f.label, f.error ? `failed: ${f.error}` : fmtRate(f.rate), fmtUs(f.latency?.p50), fmtUs(f.latency?.p99), f.inFlight ?? 1, f.failed ?? 0]),
        notes: [
          "Guest call alone: one instance, command after command on one key, state bytes threaded through (median rate over blocks of 1000). Node command path: router.call → key extraction → mailbox → entity → guest → storage, with 256 callers each sending its next command when the last is answered; p50/p99 from every 16th command of each caller (timing every command cost the loop ~0.4 us per command, none of it the node's). The rows that acknowledge at once run before any Redis row, in a process that has not loaded ioredis, as a node on the embedded store never does: loading it slows this loop by 6-12% (see the notes).",
        ],
      },
      {
        title: `End to end over gRPC (h2load), ${primary.workload.describe}`,
        columns: ["system", "durability", "load", "req/s", "p50", "p99", "vs bare grpc-js", "vs FaaS + CRUD", "vs Restate", "answered / applied"],
        rows: rowsOf(e2e),
        notes: [
          `64 requests in flight for every row: "one hot key" = 1 h2load process (1 connection x 64 streams) on one key; "8 keys" = 8 h2load processes (one key each, 1 connection x 8 streams; with 16 processes h2load measurably contended with itself on its one core). gRPC frames (5-byte header + message) with \`content-type: application/grpc\`, \`te: trailers\`; Restate gets JSON over HTTP/2 to its ingress. Pinning: ${pin.describe}.`,
          "answered = requests h2load saw complete (HTTP level); applied = writes the system's state shows afterwards (read back per key). applied >= answered means no answered write was lost; the excess is requests still in flight when h2load stopped.",
          "Restate serves a counter (add 1, return the new value) whichever Keystate module is measured; its ingress is JSON, not gRPC.",
        ],
      },
      ...(everysec.length > 0
        ? [{
            title: `The Redis-backed rows again, with ${REDIS_EVERYSEC}`,
            columns: ["system", "durability", "load", "req/s", "p50", "p99", "vs bare grpc-js (above)", "vs FaaS + CRUD (this setting)", "vs Restate (above)", "answered / applied"],
            rows: rowsOf(everysec),
            notes: ["Same load and pinning as above; only Redis's fsync policy changed (CONFIG SET appendfsync everysec), so the difference between the two tables is the cost of one fsync per acknowledged write on this disk."],
          }]
        : []),
    ],
    goals,
    notes,
    charts: [
      {
        file: "throughput.svg",
        title: `End-to-end req/s, ${shape}, 64 in flight (${primary.workload.module})`,
        unit: "k req/s",
        bars: [
          ...e2e.filter((r) => r.shape === shape && r.result).map((r) => ({ label: shortName(r.system), value: r.result!.rps / 1000, baseline: !r.system.startsWith("Keystate") })),
          ...everysec.filter((r) => r.shape === shape && r.result).map((r) => ({ label: `${shortName(r.system)}, fsync everysec`, value: r.result!.rps / 1000, baseline: !r.system.startsWith("Keystate") })),
        ],
      },
    ],
    figures: {
      ...Object.fromEntries(inproc.map((f) => [f.label, f.rate])),
      ...Object.fromEntries(e2e.filter((r) => r.result).map((r) => [`${r.system} | ${r.shape} | rps`, r.result!.rps])),
      ...Object.fromEntries(everysec.filter((r) => r.result).map((r) => [`${r.system} | ${r.shape} | everysec | rps`, r.result!.rps])),
    },
  };
}
