// Two variants of the in-process command path measured side by side in one process, rounds
// alternating (A B, B A, ...) so that the box's drift hits both alike: the guest call alone and
// the node's command path (10,000 keys, 256 in flight, storage acknowledging at once). Prints
// each one's median rate and B/A. Used by bench/profile/ab-guest-builds.ts (two builds of a
// module) and ab-host-trees.ts (two trees of the host).
import type { InProcessNode } from "./inproc.js";
import type { Workload } from "./workloads.js";

/** What one side measures with: its own node and its own copy of the suite's loops. */
export interface AbSide {
  readonly node: InProcessNode;
  readonly workload: Workload;
  guestOnlyRate(node: InProcessNode, workload: Workload, budgetMs: number): Promise<number>;
  routerRate(node: InProcessNode, workload: Workload, keys: number, inFlight: number, budgetMs: number): Promise<{ rate: number }>;
}

const ROUND_MS = 1500;

export async function alternateRounds(sides: readonly [AbSide, AbSide], rounds: number): Promise<void> {
  const guest: number[][] = [[], []];
  const router: number[][] = [[], []];
  for (let i = 0; i < rounds; i++) {
    for (const j of i % 2 ? [1, 0] : [0, 1]) {
      const side = sides[j]!;
      guest[j]!.push(await side.guestOnlyRate(side.node, side.workload, ROUND_MS));
      router[j]!.push((await side.routerRate(side.node, side.workload, 10_000, 256, ROUND_MS)).rate);
    }
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;
  const k = (x: number) => (x / 1000).toFixed(1) + "k";
  for (const [label, rates] of [["guest call alone", guest], ["command path", router]] as const) {
    const [a, b] = [median(rates[0]!), median(rates[1]!)];
    process.stdout.write(`${label}: A ${k(a)}/s, B ${k(b)}/s, B/A ${(b / a).toFixed(3)} (rounds: A ${rates[0]!.map(k).join(" ")}; B ${rates[1]!.map(k).join(" ")})\n`);
  }
}
