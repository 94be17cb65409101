// Passivation, in process on the embedded store (LMDB in a temp dir), through the call
// path a node uses (ModuleRegistry -> Router -> EntityManager -> guest):
// - an entity idle past its manifest timeout leaves memory and its next command reloads
//   it from the store (test/fixtures/effects-ledger sets 300 ms);
// - over the memory budget, the least recently used idle entities leave first;
// - 100,000 distinct counters touched once each stay under an RSS bound
//   (bench/density-entities.ts does 1,000,000).
// Whether an entity is resident is observed from outside: a value written to the store
// behind its back is seen only by an entity that (re)loads it.
import test, { type ExecutionContext } from "ava";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import protobuf from "protobufjs";
import { buildModuleTo } from "../helpers/build-cache.js";
import { EntityManager, type EntityManagerOptions } from "../../host/entities/entity-manager.js";
import { ENTITY_OVERHEAD_BYTES } from "../../host/entities/memory-budget.js";
import { Router } from "../../host/entities/router.js";
import { openStore } from "../../host/journal/open-store.js";
import type { Store } from "../../host/journal/types.js";
import { ModuleRegistry } from "../../host/runtime/module-registry.js";
import { REPO_ROOT } from "../helpers/node-process.js";
import { makeTempDir, removeDir, tempDirFor } from "../helpers/temp-dir.js";

const LEDGER = "keystate.test.ledger.Ledger";
const COUNTER = "keystate.examples.counter.Counter";
let buildDir = "";
const wasm = { ledger: "", counter: "" };

test.before(async () => {
  buildDir = await makeTempDir("passivation-build");
  wasm.ledger = join(buildDir, "ledger.wasm");
  wasm.counter = join(buildDir, "counter.wasm");
  await Promise.all([
    buildModuleTo(join(REPO_ROOT, "test", "fixtures", "effects-ledger"), wasm.ledger),
    buildModuleTo(join(REPO_ROOT, "modules", "counter"), wasm.counter),
  ]);
});

test.after.always(async () => {
  if (buildDir) await removeDir(buildDir);
});

interface CallPath {
  store: Store;
  entities: EntityManager;
  router: Router;
}

async function callPath(t: ExecutionContext, module: string, sweepMs: number, options: EntityManagerOptions = {}): Promise<CallPath> {
  const store = await openStore({ dataDir: await tempDirFor(t, "passivation-store") });
  const registry = new ModuleRegistry(store);
  const entities = new EntityManager(store, sweepMs, options);
  const router = new Router(registry, entities);
  t.teardown(async () => {
    router.close();
    entities.close();
    await store.close();
  });
  await registry.deploy(await readFile(module));
  return { store, entities, router };
}

const types = (() => {
  const root = new protobuf.Root();
  const entry = new protobuf.Type("Entry").add(new protobuf.Field("account", 1, "string")).add(new protobuf.Field("amount", 2, "int64"));
  const balance = new protobuf.Type("Balance").add(new protobuf.Field("account", 1, "string")).add(new protobuf.Field("balance", 2, "int64")).add(new protobuf.Field("entries", 3, "int64"));
  const change = new protobuf.Type("ChangeValue").add(new protobuf.Field("counterId", 1, "string")).add(new protobuf.Field("value", 2, "int64"));
  const current = new protobuf.Type("CurrentValue").add(new protobuf.Field("value", 1, "int64"));
  root.add(entry).add(balance).add(change).add(current);
  return { entry, balance, change, current };
})();

const num = (v: unknown) => Number(v ?? 0);

async function record(path: CallPath, account: string, amount: number): Promise<number> {
  const reply = await path.router.call(LEDGER, "Record", types.entry.encode({ account, amount }).finish());
  return num((types.balance.decode(reply) as unknown as { balance: unknown }).balance);
}

async function balanceOf(path: CallPath, account: string): Promise<number> {
  const reply = await path.router.call(LEDGER, "Get", types.entry.encode({ account }).finish());
  return num((types.balance.decode(reply) as unknown as { balance: unknown }).balance);
}

