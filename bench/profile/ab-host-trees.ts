// Two trees of the host side by side in one process (a host change, before and after), rounds
// alternating (bench/lib/ab-rounds.ts). Separate processes on this box drift by more than a
// change of a few percent; one process running both does not. Make the other tree a worktree:
//   git worktree add /tmp/base <commit> && ln -s "$PWD/node_modules" /tmp/base/node_modules
//   taskset -c 1 node --import=tsx bench/profile/ab-host-trees.ts /tmp/base . [rounds] [counter|shopping-cart]
// Each tree's own node, entities and suite loops are loaded from it; the packages and the
// module (this tree's modules/<name>/build) are shared. Prints the median rate of each and B/A.
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { alternateRounds, type AbSide } from "../lib/ab-rounds.js";
import { requireModuleBuilt } from "../lib/prepare.js";

const [aRoot, bRoot, rounds = "6", module = "counter"] = process.argv.slice(2);
if (!aRoot || !bRoot) throw new Error("usage: ab-host-trees.ts A_TREE B_TREE [rounds] [counter|shopping-cart]");

async function side(root: string): Promise<AbSide> {
  const at = (path: string) => import(resolve(root, path));
  const [inproc, workloads, suite] = await Promise.all([at("bench/lib/inproc.ts"), at("bench/lib/workloads.ts"), at("bench/suites/throughput-inproc.ts")]);
  const workload = module === "shopping-cart" ? workloads.cartWorkload : workloads.counterWorkload;
  const wasm = requireModuleBuilt("profile", workload.module);
  const node = await inproc.inProcessNode("discard");
  await node.registry.deploy(readFileSync(wasm));
  return { node, workload, guestOnlyRate: suite.guestOnlyRate, routerRate: suite.routerRate };
}

const sides = [await side(aRoot), await side(bRoot)] as const;
await alternateRounds(sides, Number(rounds));
for (const { node } of sides) await node.close();
