// The generated base class of a replicated entity: typed on the module.json CRDT, unary
// rpcs with a ReplicatedContext, server-streaming rpcs with a StreamContext of that CRDT
// (and a dispatch branch each), client-streaming rpcs with none. (That the output compiles
// and runs is proved by the integration tests building modules/presence and
// test/fixtures/crdt-kinds.)
import test from "ava";
import { join } from "node:path";
import { compileProtos } from "../../host/build/buf.js";
import { generateHandlers } from "../../host/build/codegen-handlers.js";
import { generateMessages } from "../../host/build/codegen-messages.js";
import { crdtTypeOf } from "../../host/build/module-config.js";
import { decodeDescriptorSet, indexDescriptorSet } from "../../host/proto/descriptors.js";
import { REPO_ROOT } from "../helpers/node-process.js";

async function generate(dir: string, files: string[], service: string, crdt: string | undefined): Promise<string> {
  const set = decodeDescriptorSet(await compileProtos({ roots: [dir, join(REPO_ROOT, "proto")], files }));
  const classNames = generateMessages(set, { files, sdkImport: "sdk/proto" }).classNames;
  return generateHandlers({ index: indexDescriptorSet(set), entities: [{ service, kind: "replicated", crdt }], classNames, sdkImport: "sdk", messagesImport: "./messages" });
}

test("presence: a Vote-typed base class whose streaming rpcs take a StreamContext<Vote>", async (t) => {
  const source = await generate(join(REPO_ROOT, "modules/presence/proto"), ["presence.proto"], "keystate.examples.presence.Presence", "vote");
  t.regex(source, /export abstract class PresenceEntity extends ReplicatedEntity<Vote> \{/);
  t.regex(source, /abstract connect\(command: User, crdt: Vote, ctx: StreamContext<Vote>\): Empty \| null;/);
  t.regex(source, /abstract monitor\(command: User, crdt: Vote, ctx: StreamContext<Vote>\): OnlineStatus \| null;/);
  t.regex(source, /if \(method == "Monitor"\) \{/);
  t.regex(source, /^import \{ Message, ReplicatedContext, ReplicatedEntity, Status, StreamContext, Vote, decode \} from "sdk";$/m);
});

test("unary rpcs take a ReplicatedContext; the CRDT name is matched in any case", async (t) => {
  const source = await generate(join(REPO_ROOT, "test/fixtures/crdt-kinds/proto"), ["crdts.proto"], "keystate.test.crdts.Prefs", "ORMAP");
  t.regex(source, /extends ReplicatedEntity<ORMap>/);
  t.regex(source, /abstract count\(command: PrefCount, crdt: ORMap, ctx: ReplicatedContext\): PrefList \| null;/);
  t.is(crdtTypeOf("lwwregister"), "LWWRegister");
  t.is(crdtTypeOf("counter"), undefined);
});

test("a replicated service without a valid crdt is refused at build time", async (t) => {
  await t.throwsAsync(generate(join(REPO_ROOT, "modules/presence/proto"), ["presence.proto"], "keystate.examples.presence.Presence", "counter"), {
    message: /needs "crdt" in module.json/,
  });
});
