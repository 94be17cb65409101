// Bytes the node's command path allocates per command, by the function that allocates
// them, garbage included (V8's sampling heap profiler keeps objects a scavenge collected):
//   node --import=tsx bench/profile/command-allocations.ts [counter|shopping-cart] [seconds]
// The counter or cart on the in-process path (10,000 keys, 256 in flight, storage
// acknowledging at once), after a second of warm-up. Sampling slows the run; the bytes per
// command are what to read, not the rate.
import { readFileSync } from "node:fs";
import { Session } from "node:inspector/promises";
import { inProcessNode } from "../lib/inproc.js";
import { requireModuleBuilt } from "../lib/prepare.js";
import { cartWorkload, counterWorkload } from "../lib/workloads.js";
import { routerRate } from "../suites/throughput-inproc.js";

interface ProfileNode {
  callFrame: { functionName: string; url: string; lineNumber: number };
  selfSize: number;
  children: ProfileNode[];
}

const [module = "counter", seconds = "3"] = process.argv.slice(2);
const w = module === "shopping-cart" ? cartWorkload : counterWorkload;
const wasm = requireModuleBuilt("profile", w.module);
const node = await inProcessNode("discard");
await node.registry.deploy(readFileSync(wasm));
await routerRate(node, w, 10_000, 256, 1000);
const session = new Session();
session.connect();
// The flags are V8's (HeapProfiler.startSampling); Node's types for them lag behind.
await session.post("HeapProfiler.startSampling", { samplingInterval: 256, includeObjectsCollectedByMinorGC: true, includeObjectsCollectedByMajorGC: true } as never);
const { rate } = await routerRate(node, w, 10_000, 256, Number(seconds) * 1000);
const { profile } = (await session.post("HeapProfiler.stopSampling")) as unknown as { profile: { head: ProfileNode } };
const bySite = new Map<string, number>();
let total = 0;
const walk = (n: ProfileNode): void => {
  const { functionName, url, lineNumber } = n.callFrame;
  const site = `${functionName || "(anonymous)"} ${url.replace(/^.*?\/(host|bench|node_modules)\//, "$1/")}:${lineNumber + 1}`;
  bySite.set(site, (bySite.get(site) ?? 0) + n.selfSize);
  total += n.selfSize;
  n.children.forEach(walk);
};
walk(profile.head);
const commands = rate * Number(seconds);
console.log(`rate ${rate.toFixed(0)}/s, ~${(total / commands).toFixed(0)} B per command`);
for (const [site, bytes] of [...bySite].sort((a, b) => b[1] - a[1]).slice(0, 30)) console.log(`${(bytes / commands).toFixed(1).padStart(7)} B  ${site}`);
await node.close();
