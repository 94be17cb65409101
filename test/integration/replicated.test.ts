// Replicated (CRDT) entities (test/fixtures/crdt-kinds: GCounter, ORSet, ORMap, LWWRegister, GSet, Flag)
// against a real `keystate serve` process on a real redis-server, through gRPC clients
// built from the fixture's .proto: values as the CRDT types define them, refusals of ops
// a type does not have (status, message, state unchanged), a stream the guest ends, and
// state surviving kill -9 of the node.
import test, { type ExecutionContext } from "ava";
import { join } from "node:path";
import * as grpc from "@grpc/grpc-js";
import { status } from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { contractClient, statusOf, type ContractClient } from "../helpers/grpc-client.js";
import { streamClient } from "../helpers/grpc-stream.js";
import { buildBeforeAll, serveWith } from "../helpers/built-module.js";
import { REPO_ROOT, type NodeProcess } from "../helpers/node-process.js";
import { startRedis, type RunningRedis } from "../helpers/redis-server.js";

const FIXTURE_DIR = join(REPO_ROOT, "test", "fixtures", "crdt-kinds");
const PROTO_DIR = join(FIXTURE_DIR, "proto");
const PKG = "keystate.test.crdts";
const wasm = buildBeforeAll(test, FIXTURE_DIR);
let redis: RunningRedis | undefined;

test.before(async () => {
  redis = await startRedis();
});

test.after.always(async () => {
  await redis?.stop();
});

const startServe = (t: ExecutionContext, deploy: boolean) => serveWith(t, deploy ? wasm() : undefined, redis!.url);

function clients(t: ExecutionContext, node: NodeProcess): Record<"hits" | "tags" | "prefs" | "motto" | "badges" | "launch", ContractClient> {
  const make = (service: string) => {
    const c = contractClient(PROTO_DIR, "crdts.proto", `${PKG}.${service}`, node.grpcPort);
    t.teardown(() => c.close());
    return c;
  };
  return { hits: make("Hits"), tags: make("Tags"), prefs: make("Prefs"), motto: make("Motto"), badges: make("Badges"), launch: make("Launch") };
}

test("GCounter, ORSet and ORMap entities: values, refusals that change nothing, and state across kill -9", async (t) => {
  const first = await startServe(t, true);
  const { hits, tags, prefs } = clients(t, first);

  // GCounter: grows; majority write consistency is accepted (local on one node).
  t.deepEqual(await hits.methods.Add!({ page: "home", amount: 5 }), { total: "5" });
  t.deepEqual(await hits.methods.Add!({ page: "home", amount: 2, majority: true }), { total: "7" });
  t.deepEqual(await hits.methods.Get!({ page: "other" }), { total: "0" });

  // A GCounter only grows: a negative increment and a remove op are refused, and change nothing.
  const negative = await statusOf(hits.methods.Add!({ page: "home", amount: -1 }));
  t.is(negative.code, status.INVALID_ARGUMENT);
  t.regex(negative.details, /negative|not allowed|must/i);
  const removal = await statusOf(hits.methods.Remove!({ page: "home" }));
  t.is(removal.code, status.INVALID_ARGUMENT);
  t.regex(removal.details, /a GCounter has no remove operation/);
  t.deepEqual(await hits.methods.Get!({ page: "home" }), { total: "7" });

  // ORSet: add, remove, re-add; sorted by bytes.
  await tags.methods.Add!({ owner: "ann", tag: "red" });
  await tags.methods.Add!({ owner: "ann", tag: "blue" });
  t.deepEqual(await tags.methods.Add!({ owner: "ann", tag: "green" }), { tags: ["blue", "green", "red"] });
  t.deepEqual(await tags.methods.Remove!({ owner: "ann", tag: "green" }), { tags: ["blue", "red"] });

  // ORMap: values of different types; updating a key with another type is refused.
  await prefs.methods.Count!({ owner: "ann", field: "visits", amount: 3 });
  await prefs.methods.Count!({ owner: "ann", field: "visits", amount: -1 });
  const enabled = await prefs.methods.Enable!({ owner: "ann", field: "beta" });
  const expected = {
    prefs: [
      { field: "beta", type: "Flag", count: "0", enabled: true },
      { field: "visits", type: "PNCounter", count: "2", enabled: false },
    ],
  };
  t.deepEqual(enabled, expected);
  const wrongType = await statusOf(prefs.methods.Enable!({ owner: "ann", field: "visits" }));
  t.is(wrongType.code, status.INVALID_ARGUMENT);
  t.regex(wrongType.details, /holds a PNCounter, not a Flag/);
  t.deepEqual(await prefs.methods.Get!({ owner: "ann" }), expected, "the refused update changed nothing");

  // kill -9 right after the last acknowledged write; a fresh process on the same Redis reads it all back.
  await first.kill("SIGKILL");
  const second = await startServe(t, false);
  const again = clients(t, second);
  t.deepEqual(await again.hits.methods.Get!({ page: "home" }), { total: "7" });
  t.deepEqual(await again.tags.methods.Get!({ owner: "ann" }), { tags: ["blue", "red"] });
  t.deepEqual(await again.prefs.methods.Get!({ owner: "ann" }), expected);
  // And it keeps counting from there (the replica's own total was restored, not restarted).
  t.deepEqual(await again.hits.methods.Add!({ page: "home", amount: 1 }), { total: "8" });
  t.deepEqual(await again.prefs.methods.Drop!({ owner: "ann", field: "beta" }), { prefs: [expected.prefs[1]] });
});

