// In process, on a real node (embedded store) running test/fixtures/crdt-kinds: every
// durable local change of a replicated entity reaches the delta hook (what the cluster
// will replicate) with its write consistency, refused commands publish nothing, and a
// stream opened through the Router is released by cancel without holding the entity; an
// entity holding a stream is never passivated, and one without comes back from the store.
import test from "ava";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import protobuf from "protobufjs";
import { WriteConsistency } from "../../host/abi/replicated-abi.js";
import { GCounter, decodeCrdtDelta, encodeCrdtDelta } from "../../host/crdt/index.js";
import type { CrdtDeltaEvent } from "../../host/entities/replicated-observer.js";
import { startNode } from "../../host/node.js";
import { protoImportPath } from "../../host/proto/proto-root.js";
import { buildBeforeAll } from "../helpers/built-module.js";
import { REPO_ROOT } from "../helpers/node-process.js";
import { tempDirFor } from "../helpers/temp-dir.js";

const FIXTURE_DIR = join(REPO_ROOT, "test", "fixtures", "crdt-kinds");
const HITS = "keystate.test.crdts.Hits";
const wasm = buildBeforeAll(test, FIXTURE_DIR);

function fixtureRoot(): protobuf.Root {
  const root = new protobuf.Root();
  root.resolvePath = (_origin, target) => protoImportPath(target, join(FIXTURE_DIR, "proto"));
  return root.loadSync("crdts.proto");
}

test("durable changes reach the delta hook with their write consistency; refusals publish nothing; cancelled streams are released; no passivation while a stream is held", async (t) => {
  const node = await startNode({ grpcPort: 0, httpPort: 0, dataDir: await tempDirFor(t, "crdt-deltas"), insecureAdmin: true });
  t.teardown(() => node.stop());
  await node.registry.deploy(await readFile(wasm()));
  const root = fixtureRoot();
  const encode = (type: string, value: object) => root.lookupType(`keystate.test.crdts.${type}`).encode(value).finish();
  const total = (bytes: Uint8Array) => String((root.lookupType("keystate.test.crdts.HitsTotal").decode(bytes) as unknown as { total: unknown }).total);
  const activeEntities = async () => {
    const text = await (await fetch(`http://127.0.0.1:${node.httpPort}/metrics`)).text();
    return Number(/^keystate_entities_active (\d+)/m.exec(text)?.[1]);
  };
  const deltas: CrdtDeltaEvent[] = [];
  node.onCrdtDelta((event) => deltas.push(event));

  t.is(total(await node.router.call(HITS, "Add", encode("HitsAdd", { page: "p", amount: 3 }))), "3");
  t.is(total(await node.router.call(HITS, "Add", encode("HitsAdd", { page: "p", amount: 4, majority: true }))), "7");
  await t.throwsAsync(node.router.call(HITS, "Add", encode("HitsAdd", { page: "p", amount: -1 })));
  t.is(total(await node.router.call(HITS, "Get", encode("HitsKey", { page: "p" }))), "7", "reads publish nothing");

  t.deepEqual(deltas.map((d) => [d.service, d.id.key, d.delta.type, d.writeConsistency]), [
    [HITS, "p", "GCounter", WriteConsistency.LOCAL],
    [HITS, "p", "GCounter", WriteConsistency.MAJORITY],
  ]);
  // The deltas are real host/crdt deltas: joined into an empty replica elsewhere they give the value.
  const elsewhere = new GCounter("n2");
  for (const d of deltas) elsewhere.applyDelta(decodeCrdtDelta(encodeCrdtDelta(d.delta)));
  t.is(elsewhere.value(), 7n);

  // A stream through the Router: the first message, then cancel; the entity keeps answering at once.
  const sent: string[] = [];
  let ended = false;
  const handle = node.router.openStream(HITS, "Watch", encode("HitsWatch", { page: "p", until: 100 }), {
    opened: () => {},
    send: (m) => sent.push(total(m)),
    end: () => (ended = true),
    fail: (err) => t.fail(String(err)),
  });
  await new Promise((r) => setTimeout(r, 100));
  t.deepEqual(sent, ["7"]);
  handle.cancel();
  handle.cancel(); // twice is harmless
  t.is(total(await node.router.call(HITS, "Add", encode("HitsAdd", { page: "p", amount: 1 }))), "8");
  await new Promise((r) => setTimeout(r, 50));
  t.deepEqual(sent, ["7"], "a cancelled stream hears nothing more");
  t.false(ended);

  // Hits passivates after 200 ms idle (module.json), but never while it holds a stream: a
  // stream open across several sweeps still hears the next change.
  const watched: string[] = [];
  const watch = node.router.openStream(HITS, "Watch", encode("HitsWatch", { page: "q", until: 100 }), {
    opened: () => {},
    send: (m) => watched.push(total(m)),
    end: () => t.fail("ended"),
    fail: (err) => t.fail(String(err)),
  });
  await new Promise((r) => setTimeout(r, 2_500));
  t.is(await activeEntities(), 1, "page p passivated; page q, holding a stream, did not");
  await node.router.call(HITS, "Add", encode("HitsAdd", { page: "q", amount: 2 }));
  await new Promise((r) => setTimeout(r, 50));
  t.deepEqual(watched, ["0", "2"]);
  watch.cancel();
  // Without streams it does passivate, and comes back from the store with its value.
  await new Promise((r) => setTimeout(r, 2_500));
  t.is(await activeEntities(), 0);
  t.is(total(await node.router.call(HITS, "Get", encode("HitsKey", { page: "q" }))), "2");

  // A stream on a unary method is refused up front, opening nothing.
  t.throws(() => node.router.openStream(HITS, "Get", encode("HitsKey", { page: "p" }), { opened() {}, send() {}, end() {}, fail() {} }), { message: /unary method/ });
});
