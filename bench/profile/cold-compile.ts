// The Wasm side of a cold start, without the store or the node: for unique copies of a
// module's deploy-time artifact, times V8 compiling it, the first instance, and the first
// and second command on that instance (the first pays for V8 compiling, lazily, every guest
// function it reaches). Run it under `--trace-wasm-compilation-times` to list those functions.
//   node --import=tsx bench/profile/cold-compile.ts [counter|shopping-cart] [rounds]
import { readFileSync } from "node:fs";
import { GuestInstance } from "../../host/abi/guest-instance.js";
import { buildArtifact, describe } from "../../host/runtime/loaded-module.js";
import { DEFAULT_GUEST_LIMITS } from "../../host/runtime/guest-limits.js";
import { requireModuleBuilt } from "../lib/prepare.js";
import { StepTimes } from "../lib/step-times.js";
import { uniqueCopy } from "../lib/unique-module.js";
import { cartWorkload, counterWorkload } from "../lib/workloads.js";

const [module = "shopping-cart", rounds = "300"] = process.argv.slice(2);
const w = module === "counter" ? counterWorkload : cartWorkload;
const wasm = requireModuleBuilt("profile", w.module);
const bytes = readFileSync(wasm);
const steps = ["new WebAssembly.Module", "first instance", "first command", "second command"] as const;
const times = new StepTimes(steps);
for (let i = 0; i < Number(rounds); i++) {
  const artifact = await buildArtifact(uniqueCopy(bytes));
  const t0 = performance.now();
  const compiled = new WebAssembly.Module(artifact.bytes as Uint8Array<ArrayBuffer>);
  const t1 = performance.now();
  const loaded = describe(artifact, 1, DEFAULT_GUEST_LIMITS, "artifact", () => compiled);
  const t2 = performance.now();
  const guest = new GuestInstance(compiled, () => undefined, loaded.limits);
  const t3 = performance.now();
  const first = guest.command({ service: w.service, method: w.readMethod, entityKey: "a", sequence: 0, state: undefined, payload: w.readPayload("a") });
  const t4 = performance.now();
  guest.command({ service: w.service, method: w.readMethod, entityKey: "b", sequence: 0, state: undefined, payload: w.readPayload("b") });
  const t5 = performance.now();
  if (first.failure) throw new Error(`the guest refused: ${first.failure.message}`);
  guest.dispose();
  if (i >= 3) {
    times.record("new WebAssembly.Module", t0, t1);
    times.record("first instance", t2, t3);
    times.record("first command", t3, t4);
    times.record("second command", t4, t5);
  }
}
times.print();
