// A command for an entity that is idle, loaded and not recently busy runs as a batch of one
// without its envelope (mailbox.ts runAlone; value-entity.ts, event-sourced.ts). It must keep
// every promise of the batch path: commands that arrive while its write is in flight queue
// behind it and see its state; a failed write fails that command only and the entity
// reloads; a stale version is retried once on the reloaded state; a refused or read-only
// command writes nothing; a caller already gone is refused before anything runs; timers go
// into the outbox with the value.
//
// In process, on the embedded store (LMDB in a temp dir), through the node's call path. The
// value store and the journal are wrapped so a test can hold a write in flight or fail one.
// An entity joins the mailboxes' "recently busy" set only when two of its commands wait
// together, so an entity that gets its commands one after another's reply, each once the
// batch before has ended (batchEnded), runs each alone.
import test, { type ExecutionContext } from "ava";
import { readFile } from "node:fs/promises";
import protobuf from "protobufjs";
import { startCallContext } from "../../host/entities/call-context.js";
import { EntityManager } from "../../host/entities/entity-manager.js";
import { Router } from "../../host/entities/router.js";
import { KeystateError } from "../../host/errors.js";
import { openStore } from "../../host/journal/open-store.js";
import { setLogLevel } from "../../host/log.js";
import type { EntityId, Journal, JournalEvent, Snapshot, Store, ValueStore, WriteExtras } from "../../host/journal/types.js";
import { ModuleRegistry } from "../../host/runtime/module-registry.js";
import { buildBeforeAll } from "../helpers/built-module.js";
import { useBuiltFixture } from "../helpers/fixture-build.js";
import { REPO_ROOT } from "../helpers/node-process.js";
import { tempDirFor } from "../helpers/temp-dir.js";
import { join } from "node:path";

// The deploys, and the conflicts the tests make on purpose, would log at info and warn.
setLogLevel("error");

const COUNTER = "keystate.examples.counter.Counter";
const CART = "keystate.examples.shoppingcart.ShoppingCart";
const ALARMS = "keystate.test.timers.Alarms";
const counterWasm = buildBeforeAll(test, join(REPO_ROOT, "modules", "counter"));
const timersWasm = useBuiltFixture(test, "timers");
const cartWasm = buildBeforeAll(test, join(REPO_ROOT, "modules", "shopping-cart"));

const types = (() => {
  const root = new protobuf.Root();
  const change = new protobuf.Type("ChangeValue").add(new protobuf.Field("counterId", 1, "string")).add(new protobuf.Field("value", 2, "int64"));
  const id = new protobuf.Type("CounterId").add(new protobuf.Field("counterId", 1, "string"));
  const current = new protobuf.Type("CurrentValue").add(new protobuf.Field("value", 1, "int64"));
  const state = new protobuf.Type("CounterState").add(new protobuf.Field("value", 1, "int64"));
  const alarmId = new protobuf.Type("AlarmId").add(new protobuf.Field("id", 1, "string"));
  const schedule = new protobuf.Type("ScheduleRequest")
    .add(new protobuf.Field("id", 1, "string"))
    .add(new protobuf.Field("delayMs", 2, "uint64"))
    .add(new protobuf.Field("name", 3, "string"));
  const cancel = new protobuf.Type("CancelRequest").add(new protobuf.Field("id", 1, "string")).add(new protobuf.Field("name", 2, "string"));
  const addItem = new protobuf.Type("AddLineItem")
    .add(new protobuf.Field("userId", 1, "string"))
    .add(new protobuf.Field("productId", 2, "string"))
    .add(new protobuf.Field("name", 3, "string"))
    .add(new protobuf.Field("quantity", 4, "int32"));
  const getCart = new protobuf.Type("GetShoppingCart").add(new protobuf.Field("userId", 1, "string"));
  const lineItem = new protobuf.Type("LineItem")
    .add(new protobuf.Field("productId", 1, "string"))
    .add(new protobuf.Field("name", 2, "string"))
    .add(new protobuf.Field("quantity", 3, "int32"));
  const cart = new protobuf.Type("Cart").add(new protobuf.Field("items", 1, "LineItem", "repeated"));
  const itemAdded = new protobuf.Type("ItemAdded").add(new protobuf.Field("item", 1, "LineItem"));
  root.add(change).add(id).add(current).add(state).add(alarmId).add(schedule).add(cancel);
  root.add(addItem).add(getCart).add(lineItem).add(cart).add(itemAdded);
  return { change, id, current, state, alarmId, schedule, cancel, addItem, getCart, cart, itemAdded };
})();

