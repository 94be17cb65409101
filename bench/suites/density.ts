// `npm run bench:density`: resident entities per GiB of RSS. One process touches N
// distinct entities with a real command each (counter Increase, else cart AddItem): the
// guest runs, the new state is kept resident by the entity manager. Storage acknowledges
// at once and keeps nothing (lib/discard-store.ts), so the RSS growth is what the node
// itself holds per active entity, not a storage engine's cache. After each tenth the idle
// sweep's pass runs (passivateIdle, as the node's timer runs it a slice a second), with
// parkAfterMs 0 so that the entities just touched are parked as they would be once idle
// 5 s: the figures are those of idle resident entities, most of a node's; memory is
// measured before the pass too, for what a just-touched entity (a record) costs.
import { readFileSync } from "node:fs";
import { getHeapSpaceStatistics } from "node:v8";
import { inProcessNode } from "../lib/inproc.js";
import { ensureModuleBuilt } from "../lib/prepare.js";
import { fmtRate, progress } from "../lib/progress.js";
import { goal, type SuiteBody, type SuiteContext } from "../lib/result.js";
import { cartWorkload, counterWorkload, type Workload } from "../lib/workloads.js";

const GiB = 2 ** 30;
/** Commands in flight while the entities are touched (and in each warm-up burst). */
const BATCH = 2000;
const WARM_ROUNDS = 20;
const MiB = 2 ** 20;

function settle(): { rss: number; heap: number; young: number } {
  const gc = (globalThis as { gc?: () => void }).gc;
  gc?.();
  gc?.();
  const m = process.memoryUsage();
  const young = getHeapSpaceStatistics().find((space) => space.space_name === "new_space")?.physical_space_size ?? 0;
  // `external` already counts array buffers (the parked columns are typed arrays).
  return { rss: m.rss, heap: m.heapUsed + m.external, young };
}

interface Point {
  readonly entities: number;
  readonly rss: number;
  readonly heap: number;
  /** JS heap + external before the sweep's pass (the last tenth still records). */
  readonly heapBeforePass: number;
  /** Memory V8's young generation holds (it grows with the allocation rate, up to a fixed size, whatever the entity count). */
  readonly young: number;
}

async function touchAll(ctx: SuiteContext, workload: Workload, bytes: Uint8Array, total: number): Promise<{ points: Point[]; seconds: number; active: number; parked: number | undefined }> {
  const node = await inProcessNode("discard", { parkAfterMs: 0 });
  try {
    await node.registry.deploy(bytes);
    // One command first, so the instance, JIT and pools exist before the baseline.
    await node.router.call(workload.service, workload.writeMethod, workload.writePayload("warm"));
    // Then the suite's own load on warm-up entities: BATCH new entities at once (the activation
    // path, as each tenth below runs it), and more bursts on them, so that the JIT and V8's
    // young generation have their size under this load before the baseline (32 MiB here,
    // whatever the entity count). From a baseline after the one command only, that one-off
    // growth (~24 MiB) and ~20 MiB more that the first load allocates once landed in the first
    // tenth and added ~20 B to every entity's share of the 11-point slope. The warm-up
    // entities stay resident, in the baseline.
    for (let round = 0; round < WARM_ROUNDS; round++) {
      const calls: Promise<Uint8Array>[] = [];
      for (let i = 0; i < BATCH; i++) calls.push(node.router.call(workload.service, workload.writeMethod, workload.writePayload(`warm-${i}`)));
      await Promise.all(calls);
    }
    await new Promise((resolve) => setImmediate(resolve));
    node.entities.passivateIdle(Date.now());
    const base = settle();
    const points: Point[] = [{ entities: 0, ...base, heapBeforePass: base.heap }];
    const step = total / 10;
    const started = performance.now();
    // The suite's time bound: on a very busy box stop early and report how far it got.
    const limitMs = ctx.budget(240_000, 25_000);
    for (let done = 0; done < total && performance.now() - started < limitMs; ) {
      const calls: Promise<Uint8Array>[] = [];
      for (let i = 0; i < BATCH && done < total; i++, done++) calls.push(node.router.call(workload.service, workload.writeMethod, workload.writePayload(`entity-${done}`)));
      await Promise.all(calls);
      if (done % step === 0) {
        // The mailboxes of the last commands finish their batch a turn later: only then are they idle (and parked by the pass).
        await new Promise((resolve) => setImmediate(resolve));
        const beforePass = settle();
        node.entities.passivateIdle(Date.now());
        const now = settle();
        points.push({ entities: done, ...now, heapBeforePass: beforePass.heap });
        progress("density", `  ${done.toLocaleString("en")} entities: RSS ${(now.rss / MiB).toFixed(0)} MiB (+${((now.rss - base.rss) / MiB).toFixed(0)} MiB)`);
      }
    }
    const seconds = (performance.now() - started) / 1000;
    // Minus the warm-up entities touched before the baseline.
    const entities = node.entities as { parkedCount?: number };
    return { points, seconds, active: node.entities.activeCount - 1 - BATCH, parked: entities.parkedCount === undefined ? undefined : entities.parkedCount - 1 - BATCH };
  } finally {
    await node.close();
  }
}

