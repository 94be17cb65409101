// In-process command rates, no network: (1) the guest alone (ABI encode, guest call,
// decode, state threaded from call to call), (2) the node's whole command path (router,
// key extraction, mailbox, entity, guest) with storage that acknowledges at once, and
// (3) the same path durable on Redis. (2) and (3) keep many commands in flight.
import type { CommandResult } from "../../host/abi/abi-codec.js";
import { Recorder, type Latency } from "../lib/histogram.js";
import { inProcessNode, type EntityStorageChoice, type InProcessNode } from "../lib/inproc.js";
import { fmtRate, fmtUs, progress } from "../lib/progress.js";
import type { SuiteContext } from "../lib/result.js";
import type { Workload } from "../lib/workloads.js";

export interface RateFigure {
  readonly label: string;
  readonly rate: number;
  /** Per-command latency (closed loop with `inFlight` commands outstanding), when measured. */
  readonly latency?: Latency;
  readonly inFlight?: number;
  readonly keys?: number;
  /** Commands that failed (not counted in the rate). */
  readonly failed?: number;
  /** Set when the measurement could not be taken. */
  readonly error?: string;
}

/** Commands per second through the guest alone, in blocks of 1000 (median block rate). */
export async function guestOnlyRate(node: InProcessNode, workload: Workload, budgetMs: number): Promise<number> {
  const service = node.registry.service(workload.service)!;
  const payload = workload.writePayload("k");
  const guest = service.pool.acquire();
  let state: Uint8Array | undefined;
  const rates: number[] = [];
  const deadline = performance.now() + budgetMs;
  let seq = 0;
  while (performance.now() < deadline || rates.length < 5) {
    const start = performance.now();
    for (let i = 0; i < 1000; i++) {
      const result: CommandResult = guest.command({ service: workload.service, method: workload.writeMethod, entityKey: "k", sequence: seq++, state, payload });
      if (result.failure) throw new Error(`guest refused the command: ${result.failure.message}`);
      state = result.state.length > 0 ? result.state : state;
    }
    rates.push(1000 / ((performance.now() - start) / 1000));
  }
  service.pool.release(guest);
  rates.sort((a, b) => a - b);
  return rates[Math.floor(rates.length / 2)]!;
}

/**
 * One command in this many is timed for the latency figures. Timing every one (two hrtime
 * reads and a histogram record) cost this loop ~0.4 us per command, a tenth of its rate
 * (290k vs 324k counter commands/s, three alternating pinned runs), none of it the node's.
 * Which commands are timed does not depend on how long they take, so the percentiles stay
 * unbiased.
 */
const TIME_ONE_IN = 16;

/** Closed loop: `inFlight` callers, each sending its next command as soon as the last is answered. */
export async function routerRate(
  node: InProcessNode,
  workload: Workload,
  keys: number,
  inFlight: number,
  budgetMs: number,
): Promise<{ rate: number; latency: Latency; failed: number; cpuRate: number }> {
  const payloads = Array.from({ length: keys }, (_, i) => workload.writePayload(`key-${i}`));
  const recorder = new Recorder();
  let next = 0;
  let done = 0;
  let failed = 0;
  let deadline = 0;
  const caller = async () => {
    let sent = 0;
    // A clock check, not a timer: with storage that answers at once every await resolves
    // as a microtask, and a timer callback would never get its turn.
    while (performance.now() < deadline) {
      const payload = payloads[next++ % keys]!;
      const timed = sent++ % TIME_ONE_IN === 0;
      const start = timed ? process.hrtime.bigint() : 0n;
      try {
        await node.router.call(workload.service, workload.writeMethod, payload);
        if (timed) recorder.recordNs(Number(process.hrtime.bigint() - start));
        done++;
      } catch {
        // e.g. a storage timeout on an overloaded box: counted, not fatal, and not in the rate.
        failed++;
      }
    }
  };
  // Warm-up: every key activated once and the JIT settled before the clock starts.
  for (let i = 0; i < keys; i += inFlight) {
    await Promise.allSettled(payloads.slice(i, i + inFlight).map((p) => node.router.call(workload.service, workload.writeMethod, p)));
  }
  const start = performance.now();
  const cpuStart = process.cpuUsage();
  deadline = start + budgetMs;
  await Promise.all(Array.from({ length: inFlight }, caller));
  // Per CPU second of this process (all its threads, GC helpers included): on a box shared
  // with other work this moves far less than the wall-clock rate.
  const cpu = process.cpuUsage(cpuStart);
  const cpuRate = done / ((cpu.user + cpu.system) / 1e6);
  return { rate: done / ((performance.now() - start) / 1000), latency: recorder.summary(), failed, cpuRate };
}

/** The command-path rows on storage that acknowledges at once ("discard", with the guest-alone row) or on Redis. */
export async function measureInProcessThroughput(ctx: SuiteContext, workload: Workload, moduleBytes: Uint8Array, storage: Exclude<EntityStorageChoice, "embedded">): Promise<RateFigure[]> {
  const suite = "throughput";
  const figures: RateFigure[] = [];
  const budget = ctx.budget(3000, 600);
  const inFlight = 256;
  const label = storage === "discard" ? "storage acknowledges at once" : "durable on Redis";
  const node = await inProcessNode(storage);
  try {
    await node.registry.deploy(moduleBytes);
    if (storage === "discard") {
      progress(suite, `${workload.module}: guest alone (ABI + guest call, state threaded)`);
      const rate = await guestOnlyRate(node, workload, budget);
      progress(suite, `  ${fmtRate(rate)}`);
      figures.push({ label: `${workload.module}: guest call alone (no host path)`, rate });
    }
    for (const keys of [1, ctx.quick ? 1000 : 10_000]) {
      progress(suite, `${workload.module}: router → entity → guest, ${label}, ${keys} key(s), ${inFlight} in flight`);
      const rowLabel = `${workload.module}: node command path, ${label}, ${keys === 1 ? "one hot key" : `${keys} keys`}`;
      try {
        const { rate, latency, failed } = await routerRate(node, workload, keys, inFlight, budget);
        progress(suite, `  ${fmtRate(rate)}, p50 ${fmtUs(latency.p50)} p99 ${fmtUs(latency.p99)}${failed ? `, ${failed} failed` : ""}`);
        figures.push({ label: rowLabel, rate, latency, inFlight, keys, failed });
      } catch (err) {
        progress(suite, `  failed: ${(err as Error).message}`);
        figures.push({ label: rowLabel, rate: NaN, inFlight, keys, error: (err as Error).message });
      }
    }
  } finally {
    await node.close();
  }
  return figures;
}