test("a stream gets the value at once and on each change, and ends with OK when the guest ends it", async (t) => {
  const node = await startServe(t, true);
  const { hits } = clients(t, node);
  const watcher = streamClient(PROTO_DIR, "crdts.proto", `${PKG}.Hits`, node.grpcPort);
  t.teardown(() => watcher.close());
  await hits.methods.Add!({ page: "w", amount: 1 });
  const watch = watcher.open<{ total: string }>("Watch", { page: "w", until: 4 });
  t.deepEqual(await watch.nth(0), { total: "1" });
  await hits.methods.Add!({ page: "w", amount: 2 });
  t.deepEqual(await watch.nth(1), { total: "3" });
  // A refused command changes nothing, so the stream hears nothing.
  await statusOf(hits.methods.Add!({ page: "w", amount: -5 }));
  await hits.methods.Add!({ page: "w", amount: 10 });
  t.deepEqual(await watch.nth(2), { total: "13" });
  t.is((await watch.ended).code, status.OK, "the guest ended the stream once the total reached 4");
  t.is(watch.messages.length, 3);
  // The entity keeps serving after its stream ended.
  t.deepEqual(await hits.methods.Add!({ page: "w", amount: 1 }), { total: "14" });
});

test("LWWRegister, GSet and Flag entities: later write wins, first write wins with the reverse clock, grow-only refusals", async (t) => {
  const node = await startServe(t, true);
  const { motto, badges, launch } = clients(t, node);

  t.deepEqual(await motto.methods.Get!({ team: "a" }), { team: "a", text: "" }, "never set: no value");
  await motto.methods.Set!({ team: "a", text: "first" });
  t.deepEqual(await motto.methods.Set!({ team: "a", text: "second" }), { team: "a", text: "second" });
  t.deepEqual(await motto.methods.Get!({ team: "a" }), { team: "a", text: "second" }, "the later write wins");
  // Reverse clock: the earliest write wins, so a later SetFirst is not applied (the host keeps the first).
  await motto.methods.SetFirst!({ team: "b", text: "early" });
  await motto.methods.SetFirst!({ team: "b", text: "late" });
  t.deepEqual(await motto.methods.Get!({ team: "b" }), { team: "b", text: "early" });

  await badges.methods.Add!({ owner: "x", tag: "gold" });
  t.deepEqual(await badges.methods.Add!({ owner: "x", tag: "bronze" }), { tags: ["bronze", "gold"] });
  const removal = await statusOf(badges.methods.Remove!({ owner: "x", tag: "gold" }));
  t.is(removal.code, status.INVALID_ARGUMENT);
  t.regex(removal.details, /GSet/);
  t.deepEqual(await badges.methods.Add!({ owner: "x", tag: "gold" }), { tags: ["bronze", "gold"] }, "nothing was removed; adding again changes nothing");

  t.deepEqual(await launch.methods.Get!({ owner: "x" }), { enabled: false });
  t.deepEqual(await launch.methods.Enable!({ owner: "x" }), { enabled: true });
  t.deepEqual(await launch.methods.Get!({ owner: "x" }), { enabled: true });
});

test("client-streaming and bidirectional calls on a replicated entity answer UNIMPLEMENTED; the node keeps serving", async (t) => {
  const node = await startServe(t, true);
  const definition = protoLoader.loadSync("crdts.proto", { includeDirs: [PROTO_DIR, join(REPO_ROOT, "proto")] });
  const Hits = (grpc.loadPackageDefinition(definition) as any).keystate.test.crdts.Hits as grpc.ServiceClientConstructor;
  const client = new Hits(`127.0.0.1:${node.grpcPort}`, grpc.credentials.createInsecure()) as any;
  t.teardown(() => client.close());

  const upload = await new Promise<grpc.ServiceError | null>((resolve) => {
    const call = client.Upload((err: grpc.ServiceError | null) => resolve(err));
    call.write({ page: "u", amount: 1 });
    call.end();
  });
  t.is(upload?.code, status.UNIMPLEMENTED);
  t.regex(upload?.details ?? "", /client-streaming/);

  const exchange = await new Promise<grpc.ServiceError>((resolve) => {
    const call = client.Exchange();
    call.on("error", resolve);
    call.on("data", () => t.fail("no message expected"));
    call.write({ page: "u", amount: 1 });
  });
  t.is(exchange.code, status.UNIMPLEMENTED);

  const { hits } = clients(t, node);
  t.deepEqual(await hits.methods.Add!({ page: "u", amount: 2 }), { total: "2" }, "nothing was applied from the refused streams");
});