/** Least-squares slope of RSS over entities: bytes per entity, robust to a noisy end point. */
function slope(points: Point[], pick: (p: Point) => number): number {
  const n = points.length;
  const mx = points.reduce((s, p) => s + p.entities, 0) / n;
  const my = points.reduce((s, p) => s + pick(p), 0) / n;
  const num = points.reduce((s, p) => s + (p.entities - mx) * (pick(p) - my), 0);
  const den = points.reduce((s, p) => s + (p.entities - mx) ** 2, 0);
  return num / den;
}

export async function runDensity(ctx: SuiteContext): Promise<SuiteBody> {
  let workload = counterWorkload;
  let wasm = ensureModuleBuilt("density", workload.module);
  const notes: string[] = [];
  if (wasm) {
    const probe = await inProcessNode("discard");
    try {
      await probe.registry.deploy(readFileSync(wasm));
      await probe.router.call(workload.service, workload.writeMethod, workload.writePayload("probe"));
    } catch (err) {
      notes.push(`The counter is not served by this checkout (${(err as Error).message.split("\n")[0]}); the shopping cart stands in.`);
      wasm = undefined;
    } finally {
      await probe.close();
    }
  }
  if (!wasm) {
    workload = cartWorkload;
    wasm = ensureModuleBuilt("density", workload.module);
    if (!wasm) throw new Error("no example module builds");
  }
  const total = ctx.quick ? 50_000 : 1_000_000;
  progress("density", `touching ${total.toLocaleString("en")} distinct ${workload.module} entities (one ${workload.writeMethod} each), RSS after GC every ${(total / 10).toLocaleString("en")}`);
  const { points, seconds, active, parked } = await touchAll(ctx, workload, readFileSync(wasm), total);
  const reached = points[points.length - 1]!.entities;
  const last = points[points.length - 1]!;
  const first = points[0]!;
  const perEntityRss = slope(points, (p) => p.rss);
  const perEntityHeap = slope(points, (p) => p.heap);
  const perGiB = GiB / perEntityRss;
  const endToEndPerGiB = last.entities / ((last.rss - first.rss) / GiB);
  // The first tenth also holds what grows once, whatever the entity count (the young
  // generation reaching its full size, shown in the table): the slope after it is what
  // each further entity costs.
  const marginalRss = slope(points.slice(1), (p) => p.rss);
  // The last tenth before and after the pass: what a record costs beyond a parked entity.
  const recordExtra = points.length > 1 ? (last.heapBeforePass - last.heap) / (last.entities - points[points.length - 2]!.entities) : 0;
  return {
    title: "Density: resident entities per GiB of RSS",
    tables: [
      {
        title: `${total.toLocaleString("en")} resident ${workload.module} entities in one process (${workload.describe}), storage discarded`,
        columns: ["entities", "RSS", "RSS growth", "JS heap + external", "JS heap + external before the pass", "young generation"],
        rows: points.map((p) => [p.entities.toLocaleString("en"), `${(p.rss / MiB).toFixed(0)} MiB`, `${((p.rss - first.rss) / MiB).toFixed(0)} MiB`, `${(p.heap / MiB).toFixed(0)} MiB`, `${(p.heapBeforePass / MiB).toFixed(0)} MiB`, `${(p.young / MiB).toFixed(0)} MiB`]),
        notes: [
          `The baseline (0 entities) is taken after one command and ${WARM_ROUNDS} bursts of ${BATCH.toLocaleString("en")} concurrent commands on ${BATCH.toLocaleString("en")} warm-up entities (the first burst activates them, as each step below activates its entities): the instance, the JIT and V8's young generation have their size under this load before it, and the warm-up entities are in it (the young generation's one-off growth is not per entity). RSS is noisy at this scale: the same tree reads ~5% apart from run to run; JS heap per entity is the steadier figure.`,
          `Each row is measured after the idle sweep's pass over every resident entity (EntityManager.passivateIdle, run with parkAfterMs 0: a node parks an entity idle 5 s, its timer sweeping a slice a second), which parks the idle counters: each stays resident as one row of compact columns (host/entities/parked-entities.ts) instead of a record, and its next command reads nothing from storage. ${parked === undefined ? "This tree has no parked form." : `Parked at the end: ${parked.toLocaleString("en")}.`} Before the pass, the last tenth were records: ${recordExtra.toFixed(0)} B of heap more each than parked (the "before the pass" column).`,
          `Entities active at the end: ${active.toLocaleString("en")} of ${reached.toLocaleString("en")} touched${reached < total ? ` (the time bound stopped the run before ${total.toLocaleString("en")})` : ""} (the entity manager's memory budget, 256 MiB by default, is lifted for the run so none is evicted; a pass would passivate an entity idle past its timeout, 30 s for the counter). Touching them took ${seconds.toFixed(1)} s (${fmtRate(reached / seconds)} first commands).`,
          `RSS per entity (least-squares slope over the 11 points): ${perEntityRss.toFixed(0)} B; JS heap per entity: ${perEntityHeap.toFixed(0)} B. Entities per GiB from the slope: ${(perGiB / 1e6).toFixed(2)}M; from first and last point: ${(endToEndPerGiB / 1e6).toFixed(2)}M; from the slope over the last 10 points: ${marginalRss.toFixed(0)} B, ${(GiB / marginalRss / 1e6).toFixed(2)}M.`,
        ],
      },
    ],
    goals: [5e6, 10e6].map((target) => {
      const name = `>= ${target / 1e6}M resident counter entities per GiB of RSS`;
      return active < reached
        ? goal(name, `not measured: only ${active.toLocaleString("en")} of ${reached.toLocaleString("en")} entities stayed resident`, undefined)
        : goal(name, `${(perGiB / 1e6).toFixed(2)}M per GiB (${perEntityRss.toFixed(0)} B RSS per ${workload.module} entity)`, workload === counterWorkload ? perGiB >= target : undefined);
    }),
    goalsFrom: "issues 6 (5M) and 14 (10M)",
    notes,
    charts: [
      {
        file: "density.svg",
        title: `RSS growth (MiB) vs resident ${workload.module} entities`,
        unit: "MiB",
        bars: points.slice(1).map((p) => ({ label: `${p.entities.toLocaleString("en")} entities`, value: (p.rss - first.rss) / MiB })),
      },
    ],
    figures: { entities: reached, rssBytesPerEntity: perEntityRss, heapBytesPerEntity: perEntityHeap, entitiesPerGiB: perGiB, marginalRssBytesPerEntity: marginalRss, recordExtraHeapBytes: recordExtra },
  };
}
