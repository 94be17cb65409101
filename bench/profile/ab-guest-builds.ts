// Two builds of one module side by side (an SDK change, a compiler flag): the guest call
// alone and the node's command path (10,000 keys, 256 in flight, storage acknowledging at
// once), each build in its own in-process node, rounds alternating so drift hits both.
//   node --import=tsx bench/profile/ab-guest-builds.ts A.wasm B.wasm [rounds] [counter|shopping-cart]
// Prints the median rate of each and B/A.
import { readFileSync } from "node:fs";
import { inProcessNode } from "../lib/inproc.js";
import { cartWorkload, counterWorkload } from "../lib/workloads.js";
import { guestOnlyRate, routerRate } from "../suites/throughput-inproc.js";

const [aPath, bPath, rounds = "4", module = "counter"] = process.argv.slice(2);
if (!aPath || !bPath) throw new Error("usage: ab-guest-builds.ts A.wasm B.wasm [rounds] [counter|shopping-cart]");
const w = module === "shopping-cart" ? cartWorkload : counterWorkload;
const nodes = [await inProcessNode("discard"), await inProcessNode("discard")];
await nodes[0]!.registry.deploy(readFileSync(aPath));
await nodes[1]!.registry.deploy(readFileSync(bPath));
const guest: number[][] = [[], []];
const router: number[][] = [[], []];
for (let i = 0; i < Number(rounds); i++) {
  for (const j of i % 2 ? [1, 0] : [0, 1]) {
    guest[j]!.push(await guestOnlyRate(nodes[j]!, w, 1500));
    router[j]!.push((await routerRate(nodes[j]!, w, 10_000, 256, 1500)).rate);
  }
}
const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;
const k = (x: number) => (x / 1000).toFixed(1) + "k";
for (const [label, rates] of [["guest call alone", guest], ["command path", router]] as const) {
  const [a, b] = [med(rates[0]!), med(rates[1]!)];
  console.log(`${label}: A ${k(a)}/s, B ${k(b)}/s, B/A ${(b / a).toFixed(3)} (rounds: A ${rates[0]!.map(k).join(" ")}; B ${rates[1]!.map(k).join(" ")})`);
}
for (const n of nodes) await n.close();
