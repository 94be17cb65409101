// Deploy in-process in a loop, split into its steps, to run under the profiler:
//   node --cpu-prof --cpu-prof-dir=/tmp/prof --import=tsx bench/profile/deploy.ts [rounds]
//   node --import=tsx bench/profile/top.ts /tmp/prof/*.cpuprofile
// Each round deploys a unique copy of the cart through registry.deploy() (validate,
// instrument, compile, store, activate) on one running call path, then times the first
// reply after it (GetCart on a new key) as the startup suite's deploy rows do.
import { readFileSync } from "node:fs";
import { callPath, openInProcessStore } from "../lib/inproc.js";
import { requireModuleBuilt } from "../lib/prepare.js";
import { StepTimes } from "../lib/step-times.js";
import { uniqueCopy } from "../lib/unique-module.js";
import { cartWorkload as w } from "../lib/workloads.js";

const rounds = Number(process.argv[2] ?? 300);
const wasm = requireModuleBuilt("profile", w.module);
const bytes = readFileSync(wasm);
const opened = await openInProcessStore("embedded");
const path = callPath(opened.store, "embedded");
const steps = ["registry.deploy()", "first reply after it", "deploy total"] as const;
const times = new StepTimes(steps);
for (let i = 0; i < rounds; i++) {
  const upload = uniqueCopy(bytes);
  const t0 = performance.now();
  await path.registry.deploy(upload);
  const t1 = performance.now();
  await path.router.call(w.service, w.readMethod, w.readPayload(`k-${i}`));
  const t2 = performance.now();
  if (i >= 3) {
    times.record("registry.deploy()", t0, t1);
    times.record("first reply after it", t1, t2);
    times.record("deploy total", t0, t2);
  }
}
times.print();
path.close();
await opened.close();