/** Writes that a test can hold in flight, or fail: writing nothing, or after writing (an acknowledgement lost on the way). */
class WriteGate {
  writes = 0;
  #held: Array<() => void> | undefined;
  #failNext: { error: Error; afterWriting: boolean } | undefined;

  /** Writes from now on wait until release(). */
  hold(): void {
    this.#held ??= [];
  }

  release(): void {
    const held = this.#held ?? [];
    this.#held = undefined;
    for (const go of held) go();
  }

  failNext(error: Error, afterWriting = false): void {
    this.#failNext = { error, afterWriting };
  }

  async write<T>(write: () => Promise<T>): Promise<T> {
    this.writes++;
    if (this.#held) await new Promise<void>((go) => this.#held!.push(go));
    const failure = this.#failNext;
    this.#failNext = undefined;
    if (failure?.afterWriting) await write();
    if (failure) throw failure.error;
    return write();
  }
}

class GatedValues implements ValueStore {
  constructor(
    private readonly inner: ValueStore,
    private readonly gate: WriteGate,
  ) {}

  get(id: EntityId) {
    return this.inner.get(id);
  }

  read(id: EntityId) {
    return this.inner.read(id);
  }

  write(id: EntityId, value: Uint8Array | undefined, expectedVersion: number, extras?: WriteExtras): Promise<number> {
    return this.gate.write(() => this.inner.write(id, value, expectedVersion, extras));
  }

  put(id: EntityId, value: Uint8Array) {
    return this.inner.put(id, value);
  }

  delete(id: EntityId) {
    return this.inner.delete(id);
  }
}

class GatedJournal implements Journal {
  constructor(
    private readonly inner: Journal,
    private readonly gate: WriteGate,
  ) {}

  append(id: EntityId, expectedSeq: number, events: readonly JournalEvent[], extras?: WriteExtras): Promise<void> {
    return this.gate.write(() => this.inner.append(id, expectedSeq, events, extras));
  }

  saveSnapshot(id: EntityId, snapshot: Snapshot) {
    return this.inner.saveSnapshot(id, snapshot);
  }

  recover(id: EntityId) {
    return this.inner.recover(id);
  }

  readEvents(id: EntityId, fromSeq: number, limit?: number) {
    return this.inner.readEvents(id, fromSeq, limit);
  }

