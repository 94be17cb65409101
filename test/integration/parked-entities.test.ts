// Parked entities (host/entities/parked-entities.ts), in process on the embedded store (LMDB in
// a temp dir), through the call path a node uses (ModuleRegistry -> Router -> EntityManager
// -> guest): an idle counter (or shopping cart, event-sourced) the sweep parks stays resident in compact form — its next
// command reads nothing from the store and sees the value it kept —, is charged less, and
// still leaves when it should: past its passivation timeout, over the memory budget (before
// the records), when its shard is taken away, and when another version of its module is
// live; a hand-off snapshots parked carts. Reads of the value store and journal recoveries are
// counted by wrappers around the real store.
import test, { type ExecutionContext } from "ava";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import protobuf from "protobufjs";
import { EntityManager, type EntityManagerOptions } from "../../host/entities/entity-manager.js";
import { ENTITY_OVERHEAD_BYTES, PARKED_OVERHEAD_BYTES } from "../../host/entities/memory-budget.js";
import { stringBytes } from "../../host/entities/resident-bytes.js";
import { Router } from "../../host/entities/router.js";
import { openStore } from "../../host/journal/open-store.js";
import type { Journal } from "../../host/journal/types.js";
import { ModuleRegistry } from "../../host/runtime/module-registry.js";
import { buildBeforeAll } from "../helpers/built-module.js";
import { useVersionedFixture } from "../helpers/fixture-build.js";
import { REPO_ROOT } from "../helpers/node-process.js";
import { tempDirFor } from "../helpers/temp-dir.js";

const COUNTER = "keystate.examples.counter.Counter";
const VISITS = "keystate.test.versioned.Visits";
const CART = "keystate.examples.shoppingcart.ShoppingCart";
const counterWasm = buildBeforeAll(test, join(REPO_ROOT, "modules", "counter"));
const cartWasm = buildBeforeAll(test, join(REPO_ROOT, "modules", "shopping-cart"));
const visitsWasm = useVersionedFixture(test);

const ChangeValue = new protobuf.Type("ChangeValue").add(new protobuf.Field("counterId", 1, "string")).add(new protobuf.Field("value", 2, "int64"));
const CurrentValue = new protobuf.Type("CurrentValue").add(new protobuf.Field("value", 1, "int64"));
new protobuf.Root().add(ChangeValue).add(CurrentValue);

interface Node {
  readonly registry: ModuleRegistry;
  readonly entities: EntityManager;
  readonly router: Router;
  /** Keys of the value-store reads so far. */
  readonly reads: string[];
  /** Keys of the journal recoveries (event-sourced entities loaded) so far. */
  readonly recoveries: string[];
  readonly journal: Journal;
  increase(key: string, by: number): Promise<number>;
  get(key: string): Promise<number>;
}

/** `target` as it is, except that each call of `method` logs the key of the entity it names. */
function logging<S extends object>(target: S, method: keyof S, keys: string[]): S {
  return new Proxy(target, {
    get(real, property) {
      const value = Reflect.get(real, property, real) as unknown;
      if (typeof value !== "function") return value;
      const bound = (value as (...args: unknown[]) => unknown).bind(real);
      return property === method ? (id: { key: string }, ...rest: unknown[]) => (keys.push(id.key), bound(id, ...rest)) : bound;
    },
  });
}

