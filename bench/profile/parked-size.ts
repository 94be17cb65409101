// What one resident entity costs as a record and parked, for either example module:
//   node --expose-gc --import=tsx bench/profile/parked-size.ts [counter|shopping-cart] [entities]
// Touches N entities once each (storage discarded), then measures JS heap + external after
// GC before and after the idle sweep's pass (parkAfterMs 0: everything idle parks).
// npm run bench:density is the suite for counters; this covers the event-sourced cart too.
import { readFileSync } from "node:fs";
import { inProcessNode } from "../lib/inproc.js";
import { requireModuleBuilt } from "../lib/prepare.js";
import { cartWorkload, counterWorkload } from "../lib/workloads.js";

const [module = "shopping-cart", entities = "200000"] = process.argv.slice(2);
const w = module === "counter" ? counterWorkload : cartWorkload;
const N = Number(entities);
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error("run with node --expose-gc");
const heap = () => {
  gc();
  gc();
  const m = process.memoryUsage();
  return m.heapUsed + m.external;
};
const wasm = requireModuleBuilt("profile", w.module);
const node = await inProcessNode("discard", { parkAfterMs: 0 });
await node.registry.deploy(readFileSync(wasm));
await node.router.call(w.service, w.writeMethod, w.writePayload("warm"));
node.entities.passivateIdle(Date.now());
const base = heap();
for (let done = 0; done < N; ) {
  const calls: Promise<Uint8Array>[] = [];
  for (let i = 0; i < 2000 && done < N; i++, done++) calls.push(node.router.call(w.service, w.writeMethod, w.writePayload(`${module}-${done}`)));
  await Promise.all(calls);
}
// The mailboxes of the last commands finish their batch first (only then are they idle).
await new Promise((resolve) => setImmediate(resolve));
const asRecords = heap();
node.entities.passivateIdle(Date.now());
const parked = heap();
process.stdout.write(`${w.describe}: ${N} entities touched once; heap + external per entity: ${((asRecords - base) / N).toFixed(0)} B as records, ${((parked - base) / N).toFixed(0)} B parked (${node.entities.parkedCount - 1} parked)\n`);
await node.close();
