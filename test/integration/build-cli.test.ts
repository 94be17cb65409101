// `keystate build` with several module directories: each is built into its own build/, one
// after the other in one process, and comes out byte for byte as when built alone from the
// repository (so nothing of one build leaks into the next through the compilers' state, and
// a module's bytes do not depend on where it is built from). -o names one output only.
import test from "ava";
import { execFile } from "node:child_process";
import { cp, readFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { readModuleConfig } from "../../host/build/module-config.js";
import { fixtureDir } from "../helpers/fixture-build.js";
import { KEYSTATE_BIN, REPO_ROOT } from "../helpers/node-process.js";
import { tempDirFor } from "../helpers/temp-dir.js";

const run = promisify(execFile);
// An AssemblyScript module, a C one and another AssemblyScript one after it.
const FIXTURES = ["echo-action", "wire-c", "slow-entity"];

test("several module directories build in one process, each into its build/, byte for byte as each builds alone elsewhere", async (t) => {
  const dir = await tempDirFor(t, "build-cli");
  const copies = await Promise.all(
    FIXTURES.map(async (name) => {
      const copy = join(dir, name);
      await cp(fixtureDir(name), copy, { recursive: true, filter: (source) => !source.includes("/build") && !source.includes("/generated") });
      return copy;
    }),
  );
  const { stdout } = await run(process.execPath, [KEYSTATE_BIN, "build", ...copies], { cwd: REPO_ROOT, timeout: 120_000 });
  t.is(stdout.match(/^built /gm)?.length, FIXTURES.length, stdout);
  for (const [i, name] of FIXTURES.entries()) {
    const together = await readFile(join(copies[i]!, "build", `${(await readModuleConfig(copies[i]!)).name}.wasm`));
    // Built alone here, not taken from the test build cache, which builds many modules in one process too.
    const aloneFile = join(dir, `${name}-alone.wasm`);
    await run(process.execPath, [KEYSTATE_BIN, "build", fixtureDir(name), "-o", aloneFile], { cwd: REPO_ROOT, timeout: 120_000 });
    t.true(together.equals(await readFile(aloneFile)), `${name}: built with the others, the same bytes as built alone`);
  }
});

test("-o with several module directories is refused with a message that says how to build them", async (t) => {
  const error = await t.throwsAsync(
    run(process.execPath, [KEYSTATE_BIN, "build", fixtureDir("echo-action"), fixtureDir("slow-entity"), "-o", "/dev/null"], { cwd: REPO_ROOT }),
  );
  t.regex(String((error as Error & { stderr?: string }).stderr), /-o names the output of one module: build several without it/);
});
