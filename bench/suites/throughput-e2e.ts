// End-to-end throughput over HTTP/2 with h2load: each system is started, warmed up, then
// loaded twice with 64 requests in flight: one hot key (one h2load process, 1 connection x
// 64 streams) and 8 keys (8 h2load processes, one key each, 1 connection x 8 streams).
// After each run the state is read back: the writes it shows applied must cover what
// h2load counted as answered (h2load sees HTTP status only, not grpc-status).
import { runLoad, type LoadResult } from "../lib/h2load.js";
import type { Pinning } from "../lib/pinning.js";
import { fmtRate, fmtUs, progress } from "../lib/progress.js";
import type { SuiteContext } from "../lib/result.js";
import type { SystemSpec } from "./throughput-systems.js";

export type LoadShape = "one hot key" | "8 keys";

export interface SystemRun {
  readonly system: string;
  readonly durability: string;
  readonly shape: LoadShape;
  readonly result?: LoadResult;
  /** Writes the system's state shows applied during the run. */
  readonly applied?: number;
  readonly error?: string;
}

const SHAPES: Record<LoadShape, { keys: number; streams: number }> = {
  "one hot key": { keys: 1, streams: 64 },
  "8 keys": { keys: 8, streams: 8 },
};

export async function measureEndToEnd(ctx: SuiteContext, specs: SystemSpec[], pin: Pinning): Promise<SystemRun[]> {
  const suite = "throughput";
  const durationS = ctx.quick ? 2 : 8;
  const warmupS = ctx.quick ? 1 : 2;
  const shapes: LoadShape[] = ctx.quick ? ["8 keys"] : ["one hot key", "8 keys"];
  const runs: SystemRun[] = [];
  for (const spec of specs) {
    if (spec.skip) {
      for (const shape of shapes) runs.push({ system: spec.name, durability: spec.durability, shape, error: spec.skip });
      continue;
    }
    progress(suite, `starting ${spec.name}`);
    let system;
    try {
      system = await spec.start();
    } catch (err) {
      const reason = `did not start: ${(err as Error).message.split("\n")[0]}`;
      progress(suite, `  ${reason}`);
      for (const shape of shapes) runs.push({ system: spec.name, durability: spec.durability, shape, error: reason });
      continue;
    }
    try {
      const run = `r${Date.now() % 100000}`;
      await runLoad(system.target(Array.from({ length: 8 }, (_, i) => `${run}-warm-${i}`)), { durationS: warmupS, connections: 1, streamsPerConnection: 8, pin: pin.load });
      for (const shape of shapes) {
        const { keys: keyCount, streams } = SHAPES[shape];
        const keys = Array.from({ length: keyCount }, (_, i) => `${run}-${shape === "one hot key" ? "hot" : "k"}-${i}`);
        progress(suite, `  h2load ${durationS} s, ${shape}: ${keyCount} process(es) x 1 connection x ${streams} streams`);
        try {
          const before = await system.applied(keys);
          const result = await runLoad(system.target(keys), { durationS, connections: 1, streamsPerConnection: streams, pin: pin.load });
          const after = await system.applied(keys);
          const applied = before === undefined || after === undefined ? undefined : after - before;
          progress(suite, `    ${fmtRate(result.rps)}, p50 ${fmtUs(result.latency.p50)}, p99 ${fmtUs(result.latency.p99)}; answered ${result.succeeded}, failed ${result.failed}${applied === undefined ? "" : `, applied ${applied}`}`);
          runs.push({ system: spec.name, durability: spec.durability, shape, result, ...(applied === undefined ? {} : { applied }) });
        } catch (err) {
          progress(suite, `    failed: ${(err as Error).message.split("\n")[0]}`);
          runs.push({ system: spec.name, durability: spec.durability, shape, error: (err as Error).message.split("\n")[0]! });
        }
      }
    } finally {
      await system.stop();
    }
  }
  return runs;
}
