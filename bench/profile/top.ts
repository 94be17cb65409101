// Prints the top self-time entries of a V8 .cpuprofile (from `node --cpu-prof`), so a
// profile can be read without a browser: bench/profile/top.ts <file.cpuprofile>... [n].
import { readFileSync } from "node:fs";
import { relative } from "node:path";

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

// Every .cpuprofile argument is read and summed (`--import=tsx` runs a loader thread that
// writes a profile of its own, so a glob often names two files); a number is the row count.
const args = process.argv.slice(2);
const files = args.filter((arg) => arg.endsWith(".cpuprofile"));
const count = args.find((arg) => /^\d+$/.test(arg));
if (files.length === 0) throw new Error("usage: top.ts <file.cpuprofile>... [n]");
const selfUs = new Map<string, number>();
let total = 0;
for (const file of files) {
  const profile = JSON.parse(readFileSync(file, "utf8")) as Profile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  profile.samples.forEach((id, i) => {
    const node = byId.get(id)!;
    const dt = profile.timeDeltas[i] ?? 0;
    const { functionName, url, lineNumber } = node.callFrame;
    const where = url ? `${relative(process.cwd(), url.replace(/^file:\/\//, ""))}:${lineNumber + 1}` : "";
    const key = `${functionName || "(anonymous)"} ${where}`.trim();
    selfUs.set(key, (selfUs.get(key) ?? 0) + dt);
    total += dt;
  });
}
/**
 * Where a guest function comes from, by the name a `keystate build --names` module gives it
 * (asc's `~lib/...` paths); a module built without names numbers its functions.
 */
function guestPlace(key: string): string | undefined {
  if (key.startsWith("wasm-function")) return "guest Wasm code (unnamed: build the module with --names to split it)";
  if (!/ wasm:\//.test(key)) return undefined;
  if (key.startsWith("~lib/rt/")) return "guest: AssemblyScript runtime (allocator, collector)";
  if (key.startsWith("~lib/keystate-guest-sdk/")) return "guest: Keystate SDK";
  if (key.startsWith("~lib/")) return "guest: AssemblyScript standard library";
  return "guest: the module's own code";
}

// Also by place: guest Wasm functions by origin, each package, each host file.
const byPlace = new Map<string, number>();
for (const [key, us] of selfUs) {
  const place = guestPlace(key)
    ?? /node_modules\/(@[^/]+\/[^/]+|[^/]+)/.exec(key)?.[0].replace("node_modules/", "package ")
    ?? /(host|bench)\/[\w/.-]+\.ts/.exec(key)?.[0]
    ?? (key.includes("node:") ? "node internals" : key);
  byPlace.set(place, (byPlace.get(place) ?? 0) + us);
}
process.stdout.write("-- by place --\n");
for (const [place, us] of [...byPlace.entries()].sort((a, b) => b[1] - a[1]).slice(0, 16)) {
  process.stdout.write(`${((us / total) * 100).toFixed(1).padStart(5)}%  ${(us / 1000).toFixed(0).padStart(6)} ms  ${place}\n`);
}
process.stdout.write("-- by function --\n");
const top = [...selfUs.entries()].sort((a, b) => b[1] - a[1]).slice(0, Number(count ?? 25));
for (const [name, us] of top) process.stdout.write(`${((us / total) * 100).toFixed(1).padStart(5)}%  ${(us / 1000).toFixed(0).padStart(6)} ms  ${name}\n`);
