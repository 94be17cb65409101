// module.json checks that the build makes before compiling anything: the write consistency a
// replicated entity declares (a floor for every command) is one of the three names, and only
// a replicated entity may declare one; subscriptions are well formed; the heap is one of two,
// for AssemblyScript modules only. And the ABI versions a module's manifest may speak.
import test from "ava";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { readModuleConfig } from "../../host/build/module-config.js";
import { lookupType } from "../../host/proto/proto-root.js";
import { decodeManifest } from "../../host/runtime/module-sections.js";
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

test("subscriptions in module.json: exactly one of topic and eventLog, a method for topics only, bounded attempts, from beginning or now", async (t) => {
  const entity = { service: "m.Svc", kind: "action" };
  const withSubs = async (subscriptions: object[]) => {
    const dir = await tempDirFor(t, "module-config");
    await writeFile(join(dir, "module.json"), JSON.stringify({ name: "m", protos: ["m.proto"], entities: [entity], subscriptions }));
    return readModuleConfig(dir);
  };
  const ok = await withSubs([{ topic: "orders", service: "m.Svc", method: "On", maxAttempts: 3, from: "now" }, { eventLog: "cart", service: "m.Svc" }]);
  t.is(ok.subscriptions?.length, 2);
  await t.throwsAsync(withSubs([{ topic: "a", eventLog: "b", service: "m.Svc", method: "On" }]), { message: /subscriptions\[0\] needs exactly one of "topic" and "eventLog"/ });
  await t.throwsAsync(withSubs([{ topic: "a", service: "m.Svc" }]), { message: /subscriptions\[0\] \(topic\) needs "method"/ });
  await t.throwsAsync(withSubs([{ eventLog: "cart", service: "m.Svc", method: "On" }]), { message: /takes no "method"/ });
  await t.throwsAsync(withSubs([{ topic: "a", service: "m.Svc", method: "On", maxAttempts: 0 }]), { message: /maxAttempts must be a whole number from 1 to 1000/ });
  await t.throwsAsync(withSubs([{ topic: "a", service: "m.Svc", method: "On", from: "latest" }]), { message: /from must be "beginning" or "now"/ });
});

test("heap in module.json: collected or per-call, for AssemblyScript modules only", async (t) => {
  const withTop = async (top: object) => {
    const dir = await tempDirFor(t, "module-config");
    await writeFile(join(dir, "module.json"), JSON.stringify({ name: "m", protos: ["m.proto"], entities: [{ service: "m.Svc", kind: "action" }], ...top }));
    return readModuleConfig(dir);
  };
  t.is((await withTop({})).heap, undefined);
  t.is((await withTop({ heap: "per-call" })).heap, "per-call");
  t.is((await withTop({ heap: "collected", language: "assemblyscript" })).heap, "collected");
  await t.throwsAsync(withTop({ heap: "arena" }), { message: /"heap" must be one of collected, per-call/ });
  await t.throwsAsync(withTop({ heap: "per-call", language: "c" }), { message: /"heap" applies to AssemblyScript modules only \(this module's language is c\)/ });
});

test("the host serves ABI versions 1, 2 and 3 and refuses another with the versions it speaks", (t) => {
  const manifest = (abiVersion: number) => encodeManifestBytes({ name: "m", abiVersion, services: [{ service: "m.Svc", kind: 4 }] });
  t.is(decodeManifest(manifest(1)).abiVersion, 1);
  t.is(decodeManifest(manifest(2)).abiVersion, 2);
  t.is(decodeManifest(manifest(3)).abiVersion, 3);
  t.throws(() => decodeManifest(manifest(4)), { message: "the module speaks ABI version 4; this host speaks 1, 2 and 3" });
});

function encodeManifestBytes(manifest: object): Uint8Array {
  return lookupType("keystate.manifest.Manifest").encode(manifest).finish();
}