/** Writes a balance straight into the store, behind the entity's back. */
async function storeBalance(path: CallPath, account: string, balance: number): Promise<void> {
  await path.store.values.put({ persistenceId: "ledger", key: account }, types.balance.encode({ account, balance, entries: 1 }).finish());
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test("an entity idle past its manifest timeout is passivated and its next command reloads it from the store", async (t) => {
  const path = await callPath(t, wasm.ledger, 50);
  t.is(await record(path, "alice", 5), 5);
  t.is(await record(path, "alice", 2), 7);

  // Resident: a value written to the store behind its back is not seen.
  await storeBalance(path, "alice", 1000);
  t.is(await balanceOf(path, "alice"), 7);
  await sleep(150); // under the 300 ms timeout (and commands reset the clock)
  t.is(path.entities.activeCount, 1);
  // A write, though, never overwrites what it did not read: the stored version moved on, so
  // the entity reloads the value written behind its back and applies the command to it.
  t.is(await record(path, "alice", 1), 1001, "the write applied to the value it did not read, not over it");

  // Idle past 300 ms: passivated by the sweep, so the next command reloads from the store.
  const deadline = Date.now() + 2_000;
  while (path.entities.activeCount > 0 && Date.now() < deadline) await sleep(20);
  t.is(path.entities.activeCount, 0);
  t.is(path.entities.residentBytes, 0, "a passivated entity is no longer charged");
  t.is(await balanceOf(path, "alice"), 1001, "it comes back with the value it stored");
  await storeBalance(path, "alice", 1000);
  await sleep(500);
  t.is(await balanceOf(path, "alice"), 1000, "and that value came from the store");
});

test("over the memory budget, the least recently used idle entities leave first", async (t) => {
  // One ledger entity's charge: the fixed overhead, its id and its value bytes.
  const probe = await callPath(t, wasm.ledger, 2_000_000_000);
  await record(probe, "acc-00", 1);
  const each = probe.entities.residentBytes;
  t.true(each > ENTITY_OVERHEAD_BYTES && each < ENTITY_OVERHEAD_BYTES + 100, `charged ${each} B`);

  // Room for ten such entities.
  const path = await callPath(t, wasm.ledger, 2_000_000_000, { memoryBudgetBytes: 10 * each + each / 2 });
  // Last use is kept to the millisecond: a pause between uses makes their order plain.
  for (let i = 0; i < 10; i++) {
    t.is(await record(path, `acc-0${i}`, 1), 1);
    await sleep(2);
  }
  t.is(path.entities.activeCount, 10);
  await balanceOf(path, "acc-00"); // acc-00 is now the most recently used; acc-01 the least.
  await sleep(2);
  t.is(await record(path, "acc-10", 1), 1);
  t.is(path.entities.activeCount, 10, "the eleventh pushed one out");
  t.true(path.entities.residentBytes <= 10 * each + each / 2);

  // acc-01 left (it reloads what the store holds); acc-00 stayed (it does not).
  await storeBalance(path, "acc-00", 500);
  await storeBalance(path, "acc-01", 500);
  t.is(await balanceOf(path, "acc-00"), 1, "the recently used entity stayed resident");
  t.is(await balanceOf(path, "acc-01"), 500, "the least recently used entity was passivated and reloaded");

  // Many more: the resident set stays within the budget, and every value is right.
  for (let i = 0; i < 200; i++) await record(path, `more-${i}`, i);
  t.true(path.entities.activeCount <= 10);
  t.true(path.entities.residentBytes <= 10 * each + each / 2);
  for (const i of [0, 57, 199]) t.is(await balanceOf(path, `more-${i}`), i);
});

test("100,000 distinct counters touched once each stay under 400 MiB of RSS", async (t) => {
  const N = 100_000;
  // 4 MiB holds ~40,000 counters (~104 B charged each): most of the 100,000 are evicted and must reload.
  const path = await callPath(t, wasm.counter, 2_000_000_000, { memoryBudgetBytes: 4 * 1024 * 1024 });
  const increase = (id: number) => path.router.call(COUNTER, "Increase", types.change.encode({ counterId: `c${id}`, value: id % 7 }).finish());
  const get = async (id: number) => num((types.current.decode(await path.router.call(COUNTER, "Get", types.change.encode({ counterId: `c${id}` }).finish())) as unknown as { value: unknown }).value);

  let next = 0;
  let maxRss = process.memoryUsage().rss;
  const worker = async () => {
    while (next < N) {
      const id = next++;
      await increase(id);
      if (id % 10_000 === 0) maxRss = Math.max(maxRss, process.memoryUsage().rss);
    }
  };
  const started = performance.now();
  await Promise.all(Array.from({ length: 128 }, worker));
  maxRss = Math.max(maxRss, process.memoryUsage().rss);
  t.log(`${N} counters in ${((performance.now() - started) / 1000).toFixed(1)} s; resident ${path.entities.activeCount}; max RSS ${(maxRss / 1024 / 1024).toFixed(0)} MiB`);

  t.true(path.entities.residentBytes <= 4 * 1024 * 1024);
  t.true(path.entities.activeCount < N / 2, "most counters were evicted");
  t.true(maxRss < 400 * 1024 * 1024, `max RSS ${maxRss} B`);
  // Evicted long ago, and recent: each reads back what it was given.
  for (const id of [0, 1, 6, 50_000, N - 1]) t.is(await get(id), id % 7);
});
