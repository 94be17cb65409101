// A command for a value entity that is idle, loaded and not recently busy runs as a batch of
// one without its envelope (mailbox.ts runAlone, value-entity.ts). It must keep every promise
// of the batch path: commands that arrive while its write is in flight queue behind it and see
// its value; a failed write fails that command only and the entity reloads; a stale version is
// retried once on the reloaded value; a refused or read-only command writes nothing; a caller
// already gone is refused before anything runs; timers go into the outbox with the value.
//
// In process, on the embedded store (LMDB in a temp dir), through the node's call path. The
// value store is wrapped so a test can hold a write in flight or fail one. An entity leaves
// the mailboxes' "recently busy" set after the node has run RECENT_LIMIT (4096) other batches,
// so each test first runs that many reads on other counters (pushOutOfRecent).
import test, { type ExecutionContext } from "ava";
import { readFile } from "node:fs/promises";
import protobuf from "protobufjs";
import { startCallContext } from "../../host/entities/call-context.js";
import { EntityManager } from "../../host/entities/entity-manager.js";
import { Router } from "../../host/entities/router.js";
import { KeystateError } from "../../host/errors.js";
import { openStore } from "../../host/journal/open-store.js";
import type { EntityId, Store, ValueStore, WriteExtras } from "../../host/journal/types.js";
import { ModuleRegistry } from "../../host/runtime/module-registry.js";
import { buildBeforeAll } from "../helpers/built-module.js";
import { useBuiltFixture } from "../helpers/fixture-build.js";
import { REPO_ROOT } from "../helpers/node-process.js";
import { tempDirFor } from "../helpers/temp-dir.js";
import { join } from "node:path";

const COUNTER = "keystate.examples.counter.Counter";
const ALARMS = "keystate.test.timers.Alarms";
const counterWasm = buildBeforeAll(test, join(REPO_ROOT, "modules", "counter"));
const timersWasm = useBuiltFixture(test, "timers");

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
  root.add(change).add(id).add(current).add(state).add(alarmId).add(schedule).add(cancel);
  return { change, id, current, state, alarmId, schedule, cancel };
})();

/** The store's values, with writes that a test can hold in flight or fail. */
class GatedValues implements ValueStore {
  writes = 0;
  #held: Array<() => void> | undefined;
  #failNext: { error: Error; afterWriting: boolean } | undefined;

  constructor(private readonly inner: ValueStore) {}

  /** Writes from now on wait until release(). */
  hold(): void {
    this.#held ??= [];
  }

  release(): void {
    const held = this.#held ?? [];
    this.#held = undefined;
    for (const go of held) go();
  }

  /** The next write fails with `error`: writing nothing, or after writing (an acknowledgement lost on the way). */
  failNext(error: Error, afterWriting = false): void {
    this.#failNext = { error, afterWriting };
  }

  get(id: EntityId) {
    return this.inner.get(id);
  }

  read(id: EntityId) {
    return this.inner.read(id);
  }

