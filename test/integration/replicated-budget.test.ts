// Replicated (CRDT) entities under the memory budget, in process on the embedded store:
// over the budget the least recently used idle ones leave memory (their CRDTs are in the
// store, so the next command reloads them), and an entity holding an open stream never does.
import test, { type ExecutionContext } from "ava";
import { readFile } from "node:fs/promises";
import protobuf from "protobufjs";
import { EntityManager } from "../../host/entities/entity-manager.js";
import type { StreamSink } from "../../host/entities/replicated-stream.js";
import { Router } from "../../host/entities/router.js";
import { openStore } from "../../host/journal/open-store.js";
import { setLogLevel } from "../../host/log.js";
import { ModuleRegistry } from "../../host/runtime/module-registry.js";
import { useBuiltFixture } from "../helpers/fixture-build.js";
import { tempDirFor } from "../helpers/temp-dir.js";

setLogLevel("error");
const wasm = useBuiltFixture(test, "crdt-kinds");
const HITS = "keystate.test.crdts.Hits";
const BUDGET = 64 * 1024;
const types = protobuf.Root.fromJSON({
  nested: {
    HitsAdd: { fields: { page: { type: "string", id: 1 }, amount: { type: "int64", id: 2 } } },
    HitsWatch: { fields: { page: { type: "string", id: 1 }, until: { type: "int64", id: 2 } } },
    HitsTotal: { fields: { total: { type: "int64", id: 1 } } },
  },
});
const HitsAdd = types.lookupType("HitsAdd");
const HitsWatch = types.lookupType("HitsWatch");
const HitsTotal = types.lookupType("HitsTotal");
const totalOf = (bytes: Uint8Array) => Number((HitsTotal.toObject(HitsTotal.decode(bytes), { longs: String }) as { total?: string }).total ?? 0);

async function node(t: ExecutionContext) {
  const store = await openStore({ dataDir: await tempDirFor(t, "replicated-budget") });
  const registry = new ModuleRegistry(store);
  await registry.deploy(await readFile(wasm()));
  // No idle sweep during the test (the Hits manifest passivates after 200 ms): only the budget evicts.
  const entities = new EntityManager(store, 1_000_000_000, { memoryBudgetBytes: BUDGET });
  const router = new Router(registry, entities);
  t.teardown(async () => {
    router.close();
    entities.close();
    await store.close();
  });
  const add = async (page: string, amount = 1) => totalOf(await router.call(HITS, "Add", HitsAdd.encode({ page, amount }).finish()));
  return { entities, router, add };
}

test("over the budget, the least recently used replicated entities leave memory and reload their CRDT", async (t) => {
  const { entities, add } = await node(t);
  const pages = 500;
  for (let i = 0; i < pages; i++) t.is(await add(`page-${i}`, i + 1), i + 1);
  const resident = entities.replicated.activeCount;
  t.log(`${pages} GCounter entities touched; ${resident} resident, ${entities.replicated.residentBytes} B charged`);
  t.true(resident < pages / 4, `most were evicted (${resident} resident)`);
  t.true(resident > 10, `the budget holds some (${resident})`);
  t.true(entities.replicated.residentBytes <= BUDGET);
  // Evicted long ago and recent: each reads back its total and adds to it.
  for (const i of [0, 1, 250, pages - 1]) t.is(await add(`page-${i}`, 1000), i + 1 + 1000);
});

test("an entity with an open stream stays resident however far down the LRU order it falls", async (t) => {
  const { entities, router, add } = await node(t);
  const received: number[] = [];
  const sink: StreamSink = { opened: () => undefined, send: (m) => received.push(totalOf(m)), end: () => undefined, fail: (err) => t.fail(String(err)) };
  const handle = router.openStream(HITS, "Watch", HitsWatch.encode({ page: "watched", until: 1_000_000 }).finish(), sink);
  await waitFor(() => received.length === 1);
  t.deepEqual(received, [0], "the current total at once");
  // 500 other entities churn through the budget; the watched one is the oldest by far.
  for (let i = 0; i < 500; i++) await add(`churn-${i}`);
  t.true(entities.replicated.activeCount < 250, "the budget evicted most of the churn");
  // Still the same resident entity: a change reaches the open stream.
  t.is(await add("watched", 5), 5);
  await waitFor(() => received.length === 2);
  t.deepEqual(received, [0, 5]);
  handle.cancel();
});

async function waitFor(condition: () => boolean): Promise<void> {
  const deadline = Date.now() + 5_000;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error("condition not met within 5 s");
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