async function node(t: ExecutionContext, options: EntityManagerOptions): Promise<Node> {
  const store = await openStore({ dataDir: await tempDirFor(t, "parked-store") });
  // The real store; only value reads and journal recoveries are counted.
  const reads: string[] = [];
  const values = logging(store.values, "read", reads);
  const recoveries: string[] = [];
  const journal = logging(store.journal, "recover", recoveries);
  const registry = new ModuleRegistry(store);
  // No timer sweep: each test runs the sweep's pass itself (passivateIdle).
  const entities = new EntityManager({ journal, values }, 2_000_000_000, options);
  const router = new Router(registry, entities);
  t.teardown(async () => {
    router.close();
    entities.close();
    await store.close();
  });
  await registry.deploy(await readFile(counterWasm()));
  const valueOf = (reply: Uint8Array) => Number((CurrentValue.decode(reply) as unknown as { value: unknown }).value ?? 0);
  return {
    registry,
    entities,
    router,
    reads,
    recoveries,
    journal: store.journal,
    increase: async (key, by) => valueOf(await router.call(COUNTER, "Increase", ChangeValue.encode({ counterId: key, value: by }).finish())),
    get: async (key) => valueOf(await router.call(COUNTER, "Get", ChangeValue.encode({ counterId: key }).finish())),
  };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
/** Until the mailboxes of the commands just answered have finished their batch (they are idle only then). */
const settled = () => new Promise((resolve) => setImmediate(resolve));

test("an idle counter is parked by the sweep, charged less, and its next command reads nothing from the store", async (t) => {
  const n = await node(t, { parkAfterMs: 10_000 });
  t.is(await n.increase("c1", 5), 5);
  t.deepEqual(n.reads, ["c1"], "the first command loads it");
  const asRecord = n.entities.residentBytes;
  t.true(asRecord >= ENTITY_OVERHEAD_BYTES + stringBytes("c1"));

  await settled();
  n.entities.passivateIdle(Date.now());
  t.is(n.entities.parkedCount, 0, "used within parkAfterMs: still a record");
  // The sweep's pass as it would run 11 s from now (the counter's timeout is 30 s).
  await settled();
  n.entities.passivateIdle(Date.now() + 11_000);
  t.is(n.entities.parkedCount, 1);
  t.is(n.entities.activeCount, 1, "a parked entity is resident");
  t.is(n.entities.residentBytes, PARKED_OVERHEAD_BYTES + "c1".length, "charged its row and its key's bytes, not a record");

  t.is(await n.get("c1"), 5, "it kept its value");
  t.is(await n.increase("c1", 2), 7, "and its stored version: the write is not refused");
  t.deepEqual(n.reads, ["c1"], "taken back without a store read");
  t.is(n.entities.parkedCount, 0, "a record again");
  t.is(n.entities.residentBytes, asRecord);
});

test("a parked counter is passivated past its timeout, and the next command reloads it", async (t) => {
  const n = await node(t, { parkAfterMs: 0 });
  await n.increase("c1", 3);
  await settled();
  n.entities.passivateIdle(Date.now());
  t.is(n.entities.parkedCount, 1);
  // The counter's manifest sets no timeout: the default, 30 s.
  await settled();
  n.entities.passivateIdle(Date.now() + 29_000);
  t.is(n.entities.activeCount, 1, "not yet");
  await settled();
  t.is(n.entities.passivateIdle(Date.now() + 31_000), 1);
  t.is(n.entities.activeCount, 0);
  t.is(n.entities.residentBytes, 0);
  t.is(await n.get("c1"), 3);
  t.deepEqual(n.reads, ["c1", "c1"], "reloaded from the store");
});

test("over the memory budget, parked entities leave before records, oldest first", async (t) => {
  const parkedEach = PARKED_OVERHEAD_BYTES + "c00".length;
  // Room for ten parked counters and a bit: a new record (its overhead, key and version) does not fit beside them.
  const n = await node(t, { parkAfterMs: 0, memoryBudgetBytes: 10 * parkedEach + ENTITY_OVERHEAD_BYTES });
  for (let i = 0; i < 10; i++) {
    await n.increase(`c0${i}`, i + 1);
    await settled();
    n.entities.passivateIdle(Date.now()); // parked at once: ten records would not fit
    await sleep(2); // last use is kept to the millisecond: the order is plain
  }
  t.is(n.entities.parkedCount, 10);
  t.is(n.entities.activeCount, 10);
  // Parked, a counter is charged 35 B here against 96 B as a record.
  await n.increase("new", 1);
  t.true(n.entities.residentBytes <= 10 * parkedEach + ENTITY_OVERHEAD_BYTES);
  t.true(n.entities.parkedCount < 10, "parked entities made room");
  t.is(n.entities.activeCount, n.entities.parkedCount + 1, "the new counter stayed, as a record");
  // The oldest left (and reload what they stored); the newest are still parked.
  n.reads.length = 0;
  t.is(await n.get("c00"), 1);
  t.deepEqual(n.reads, ["c00"], "the least recently used parked counter was evicted");
  t.is(await n.get("c09"), 10);
  t.false(n.reads.includes("c09"), "the most recently used one stayed");
});

test("taking a shard away drops its parked entities too", async (t) => {
  const n = await node(t, { parkAfterMs: 0 });
  await n.increase("mine", 1);
  await n.increase("theirs", 1);
  await settled();
  n.entities.passivateIdle(Date.now());
  t.is(n.entities.parkedCount, 2);
  const left = n.entities.dropMatching((_persistenceId, key) => key === "theirs", true, new Error("shard moved"));
  t.is(left, 0, "parked entities are idle: none is left running");
  t.is(n.entities.activeCount, 1);
  t.is(n.entities.parkedCount, 1);
  n.reads.length = 0;
  await n.get("theirs");
  await n.get("mine");
  t.deepEqual(n.reads, ["theirs"], "the dropped one reloads; the other was still parked");
});

test("a counter above 16,383 (a 4-byte state, kept as bytes) parks too, and keeps its value", async (t) => {
  const n = await node(t, { parkAfterMs: 0 });
  t.is(await n.increase("big", 20_000), 20_000);
  await settled();
  n.entities.passivateIdle(Date.now());
  t.is(n.entities.parkedCount, 1);
  // Its state, `value: 20000`, is 4 bytes: charged with its key's.
  t.is(n.entities.residentBytes, PARKED_OVERHEAD_BYTES + "big".length + 4);
  t.is(await n.increase("big", 1), 20_001);
  t.deepEqual(n.reads, ["big"], "taken back without a store read");
});

test("many parked counters: each answers with its own value", async (t) => {
  const n = await node(t, { parkAfterMs: 0 });
  const N = 5_000;
  await Promise.all(Array.from({ length: N }, (_, i) => n.increase(`k${i}`, i % 97)));
  await settled();
  n.entities.passivateIdle(Date.now());
  t.is(n.entities.parkedCount, N);
  n.reads.length = 0;
  const values = await Promise.all(Array.from({ length: N }, (_, i) => n.get(`k${i}`)));
  t.true(values.every((value, i) => value === i % 97));
  t.deepEqual(n.reads, []);
});

test("a counter parked by one version of its module leaves when another version is live, and reloads with it", async (t) => {
  const n = await node(t, { parkAfterMs: 0 });
  const VisitRequest = new protobuf.Type("VisitRequest").add(new protobuf.Field("page", 1, "string"));
  const VisitReply = new protobuf.Type("VisitReply").add(new protobuf.Field("servedBy", 1, "string")).add(new protobuf.Field("count", 2, "int64"));
  new protobuf.Root().add(VisitRequest).add(VisitReply);
  const visit = async (page: string) => {
    const reply = VisitReply.decode(await n.router.call(VISITS, "Visit", VisitRequest.encode({ page }).finish())) as unknown as { servedBy: string; count: unknown };
    return { servedBy: reply.servedBy, count: Number(reply.count) };
  };
  await n.registry.deploy(await readFile(visitsWasm().v1));
  t.deepEqual(await visit("home"), { servedBy: "v1", count: 1 });
  await settled();
  n.entities.passivateIdle(Date.now());
  t.is(n.entities.parkedCount, 1);

  await n.registry.deploy(await readFile(visitsWasm().v2));
  n.reads.length = 0;
  t.deepEqual(await visit("home"), { servedBy: "v2", count: 2 }, "the new version runs it, on the stored count");
  t.deepEqual(n.reads, ["home"], "reloaded from the store, not taken from the row v1 parked");
  t.is(n.entities.parkedCount, 0);
  t.is(n.entities.activeCount, 1, "the page, once: a record of v2 now");
});

const AddLineItem = new protobuf.Type("AddLineItem")
  .add(new protobuf.Field("userId", 1, "string"))
  .add(new protobuf.Field("productId", 2, "string"))
  .add(new protobuf.Field("name", 3, "string"))
  .add(new protobuf.Field("quantity", 4, "int32"));
const GetShoppingCart = new protobuf.Type("GetShoppingCart").add(new protobuf.Field("userId", 1, "string"));
const LineItem = new protobuf.Type("LineItem").add(new protobuf.Field("productId", 1, "string")).add(new protobuf.Field("name", 2, "string")).add(new protobuf.Field("quantity", 3, "int32"));
const Cart = new protobuf.Type("Cart").add(new protobuf.Field("items", 1, "LineItem", "repeated"));
new protobuf.Root().add(AddLineItem).add(GetShoppingCart).add(LineItem).add(Cart);

async function cartOf(n: Node, userId: string): Promise<string[]> {
  const cart = Cart.decode(await n.router.call(CART, "GetCart", GetShoppingCart.encode({ userId }).finish())) as unknown as { items: Array<{ productId: string; quantity: number }> };
  return cart.items.map((item) => `${item.productId}x${item.quantity}`);
}

const addItem = (n: Node, userId: string, productId: string) => n.router.call(CART, "AddItem", AddLineItem.encode({ userId, productId, name: productId, quantity: 1 }).finish());

test("an idle cart (event-sourced) is parked, and its next command replays nothing and appends at the right sequence number", async (t) => {
  const n = await node(t, { parkAfterMs: 0 });
  await n.registry.deploy(await readFile(cartWasm()));
  await addItem(n, "ann", "apple");
  await addItem(n, "ann", "pear");
  t.deepEqual(n.recoveries, ["ann"]);
  await settled();
  n.entities.passivateIdle(Date.now());
  t.is(n.entities.parkedCount, 1);

  await addItem(n, "ann", "fig");
  t.deepEqual(await cartOf(n, "ann"), ["applex1", "pearx1", "figx1"]);
  t.deepEqual(n.recoveries, ["ann"], "taken back from its row: no replay of its journal");
  t.is(await n.journal.lastSeq({ persistenceId: "shopping-cart", key: "ann" }), 3, "the third event appended after the two");
});

test("a hand-off snapshots the parked carts with events since their last snapshot", async (t) => {
  const n = await node(t, { parkAfterMs: 0 });
  await n.registry.deploy(await readFile(cartWasm()));
  for (const product of ["a", "b", "c"]) await addItem(n, "bob", product);
  await addItem(n, "cyd", "a");
  await settled();
  n.entities.passivateIdle(Date.now());
  t.is(n.entities.parkedCount, 2);
  // The shard of bob moves: its cart is written as a snapshot so the next owner replays nothing.
  t.is(await n.entities.flushSnapshots((_persistenceId, key) => key === "bob"), 1);
  const recovered = await n.journal.recover({ persistenceId: "shopping-cart", key: "bob" });
  t.is(recovered.snapshot?.seq, 3);
  t.is(recovered.events.length, 0);
  t.is(await n.entities.flushSnapshots((_persistenceId, key) => key === "bob"), 0, "nothing new since");
  t.is(n.entities.dropMatching((_persistenceId, key) => key === "bob", true, new Error("moved")), 0);
  t.is(n.entities.parkedCount, 1, "cyd is still parked");
  t.is(n.entities.activeCount, 1);
});
