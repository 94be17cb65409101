// The precompiled proto Root that `npm run build` writes (dist/host/proto/keystate-root.json)
// must be the Root the .proto files parse to, options extensions included: a node loads it
// instead of parsing, so a stale or lossy file would change how every module's API decodes.
import test from "ava";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import protobuf from "protobufjs";
import { parseKeystateProtos } from "../../host/proto/proto-root.js";
import { decodeDescriptorSet, ENTITY_KEY_OPTION, HTTP_RULE_OPTION } from "../../host/proto/descriptors.js";
import { DESCRIPTOR_SECTION, readSection } from "../../host/runtime/module-sections.js";
import { REPO_ROOT } from "../helpers/node-process.js";

const BUILT = join(REPO_ROOT, "dist", "host", "proto", "keystate-root.json");

function parsedJson(): unknown {
  const root = parseKeystateProtos();
  root.resolveAll();
  return root.toJSON();
}

test("the built keystate-root.json equals the Root parsed from proto/ now", (t) => {
  if (!existsSync(BUILT)) t.fail(`${BUILT} is missing: run npm run build`);
  t.deepEqual(JSON.parse(readFileSync(BUILT, "utf8")), JSON.parse(JSON.stringify(parsedJson())));
});

test("a Root loaded from the JSON decodes a module's API with its entity-key and HTTP options", (t) => {
  const fromJson = protobuf.Root.fromJSON(JSON.parse(JSON.stringify(parsedJson())) as protobuf.INamespace);
  fromJson.resolveAll();
  const bytes = readSection(readFileSync(join(REPO_ROOT, "modules", "counter", "build", "counter.wasm")), DESCRIPTOR_SECTION);
  const type = fromJson.lookupType("google.protobuf.FileDescriptorSet");
  const viaJson = type.toObject(type.decode(bytes), { longs: Number, bytes: Buffer, defaults: false });
  t.deepEqual(JSON.parse(JSON.stringify(viaJson)), JSON.parse(JSON.stringify(decodeDescriptorSet(bytes))));
  const file = (viaJson.file as { name: string; messageType: { name: string; field: { options?: Record<string, unknown> }[] }[]; service: { method: { options?: Record<string, unknown> }[] }[] }[])
    .find((f) => f.name === "counter.proto")!;
  t.is(file.messageType.find((m) => m.name === "ChangeValue")!.field[0]!.options?.[ENTITY_KEY_OPTION], true);
  t.truthy(file.service[0]!.method[0]!.options?.[HTTP_RULE_OPTION]);
});
