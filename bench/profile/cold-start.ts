// Cold start and deploy in a loop, to run under the profiler:
//   node --cpu-prof --cpu-prof-dir=/tmp/prof --import=tsx bench/profile/cold-start.ts [seconds]
// Each round: unique module bytes → registry.deploy → first reply (GetCart on a new key).
import { readFileSync } from "node:fs";
import { callPath, openInProcessStore } from "../lib/inproc.js";
import { requireModuleBuilt } from "../lib/prepare.js";
import { uniqueCopy } from "../lib/unique-module.js";
import { cartWorkload as w } from "../lib/workloads.js";

const seconds = Number(process.argv[2] ?? 5);
const wasm = requireModuleBuilt("profile", w.module);
const bytes = readFileSync(wasm);
const opened = await openInProcessStore("embedded");
const path = callPath(opened.store, "embedded");
const deadline = performance.now() + seconds * 1000;
let rounds = 0;
while (performance.now() < deadline) {
  await path.registry.deploy(uniqueCopy(bytes));
  await path.router.call(w.service, w.readMethod, w.readPayload(`k-${rounds++}`));
}
process.stdout.write(`${rounds} deploys + first replies in ${seconds} s (${((seconds * 1000) / rounds).toFixed(2)} ms each)\n`);
path.close();
await opened.close();
