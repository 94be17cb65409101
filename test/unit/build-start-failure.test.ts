// A module whose top-level code fails (AssemblyScript runs it as the start function) could
// never be deployed: every node would refuse it with "the module failed while starting". With
// the SDK's abort recorded instead of imported (ABI version 3), `keystate build` runs that
// code once anyway (preinitialize.ts) and now stops there, with the abort's own message.
import test from "ava";
import { appendFile, cp, readFile } from "node:fs/promises";
import { join } from "node:path";
import { buildModule } from "../../host/build/build-module.js";
import { fixtureDir } from "../helpers/fixture-build.js";
import { makeTempDir, removeDir } from "../helpers/temp-dir.js";

let work = "";

test.before(async () => {
  work = await makeTempDir("build-start");
});

test.after.always(async () => {
  await removeDir(work);
});

test("keystate build refuses a module whose top-level code aborts, naming the abort's message and place", async (t) => {
  const dir = join(work, "echo-action");
  await cp(fixtureDir("echo-action"), dir, { recursive: true, filter: (path) => !path.includes("generated") && !path.includes("/build") });
  const index = join(dir, "assembly", "index.ts");
  await appendFile(index, '\nconst REGION = "eu-west";\nif (REGION.length > 0) throw new Error("no settings for region " + REGION);\n');
  const err = await t.throwsAsync(buildModule(dir, { outFile: join(work, "refused.wasm") }));
  t.regex(err!.message, /the module's top-level code fails, so no node could start it: the start function failed: no settings for region eu-west \(.*index\.ts:\d+:\d+\)/);
  t.true((await readFile(index, "utf8")).includes("eu-west"), "the fixture copy was the one built");
});