  lastSeq(id: EntityId) {
    return this.inner.lastSeq(id);
  }
}

interface Path {
  readonly store: Store;
  /** Both the value writes and the journal appends go through it. */
  readonly writes: WriteGate;
  readonly router: Router;
}

/** The node's call path on a fresh embedded store with the counter and `modules` deployed. */
async function callPath(t: ExecutionContext, ...modules: string[]): Promise<Path> {
  const store = await openStore({ dataDir: await tempDirFor(t, "alone-store") });
  const writes = new WriteGate();
  const registry = new ModuleRegistry(store);
  const entities = new EntityManager({ journal: new GatedJournal(store.journal, writes), values: new GatedValues(store.values, writes) }, 60_000);
  const router = new Router(registry, entities);
  t.teardown(async () => {
    router.close();
    entities.close();
    await store.close();
  });
  for (const wasm of [counterWasm(), ...modules]) await registry.deploy(await readFile(wasm));
  return { store, writes, router };
}

async function increase(path: Path, counterId: string, value: number, options = {}): Promise<number> {
  const reply = await path.router.call(COUNTER, "Increase", types.change.encode({ counterId, value }).finish(), options);
  return Number((types.current.decode(reply) as unknown as { value: unknown }).value ?? 0);
}

async function get(path: Path, counterId: string): Promise<number> {
  const reply = await path.router.call(COUNTER, "Get", types.id.encode({ counterId }).finish());
  return Number((types.current.decode(reply) as unknown as { value: unknown }).value ?? 0);
}

async function stored(path: Path, counterId: string): Promise<{ value: number; version: number }> {
  const { value, version } = await path.store.values.read({ persistenceId: "counter", key: counterId });
  return { value: value === undefined ? 0 : Number((types.state.decode(value) as unknown as { value: unknown }).value ?? 0), version };
}

/**
 * Lets the batch that answered the last command finish (the reply is sent before it ends),
 * so the entity is idle and its next command finds nothing running.
 */
function batchEnded(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** An entity that is loaded (it ran a command) and idle. */
async function idleLoaded(path: Path, counterId: string, start: number): Promise<void> {
  await increase(path, counterId, start);
  await batchEnded();
}

test("commands that arrive while a lone command's write is in flight run after it, in order, on its value", async (t) => {
  const path = await callPath(t);
  await idleLoaded(path, "c", 10);
  const before = path.writes.writes;
  path.writes.hold();
  const settled: string[] = [];
  const first = increase(path, "c", 1).then((v) => (settled.push("first"), v));
  t.is(path.writes.writes, before + 1, "the lone command ran and its write is in flight");
  const second = increase(path, "c", 2).then((v) => (settled.push("second"), v));
  const third = increase(path, "c", 3).then((v) => (settled.push("third"), v));
  await new Promise((resolve) => setTimeout(resolve, 20));
  t.is(path.writes.writes, before + 1, "nothing else runs on the entity while its write is in flight");
  t.deepEqual(settled, []);
  path.writes.release();
  t.deepEqual(await Promise.all([first, second, third]), [11, 13, 16]);
  t.deepEqual(settled, ["first", "second", "third"]);
  t.is(path.writes.writes, before + 2, "the two that queued share one write");
  t.is((await stored(path, "c")).value, 16);
});

test("a lone command's failed write fails that command only; the entity reloads and serves what queued", async (t) => {
  const path = await callPath(t);
  await idleLoaded(path, "c", 10);
  path.writes.hold();
  path.writes.failNext(new Error("the disk went away"));
  const failed = increase(path, "c", 1);
  const queued = increase(path, "c", 5);
  path.writes.release();
  const error = await t.throwsAsync(failed, { instanceOf: KeystateError });
  t.is(error?.code, "STORAGE_UNAVAILABLE");
  t.regex(error?.message ?? "", /writing a value entity.*the disk went away/);
  t.is(await queued, 15, "the queued command ran on the stored value, not on the unwritten 11");
  t.is((await stored(path, "c")).value, 15);

  // The write landed but its acknowledgement was lost: the caller cannot be told it did, and the entity reads what landed.
  await batchEnded();
  path.writes.failNext(new Error("the reply timed out"), true);
  await t.throwsAsync(increase(path, "c", 1), { instanceOf: KeystateError, message: /the reply timed out/ });
  const writesBefore = path.writes.writes;
  t.is(await increase(path, "c", 1), 17, "the next command ran on the value that landed (16)");
  t.is(path.writes.writes, writesBefore + 1, "it reloaded instead of writing with a version that moved on");
});

test("a lone command whose stored version moved on is retried once on the reloaded value", async (t) => {
  const path = await callPath(t);
  await idleLoaded(path, "c", 10);
  const { version } = await stored(path, "c");
  // Another writer (a node that owned the shard for a moment) replaces the value behind the entity's back.
  await path.store.values.write({ persistenceId: "counter", key: "c" }, types.state.encode({ value: 100 }).finish(), version);
  t.is(await increase(path, "c", 1), 101);
  t.deepEqual(await stored(path, "c"), { value: 101, version: version + 2 });
  t.is(await increase(path, "c", 1), 102, "the entity goes on from the reloaded value");
});

test("a lone command the guest refuses, or one that changes nothing, writes nothing and leaves the entity serving", async (t) => {
  const path = await callPath(t);
  await idleLoaded(path, "c", 10);
  const before = path.writes.writes;
  const refused = await t.throwsAsync(increase(path, "c", -1), { instanceOf: KeystateError });
  t.is(refused?.code, "GUEST_FAILURE");
  t.regex(refused?.message ?? "", /must not be negative/);
  await batchEnded();
  const writesBeforeGet = path.writes.writes;
  t.is(await get(path, "c"), 10);
  t.is(path.writes.writes, writesBeforeGet, "a read-only command writes nothing");
  await batchEnded();
  t.is(await increase(path, "c", 2), 12);
  t.is((await stored(path, "c")).value, 12);
  t.true(path.writes.writes > before);
});

test("a lone command whose caller is already gone is refused before it runs", async (t) => {
  const path = await callPath(t);
  await idleLoaded(path, "c", 10);
  const before = path.writes.writes;
  const scope = startCallContext("req-1", Date.now() - 1);
  t.teardown(() => scope.dispose());
  const error = await t.throwsAsync(increase(path, "c", 1, { context: scope.context }), { instanceOf: KeystateError });
  t.is(error?.code, "DEADLINE");
  t.is(path.writes.writes, before);
  t.is(await increase(path, "c", 1), 11, "the refused command did not run");
});

test("a call the router refuses (malformed request, caller gone, unknown method) is a rejected promise, never a throw", async (t) => {
  const path = await callPath(t);
  await idleLoaded(path, "c", 10);
  const scope = startCallContext("req-2", Date.now() - 1);
  t.teardown(() => scope.dispose());
  const calls: Array<[string, () => Promise<Uint8Array>]> = [
    // Field 1 (the key) as a length-delimited field that runs past the end.
    ["malformed", () => path.router.call(COUNTER, "Increase", Uint8Array.from([0x0a, 0x7f, 0x61]))],
    ["caller gone", () => path.router.call(COUNTER, "Increase", types.change.encode({ counterId: "c", value: 1 }).finish(), { context: scope.context })],
    ["unknown method", () => path.router.call(COUNTER, "NoSuchMethod", types.change.encode({ counterId: "c", value: 1 }).finish())],
  ];
  for (const [what, call] of calls) {
    let pending: Promise<Uint8Array> | undefined;
    t.notThrows(() => (pending = call()), what);
    await t.throwsAsync(pending!, { instanceOf: KeystateError }, what);
  }
  t.is(await get(path, "c"), 10, "none of them ran");
});

test("timers a lone command schedules and cancels are stored with its value", async (t) => {
  const path = await callPath(t, timersWasm());
  const call = (method: string, message: Uint8Array) => path.router.call(ALARMS, method, message);
  await call("Get", types.alarmId.encode({ id: "a1" }).finish());
  await batchEnded();
  await call("Schedule", types.schedule.encode({ id: "a1", name: "wake", delayMs: 3_600_000 }).finish());
  const pending = await path.store.outbox.pending(0, 100);
  t.is(pending.length, 1);
  t.is(pending[0]!.service, ALARMS);
  t.is(pending[0]!.method, "Fire");
  t.true(pending[0]!.dueAt! > Date.now() + 3_500_000);
  await batchEnded();
  await call("Cancel", types.cancel.encode({ id: "a1", name: "wake" }).finish());
  t.deepEqual(await path.store.outbox.pending(0, 100), []);
});

async function addItem(path: Path, userId: string, productId: string, quantity: number): Promise<void> {
  await path.router.call(CART, "AddItem", types.addItem.encode({ userId, productId, name: productId, quantity }).finish());
}

/** The cart as "product x quantity" strings, in the cart's order. */
async function cartOf(path: Path, userId: string): Promise<string[]> {
  const reply = await path.router.call(CART, "GetCart", types.getCart.encode({ userId }).finish());
  const { items = [] } = types.cart.decode(reply) as unknown as { items?: Array<{ productId: string; quantity: number }> };
  return items.map((item) => `${item.productId} x${item.quantity}`);
}

const CART_ID = { persistenceId: "shopping-cart", key: "u" };

test("event-sourced: commands that arrive while a lone command's append is in flight run after it, in order, on its state", async (t) => {
  const path = await callPath(t, cartWasm());
  await addItem(path, "u", "apple", 1);
  await batchEnded();
  const before = path.writes.writes;
  path.writes.hold();
  const settled: string[] = [];
  const first = addItem(path, "u", "pear", 2).then(() => settled.push("pear"));
  t.is(path.writes.writes, before + 1, "the lone command ran and its append is in flight");
  const second = addItem(path, "u", "apple", 3).then(() => settled.push("apple"));
  const third = addItem(path, "u", "fig", 1).then(() => settled.push("fig"));
  await new Promise((resolve) => setTimeout(resolve, 20));
  t.is(path.writes.writes, before + 1, "nothing else runs on the entity while its append is in flight");
  path.writes.release();
  await Promise.all([first, second, third]);
  t.deepEqual(settled, ["pear", "apple", "fig"]);
  t.is(path.writes.writes, before + 2, "the two that queued share one append");
  t.deepEqual(await cartOf(path, "u"), ["apple x4", "pear x2", "fig x1"]);
  t.is(await path.store.journal.lastSeq(CART_ID), 4);
});

test("event-sourced: a lone command's failed append fails that command only; the entity recovers and serves what queued", async (t) => {
  const path = await callPath(t, cartWasm());
  await addItem(path, "u", "apple", 1);
  await batchEnded();
  path.writes.hold();
  path.writes.failNext(new Error("the disk went away"));
  const failed = addItem(path, "u", "pear", 2);
  const queued = addItem(path, "u", "fig", 1);
  path.writes.release();
  await t.throwsAsync(failed, { message: /the disk went away/ });
  await queued;
  t.deepEqual(await cartOf(path, "u"), ["apple x1", "fig x1"], "the queued command ran on the journal's state, without the unwritten pear");

  // The append landed but its acknowledgement was lost: the entity recovers what landed.
  await batchEnded();
  path.writes.failNext(new Error("the reply timed out"), true);
  await t.throwsAsync(addItem(path, "u", "kiwi", 1), { message: /the reply timed out/ });
  const appendsBefore = path.writes.writes;
  await addItem(path, "u", "plum", 1);
  t.is(path.writes.writes, appendsBefore + 1, "it recovered instead of appending at a sequence number that moved on");
  t.deepEqual(await cartOf(path, "u"), ["apple x1", "fig x1", "kiwi x1", "plum x1"]);
});

test("event-sourced: a lone command whose journal moved on is retried once on the recovered state", async (t) => {
  const path = await callPath(t, cartWasm());
  await addItem(path, "u", "apple", 1);
  await batchEnded();
  // Another writer (a node that owned the shard for a moment) appends behind the entity's back.
  const event = types.itemAdded.encode({ item: { productId: "pear", name: "pear", quantity: 5 } }).finish();
  await path.store.journal.append(CART_ID, 1, [{ type: "keystate.examples.shoppingcart.domain.ItemAdded", payload: event }]);
  await addItem(path, "u", "apple", 1);
  t.deepEqual(await cartOf(path, "u"), ["apple x2", "pear x5"]);
  t.is(await path.store.journal.lastSeq(CART_ID), 3);
});

test("event-sourced: a lone command the guest refuses, or one that emits no event, appends nothing", async (t) => {
  const path = await callPath(t, cartWasm());
  await addItem(path, "u", "apple", 1);
  await batchEnded();
  const before = path.writes.writes;
  const refused = await t.throwsAsync(addItem(path, "u", "pear", 0), { instanceOf: KeystateError });
  t.is(refused?.code, "GUEST_FAILURE");
  t.regex(refused?.message ?? "", /must be at least 1/);
  await batchEnded();
  t.deepEqual(await cartOf(path, "u"), ["apple x1"]);
  t.is(path.writes.writes, before);
  t.is(await path.store.journal.lastSeq(CART_ID), 1);
});

test("event-sourced: a lone command that reaches the snapshot interval saves a snapshot", async (t) => {
  const path = await callPath(t, cartWasm());
  // The cart snapshots every 50 events: 49 through the batch path, the 50th alone.
  for (let i = 0; i < 49; i++) await addItem(path, "u", `p${i % 7}`, 1);
  t.is((await path.store.journal.recover(CART_ID)).snapshot, undefined);
  await batchEnded();
  await addItem(path, "u", "p0", 1);
  let snapshot;
  for (let i = 0; i < 50 && snapshot === undefined; i++) {
    // Saved after the reply, off the command's path.
    snapshot = (await path.store.journal.recover(CART_ID)).snapshot;
    if (snapshot === undefined) await new Promise((resolve) => setTimeout(resolve, 10));
  }
  t.is(snapshot?.seq, 50);
  const items = (types.cart.decode(snapshot!.state) as unknown as { items: Array<{ productId: string; quantity: number }> }).items;
  t.is(items.reduce((sum, item) => sum + item.quantity, 0), 50);
});
