// 10,000 mutated variants of the shopping-cart module through the upload path
// (ModuleRegistry.deploy on a real embedded store, then calls through the Router):
// zero crashes. Every variant is refused with a KeystateError carrying a message, or
// deployed and answered on every call with a reply or a clean KeystateError; variants
// whose code and API are untouched answer byte for byte like the original.
// The seed is printed; rerun one with `node --import=tsx scripts/fuzz-modules.ts --seed N`.
// Longer runs: `--iterations 100000`.
import test from "ava";
import { setLogLevel } from "../../host/log.js";
import { formatReport, fuzzModules } from "../../scripts/fuzz-modules.js";

const ITERATIONS = 10_000;

test("10,000 mutated cart modules: each refused with a message or served cleanly, none crashes", async (t) => {
  t.timeout(150_000);
  // Refusals and trapped calls log a line each: thousands of lines say nothing here.
  setLogLevel("silent");
  const seed = Number(process.env.KEYSTATE_FUZZ_SEED ?? Math.floor(Math.random() * 2 ** 32));
  t.log(`seed ${seed} (rerun: node --import=tsx scripts/fuzz-modules.ts --iterations ${ITERATIONS} --seed ${seed})`);
  const report = await fuzzModules({ iterations: ITERATIONS, seed });
  t.log(formatReport(report));

  t.deepEqual(report.failures, [], `seed ${seed}`);
  const { refused = 0, served = 0, ["served-exact"]: exact = 0 } = report.outcomes;
  t.is(refused + served + exact, ITERATIONS);
  // The mix must exercise both paths: a mutator that only makes garbage (or only no-ops)
  // would pass trivially.
  t.true(refused > ITERATIONS / 2, `refused ${refused}`);
  t.true(served > 100, `served with changes ${served}`);
  t.true(exact > 100, `served exactly ${exact}`);
  // Refusals come from more than one check: V8 validation, sections, imports, exports, descriptor.
  t.true(Object.keys(report.refusals).length > 20, "many distinct refusal reasons");
});