  async write(id: EntityId, value: Uint8Array | undefined, expectedVersion: number, extras?: WriteExtras): Promise<number> {
    this.writes++;
    if (this.#held) await new Promise<void>((go) => this.#held!.push(go));
    const failure = this.#failNext;
    this.#failNext = undefined;
    if (failure?.afterWriting) await this.inner.write(id, value, expectedVersion, extras);
    if (failure) throw failure.error;
    return this.inner.write(id, value, expectedVersion, extras);
  }

  put(id: EntityId, value: Uint8Array) {
    return this.inner.put(id, value);
  }

  delete(id: EntityId) {
    return this.inner.delete(id);
  }
}

interface Path {
  readonly store: Store;
  readonly values: GatedValues;
  readonly router: Router;
}

/** The node's call path on a fresh embedded store with `modules` deployed (the counter always: pushOutOfRecent uses it). */
async function callPath(t: ExecutionContext, ...modules: string[]): Promise<Path> {
  const store = await openStore({ dataDir: await tempDirFor(t, "alone-store") });
  const values = new GatedValues(store.values);
  const registry = new ModuleRegistry(store);
  const entities = new EntityManager({ journal: store.journal, values }, 60_000);
  const router = new Router(registry, entities);
  t.teardown(async () => {
    router.close();
    entities.close();
    await store.close();
  });
  for (const wasm of [counterWasm(), ...modules]) await registry.deploy(await readFile(wasm));
  return { store, values, router };
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

/** Runs more than RECENT_LIMIT batches on other counters, so every entity used before is no longer "recently busy". */
async function pushOutOfRecent(path: Path): Promise<void> {
  const keys = Array.from({ length: 4200 }, (_, i) => `other-${i}`);
  for (let i = 0; i < keys.length; i += 500) await Promise.all(keys.slice(i, i + 500).map((key) => get(path, key)));
}

/** An entity that is loaded (it ran a command) and then left alone while the node ran other work. */
async function idleLoaded(path: Path, counterId: string, start: number): Promise<void> {
  await increase(path, counterId, start);
  await pushOutOfRecent(path);
}

test("commands that arrive while a lone command's write is in flight run after it, in order, on its value", async (t) => {
  const path = await callPath(t);
  await idleLoaded(path, "c", 10);
  const before = path.values.writes;
  path.values.hold();
  const settled: string[] = [];
  const first = increase(path, "c", 1).then((v) => (settled.push("first"), v));
  t.is(path.values.writes, before + 1, "the lone command ran and its write is in flight");
  const second = increase(path, "c", 2).then((v) => (settled.push("second"), v));
  const third = increase(path, "c", 3).then((v) => (settled.push("third"), v));
  await new Promise((resolve) => setTimeout(resolve, 20));
  t.is(path.values.writes, before + 1, "nothing else runs on the entity while its write is in flight");
  t.deepEqual(settled, []);
  path.values.release();
  t.deepEqual(await Promise.all([first, second, third]), [11, 13, 16]);
  t.deepEqual(settled, ["first", "second", "third"]);
  t.is(path.values.writes, before + 2, "the two that queued share one write");
  t.is((await stored(path, "c")).value, 16);
});

test("a lone command's failed write fails that command only; the entity reloads and serves what queued", async (t) => {
  const path = await callPath(t);
  await idleLoaded(path, "c", 10);
  path.values.hold();
  path.values.failNext(new Error("the disk went away"));
  const failed = increase(path, "c", 1);
  const queued = increase(path, "c", 5);
  path.values.release();
  const error = await t.throwsAsync(failed, { instanceOf: KeystateError });
  t.is(error?.code, "STORAGE_UNAVAILABLE");
  t.regex(error?.message ?? "", /writing a value entity.*the disk went away/);
  t.is(await queued, 15, "the queued command ran on the stored value, not on the unwritten 11");
  t.is((await stored(path, "c")).value, 15);

  // The write landed but its acknowledgement was lost: the caller cannot be told it did, and the entity reads what landed.
  await pushOutOfRecent(path);
  path.values.failNext(new Error("the reply timed out"), true);
  await t.throwsAsync(increase(path, "c", 1), { instanceOf: KeystateError, message: /the reply timed out/ });
  const writesBefore = path.values.writes;
  t.is(await increase(path, "c", 1), 17, "the next command ran on the value that landed (16)");
  t.is(path.values.writes, writesBefore + 1, "it reloaded instead of writing with a version that moved on");
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
  const before = path.values.writes;
  const refused = await t.throwsAsync(increase(path, "c", -1), { instanceOf: KeystateError });
  t.is(refused?.code, "GUEST_FAILURE");
  t.regex(refused?.message ?? "", /must not be negative/);
  await pushOutOfRecent(path);
  const writesBeforeGet = path.values.writes;
  t.is(await get(path, "c"), 10);
  t.is(path.values.writes, writesBeforeGet, "a read-only command writes nothing");
  await pushOutOfRecent(path);
  t.is(await increase(path, "c", 2), 12);
  t.is((await stored(path, "c")).value, 12);
  t.true(path.values.writes > before);
});

test("a lone command whose caller is already gone is refused before it runs", async (t) => {
  const path = await callPath(t);
  await idleLoaded(path, "c", 10);
  const before = path.values.writes;
  const scope = startCallContext("req-1", Date.now() - 1);
  t.teardown(() => scope.dispose());
  const error = await t.throwsAsync(increase(path, "c", 1, { context: scope.context }), { instanceOf: KeystateError });
  t.is(error?.code, "DEADLINE");
  t.is(path.values.writes, before);
  t.is(await increase(path, "c", 1), 11, "the refused command did not run");
});

test("timers a lone command schedules and cancels are stored with its value", async (t) => {
  const path = await callPath(t, timersWasm());
  const call = (method: string, message: Uint8Array) => path.router.call(ALARMS, method, message);
  await call("Get", types.alarmId.encode({ id: "a1" }).finish());
  await pushOutOfRecent(path);
  await call("Schedule", types.schedule.encode({ id: "a1", name: "wake", delayMs: 3_600_000 }).finish());
  const pending = await path.store.outbox.pending(0, 100);
  t.is(pending.length, 1);
  t.is(pending[0]!.service, ALARMS);
  t.is(pending[0]!.method, "Fire");
  t.true(pending[0]!.dueAt! > Date.now() + 3_500_000);
  await pushOutOfRecent(path);
  await call("Cancel", types.cancel.encode({ id: "a1", name: "wake" }).finish());
  t.deepEqual(await path.store.outbox.pending(0, 100), []);
});
