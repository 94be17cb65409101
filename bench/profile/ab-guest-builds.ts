// Two builds of one module side by side (an SDK change, a compiler flag), each in its own
// in-process node, rounds alternating (bench/lib/ab-rounds.ts):
//   node --import=tsx bench/profile/ab-guest-builds.ts A.wasm B.wasm [rounds] [counter|shopping-cart]
// Prints the median rate of each and B/A.
import { readFileSync } from "node:fs";
import { alternateRounds } from "../lib/ab-rounds.js";
import { inProcessNode } from "../lib/inproc.js";
import { cartWorkload, counterWorkload } from "../lib/workloads.js";
import { guestOnlyRate, routerRate } from "../suites/throughput-inproc.js";

const [aPath, bPath, rounds = "4", module = "counter"] = process.argv.slice(2);
if (!aPath || !bPath) throw new Error("usage: ab-guest-builds.ts A.wasm B.wasm [rounds] [counter|shopping-cart]");
const workload = module === "shopping-cart" ? cartWorkload : counterWorkload;
const side = async (wasm: string) => {
  const node = await inProcessNode("discard");
  await node.registry.deploy(readFileSync(wasm));
  return { node, workload, guestOnlyRate, routerRate };
};
const sides = [await side(aPath), await side(bPath)] as const;
await alternateRounds(sides, Number(rounds));
for (const { node } of sides) await node.close();
