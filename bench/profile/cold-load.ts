// Cold start from the store in a loop, split into its steps, to run under the profiler:
//   node --cpu-prof --cpu-prof-dir=/tmp/prof --import=tsx bench/profile/cold-load.ts [rounds]
//   node --import=tsx bench/profile/top.ts /tmp/prof/*.cpuprofile
// Each round stores a unique copy of the cart as a deploy on another node would (upload +
// artifact; untimed), then times: a fresh node's call path, loadFromStore (artifact read,
// V8 compile, checks, API model, first instance), the first reply (GetCart on a new key:
// a journal read, V8 compiling the guest functions on first use) and a second reply on
// another new key (the same work, warm).
import { readFileSync } from "node:fs";
import { buildArtifact } from "../../host/runtime/loaded-module.js";
import { callPath, openInProcessStore } from "../lib/inproc.js";
import { requireModuleBuilt } from "../lib/prepare.js";
import { StepTimes } from "../lib/step-times.js";
import { uniqueCopy } from "../lib/unique-module.js";
import { cartWorkload as w } from "../lib/workloads.js";

const rounds = Number(process.argv[2] ?? 300);
const wasm = requireModuleBuilt("profile", w.module);
const bytes = readFileSync(wasm);
const opened = await openInProcessStore("embedded");
const steps = ["new call path", "loadFromStore", "first reply", "second reply (warm, new key)", "cold start total"] as const;
const times = new StepTimes(steps);
let key = 0;
for (let i = 0; i < rounds; i++) {
  const upload = uniqueCopy(bytes);
  const artifact = await buildArtifact(upload);
  await opened.store.modules.addVersion("shopping-cart", upload, artifact.uploadHash, { activate: true, artifact });
  const t0 = performance.now();
  const path = callPath(opened.store, "embedded");
  const t1 = performance.now();
  await path.registry.loadFromStore();
  const t2 = performance.now();
  await path.router.call(w.service, w.readMethod, w.readPayload(`k-${key++}`));
  const t3 = performance.now();
  await path.router.call(w.service, w.readMethod, w.readPayload(`k-${key++}`));
  const t4 = performance.now();
  if (i >= 3) {
    times.record("new call path", t0, t1);
    times.record("loadFromStore", t1, t2);
    times.record("first reply", t2, t3);
    times.record("second reply (warm, new key)", t3, t4);
    times.record("cold start total", t0, t3);
  }
  path.close();
}
times.print();
await opened.close();
