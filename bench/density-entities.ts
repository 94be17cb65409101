// Entity density: N distinct counters (modules/counter, value entities), each touched
// once (Increase by 1) in ONE process, through the in-process call path a node uses
// (ModuleRegistry -> Router -> EntityManager -> guest). Reports RSS and heap as it goes,
// how many entities stay resident under the memory budget, and resident entities per GiB.
//
//   node --expose-gc --max-old-space-size=640 --import tsx bench/density-entities.ts
//        [--entities 1000000] [--store embedded|discard] [--budget <bytes>] [--rss-bound-mib 768] [--concurrency 256]
//
// The budget counts live bytes; V8 keeps evicted entities' garbage until its heap limit,
// so RSS is bounded by capping the heap. Measured 2026-12-05 (2 cores, Node 20):
// --store discard: 1,000,000 counters in 8.1 s, all resident at the 256 MiB default
// budget (charged 99 MiB), 100 B of heap and 143-164 B of RSS each first to last (the
// young generation grows to its full 32 MiB on the way, and old space keeps ~25% free),
// max RSS 247 MiB. --entities 300000 --budget 16777216 (embedded store): 161,319
// resident, evicted counters read back right, max RSS 174 MiB.
//
// --store embedded (default): LMDB in a temp dir, every write durable, so evicted
// counters really reload from disk (sampled at the end). --store discard: writes are
// acknowledged and dropped, so the figures are the host and guest alone.
// Exits 1 when RSS passed --rss-bound-mib or a sampled counter read back wrong.
import { execFile } from "node:child_process";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { parseArgs, promisify } from "node:util";
import protobuf from "protobufjs";
import { EntityManager } from "../host/entities/entity-manager.js";
import { Router } from "../host/entities/router.js";
import { openStore } from "../host/journal/open-store.js";
import { setLogLevel } from "../host/log.js";
import { ModuleRegistry } from "../host/runtime/module-registry.js";
import { discardJournal, discardValues } from "./lib/discard-store.js";
import { REPO_ROOT } from "./lib/paths.js";
import { tempDir } from "./lib/inproc.js";

const { values: args } = parseArgs({
  options: {
    entities: { type: "string", default: "1000000" },
    store: { type: "string", default: "embedded" },
    budget: { type: "string", default: String(256 * 1024 * 1024) },
    "rss-bound-mib": { type: "string", default: "768" },
    concurrency: { type: "string", default: "256" },
  },
});
const N = Number(args.entities);
const BUDGET = Number(args.budget);
const RSS_BOUND = Number(args["rss-bound-mib"]) * 1024 * 1024;
const CONCURRENCY = Number(args.concurrency);
const SERVICE = "keystate.examples.counter.Counter";
const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

setLogLevel("warn");
const gc = (globalThis as { gc?: () => void }).gc ?? (() => undefined);

const work = await tempDir("density");
const wasm = join(work.path, "counter.wasm");
// Built in a child process: the compiler's memory must not count in this process's RSS.
await promisify(execFile)(process.execPath, [join(REPO_ROOT, "bin", "keystate.js"), "build", join(REPO_ROOT, "modules", "counter"), "-o", wasm]);
const store = await openStore({ dataDir: join(work.path, "store") });
const entityStore = args.store === "discard" ? { journal: discardJournal, values: discardValues } : store;
const registry = new ModuleRegistry(store);
// No idle-timeout sweep during the run: only the memory budget decides who stays.
const entities = new EntityManager(entityStore, 2_000_000_000, { memoryBudgetBytes: BUDGET });
const router = new Router(registry, entities);
await registry.deploy(await readFile(wasm));

// The two messages by hand (keeps this script free of include-path set-up).
const ChangeValue = new protobuf.Type("ChangeValue").add(new protobuf.Field("counterId", 1, "string")).add(new protobuf.Field("value", 2, "int64"));
const CurrentValue = new protobuf.Type("CurrentValue").add(new protobuf.Field("value", 1, "int64"));
new protobuf.Root().add(ChangeValue).add(CurrentValue);
const increase = (id: number) => router.call(SERVICE, "Increase", ChangeValue.encode({ counterId: `c${id}`, value: 1 }).finish());
const get = async (id: number) => Number((CurrentValue.decode(await router.call(SERVICE, "Get", ChangeValue.encode({ counterId: `c${id}` }).finish())) as unknown as { value: number }).value);

gc();
const before = process.memoryUsage();
let maxRss = before.rss;
const started = performance.now();
const report = (done: number) => {
  const m = process.memoryUsage();
  maxRss = Math.max(maxRss, m.rss);
  console.log(
    `${String(done).padStart(8)} touched  resident ${String(entities.activeCount).padStart(8)}  charged ${(entities.residentBytes / MiB).toFixed(0).padStart(4)} MiB` +
      `  rss ${(m.rss / MiB).toFixed(0).padStart(5)} MiB  heap ${(m.heapUsed / MiB).toFixed(0).padStart(5)} MiB  ${((performance.now() - started) / 1000).toFixed(1)} s`,
  );
};

let next = 0;
const step = Math.max(1, Math.floor(N / 10));
async function worker(): Promise<void> {
  while (next < N) {
    const id = next++;
    await increase(id);
    if ((id + 1) % step === 0) report(id + 1);
  }
}
await Promise.all(Array.from({ length: CONCURRENCY }, worker));
const seconds = (performance.now() - started) / 1000;
gc();
const after = process.memoryUsage();
maxRss = Math.max(maxRss, after.rss);

// Counters evicted long ago (the first ones) and recent ones read back 1.
const samples = [0, 1, Math.floor(N / 2), N - 1];
const wrong = args.store === "discard" ? [] : (await Promise.all(samples.map(async (id) => [id, await get(id)] as const))).filter(([, v]) => v !== 1);

const resident = entities.activeCount;
const heapPer = (after.heapUsed - before.heapUsed) / resident;
const rssPer = (after.rss - before.rss) / resident;
console.log(`
entities touched        ${N} in ${seconds.toFixed(1)} s (${Math.round(N / seconds)}/s), store: ${args.store}
memory budget           ${(BUDGET / MiB).toFixed(0)} MiB; resident at the end ${resident} (charged ${(entities.residentBytes / MiB).toFixed(1)} MiB)
heap per resident       ${heapPer.toFixed(0)} B  -> ${Math.round(GiB / heapPer)} resident entities per GiB of heap
rss per resident        ${rssPer.toFixed(0)} B  -> ${Math.round(GiB / rssPer)} resident entities per GiB of RSS
rss                     start ${(before.rss / MiB).toFixed(0)} MiB, end ${(after.rss / MiB).toFixed(0)} MiB, max ${(maxRss / MiB).toFixed(0)} MiB (bound ${(RSS_BOUND / MiB).toFixed(0)} MiB)
read-back samples       ${wrong.length === 0 ? "ok" : `WRONG ${JSON.stringify(wrong)}`}`);

router.close();
entities.close();
await store.close();
await work.remove();
if (maxRss > RSS_BOUND || wrong.length > 0) process.exit(1);
