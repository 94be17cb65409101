// Where a function's time comes from: for every sample whose stack contains a frame
// matching a pattern, the inclusive time of that frame and of the stacks that called it,
// so "who builds all those KeystateErrors?" has an answer without a browser:
//   node --import=tsx bench/profile/callers.ts <file.cpuprofile> <frame-regexp> [n] [depth]
import { readFileSync } from "node:fs";
import { relative } from "node:path";

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

const [file, pattern, count, depth] = process.argv.slice(2);
if (!file || !pattern) throw new Error("usage: callers.ts <file.cpuprofile> <frame-regexp> [n] [depth]");
const profile = JSON.parse(readFileSync(file, "utf8")) as Profile;
const match = new RegExp(pattern);
const parent = new Map<number, ProfileNode>();
for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node);
const byId = new Map(profile.nodes.map((n) => [n.id, n]));

function label(node: ProfileNode): string {
  const { functionName, url, lineNumber } = node.callFrame;
  const where = url ? `${relative(process.cwd(), url.replace(/^file:\/\//, ""))}:${lineNumber + 1}` : "";
  return `${functionName || "(anonymous)"} ${where}`.trim();
}

let total = 0;
let inside = 0;
const chains = new Map<string, number>();
profile.samples.forEach((id, i) => {
  const dt = profile.timeDeltas[i] ?? 0;
  total += dt;
  // The outermost matching frame counts once, with the `depth` (3) frames that called it.
  let hit: ProfileNode | undefined;
  for (let node = byId.get(id); node; node = parent.get(node.id)) if (match.test(label(node))) hit = node;
  if (!hit) return;
  inside += dt;
  const stack: string[] = [label(hit)];
  for (let node = parent.get(hit.id); node && stack.length <= Number(depth ?? 3); node = parent.get(node.id)) stack.push(label(node));
  const key = stack.join("  <-  ");
  chains.set(key, (chains.get(key) ?? 0) + dt);
});
const pct = (us: number) => `${((100 * us) / total).toFixed(1).padStart(5)}%`;
process.stdout.write(`${pct(inside)} ${(inside / 1000).toFixed(0).padStart(7)} ms  inclusive in /${pattern}/\n`);
for (const [key, us] of [...chains].sort((a, b) => b[1] - a[1]).slice(0, Number(count ?? 15))) {
  process.stdout.write(`${pct(us)} ${(us / 1000).toFixed(0).padStart(7)} ms  ${key}\n`);
}
