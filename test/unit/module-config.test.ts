// module.json checks that the build makes before compiling anything: the write consistency a
// replicated entity declares (a floor for every command) is one of the three names, and only
// a replicated entity may declare one.
import test from "ava";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { readModuleConfig } from "../../host/build/module-config.js";
import { tempDirFor } from "../helpers/temp-dir.js";

async function configWith(t: Parameters<typeof tempDirFor>[0], entity: object) {
  const dir = await tempDirFor(t, "module-config");
  await writeFile(join(dir, "module.json"), JSON.stringify({ name: "m", protos: ["m.proto"], entities: [entity] }));
  return readModuleConfig(dir);
}

test("a replicated entity may declare local, majority or all; anything else, or on another kind, is refused with the field named", async (t) => {
  const replicated = { service: "m.Presence", kind: "replicated", crdt: "vote" };
  for (const level of ["local", "majority", "all"] as const) {
    t.is((await configWith(t, { ...replicated, writeConsistency: level })).entities[0]!.writeConsistency, level);
  }
  await t.throwsAsync(configWith(t, { ...replicated, writeConsistency: "strong" }), { message: /entities\[0\]\.writeConsistency must be "local", "majority" or "all"/ });
  await t.throwsAsync(configWith(t, { service: "m.Cart", kind: "value", state: "m.Cart", writeConsistency: "majority" }), { message: /on a replicated entity only/ });
});
