import test from "ava";
import binaryen from "binaryen";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { GuestInstance } from "../../host/abi/guest-instance.js";
import { isKeystateError } from "../../host/errors.js";
import { EmbeddedStore } from "../../host/journal/embedded-store.js";
import { InstancePool } from "../../host/runtime/instance-pool.js";
import { instrumentModule } from "../../host/runtime/instrument.js";
import { compileModule, type LoadedModule } from "../../host/runtime/loaded-module.js";
import { GuestMemoryPool, guestMemories } from "../../host/runtime/memory-pool.js";
import { ModuleRegistry } from "../../host/runtime/module-registry.js";
import { REPO_ROOT } from "../helpers/node-process.js";
import { tempDirFor } from "../helpers/temp-dir.js";

const PAGE = 65536;
const SERVICE = "keystate.examples.counter.Counter";

function counterModule(): Promise<LoadedModule> {
  return compileModule(readFileSync(join(REPO_ROOT, "modules", "counter", "build", "counter.wasm")));
}

/** An Increase command on `key` (the counter's ChangeValue: counter_id 1, value 2). */
function increase(key: string, by: number) {
  const keyBytes = Buffer.from(key);
  const payload = Uint8Array.from([0x0a, keyBytes.length, ...keyBytes, 0x10, by]);
  return { service: SERVICE, method: "Increase", entityKey: key, sequence: 0, state: undefined, payload };
}

test("a released memory comes back zeroed, and is handed out again only for the same maximum", (t) => {
  const pool = new GuestMemoryPool({ maxMemories: 4, maxPagesKept: 4 });
  const memory = pool.acquire(1, 16);
  new Uint8Array(memory.buffer).fill(0xab);
  pool.release(memory, 16);
  t.is(pool.stats.idle, 1);
  // Another maximum gets a memory of its own: an import needs a maximum no larger than declared.
  const other = pool.acquire(1, 8);
  t.not(other, memory);
  const again = pool.acquire(1, 16);
  t.is(again, memory);
  t.true(new Uint8Array(again.buffer).every((b) => b === 0));
  t.deepEqual(pool.stats, { reused: 1, created: 2, idle: 0 });
});

test("a reused memory smaller than the module's initial size is grown to it; a large one is dropped, not kept", (t) => {
  const pool = new GuestMemoryPool({ maxMemories: 4, maxPagesKept: 4 });
  pool.release(new WebAssembly.Memory({ initial: 1, maximum: 16 }), 16);
  t.is(pool.acquire(3, 16).buffer.byteLength, 3 * PAGE);
  pool.release(new WebAssembly.Memory({ initial: 5, maximum: 16 }), 16);
  t.is(pool.stats.idle, 0);
});

test("the pool keeps at most maxMemories", (t) => {
  const pool = new GuestMemoryPool({ maxMemories: 2, maxPagesKept: 4 });
  for (let i = 0; i < 5; i++) pool.release(new WebAssembly.Memory({ initial: 1, maximum: 16 }), 16);
  t.is(pool.stats.idle, 2);
});

test("a disposed instance's memory serves the next instance, which starts exactly as one on a new memory", async (t) => {
  const loaded = await counterModule();
  t.is(loaded.limits.importedMemoryPages, 1, "the artifact imports its memory");
  const first = new GuestInstance(loaded.compiled, () => undefined, loaded.limits);
  for (let i = 0; i < 50; i++) t.is(first.command(increase(`key-${i}`, 7)).failure, undefined);
  const used = first.exports.memory;
  first.dispose();
  // A disposed instance never runs again: its memory may belong to another one now.
  const err = t.throws(() => first.command(increase("key-0", 1)));
  t.true(isKeystateError(err, "GUEST_TRAP"));

  const reused = new GuestInstance(loaded.compiled, () => undefined, loaded.limits);
  t.is(reused.exports.memory, used);
  // Held without disposing, so the pool has nothing to give: this one gets a new memory.
  const fresh = new GuestInstance(loaded.compiled, () => undefined, loaded.limits);
  t.not(fresh.exports.memory, used);
  const reusedBytes = new Uint8Array(reused.exports.memory.buffer);
  const freshBytes = new Uint8Array(fresh.exports.memory.buffer);
  t.true(reusedBytes.length >= freshBytes.length);
  t.true(Buffer.from(reusedBytes.subarray(0, freshBytes.length)).equals(freshBytes), "same bytes after the start function");
  t.true(reusedBytes.subarray(freshBytes.length).every((b) => b === 0));
  // And both answer the same command the same way.
  t.deepEqual(reused.command(increase("k", 5)), fresh.command(increase("k", 5)));
  reused.dispose();
  fresh.dispose();
});

/** An instance pool of `loaded` that keeps a list of every instance it made. */
function recordingPool(loaded: LoadedModule, maxIdle?: number): { pool: InstancePool; made: GuestInstance[] } {
  const made: GuestInstance[] = [];
  const pool = new InstancePool(() => {
    const instance = new GuestInstance(loaded.compiled, () => undefined, loaded.limits);
    made.push(instance);
    return instance;
  }, maxIdle);
  return { pool, made };
}

test("the instance pool disposes an instance that threw and one it has no room to keep", async (t) => {
  const loaded = await counterModule();
  const { pool, made } = recordingPool(loaded, 1);
  // Whatever a call throws (a trap, a host error), its instance is not used again.
  t.throws(() => pool.run(() => {
    throw new Error("the call failed");
  }));
  t.is(made.length, 1);
  t.throws(() => made[0]!.command(increase("k", 1)), { message: /disposed/ });
  // The next instance took the thrown-away one's memory.
  pool.run((instance) => instance.command(increase("k", 1)));
  t.is(made.length, 2);
  t.is(made[1]!.exports.memory, made[0]!.exports.memory);
  // Two held at once, one idle slot: the second released is disposed.
  const a = pool.acquire();
  const b = pool.acquire();
  pool.release(a);
  pool.release(b);
  t.throws(() => (b as GuestInstance).command(increase("k", 1)), { message: /disposed/ });
  t.is((a as GuestInstance).command(increase("k", 1)).failure, undefined);
});

test("a retired instance pool frees its idle instances at once and keeps none released later", async (t) => {
  const loaded = await counterModule();
  const { pool, made } = recordingPool(loaded);
  const inFlight = pool.acquire();
  pool.run((instance) => instance.command(increase("k", 1)));
  t.is(made.length, 2);
  pool.retire();
  // The idle one is disposed: its memory is what the next instance of any module gets.
  t.throws(() => made[1]!.command(increase("k", 1)), { message: /disposed/ });
  const next = new GuestInstance(loaded.compiled, () => undefined, loaded.limits);
  t.is(next.exports.memory, made[1]!.exports.memory);
  next.dispose();
  // A call still in flight on the retired version finishes, and its instance is then freed.
  t.is((inFlight as GuestInstance).command(increase("k", 2)).failure, undefined);
  pool.release(inFlight);
  t.throws(() => (inFlight as GuestInstance).command(increase("k", 1)), { message: /disposed/ });
  // A later call on it still runs, on an instance of its own that is not kept.
  t.is(pool.run((instance) => instance.command(increase("k", 3))).failure, undefined);
  t.is(made.length, 3);
  t.throws(() => made[2]!.command(increase("k", 1)), { message: /disposed/ });
});

// Serial: it reads the process-wide memory pool's counts, which no other test may move meanwhile.
test.serial("a version replaced or undeployed gives its instance's memory back, and the next version's first instance takes it", async (t) => {
  const store = await EmbeddedStore.open(await tempDirFor(t, "retired-pools"));
  t.teardown(() => store.close());
  const registry = new ModuleRegistry(store);
  const bytes = readFileSync(join(REPO_ROOT, "modules", "counter", "build", "counter.wasm"));
  const { name } = await registry.deploy(bytes);
  const before = guestMemories.stats;
  await registry.deploy(bytes);
  const replaced = guestMemories.stats;
  // Version 2's first instance took a memory (a kept one if there was one), version 1's came back.
  t.is(replaced.idle - before.idle + (replaced.reused - before.reused), 1);
  await registry.undeploy(name);
  t.is(guestMemories.stats.idle, replaced.idle + 1);
  await registry.deploy(bytes);
  t.is(guestMemories.stats.reused, replaced.reused + 1);
  t.is(guestMemories.stats.created, replaced.created);
});

test("with the host's memory, a start function's abort message can be read and is reported", (t) => {
  // "boom" as an AssemblyScript string: its byte length (8) in the 4 bytes before it, UTF-16LE.
  const source = new Uint8Array(binaryen.parseText(`(module
    (import "env" "abort" (func $abort (param i32 i32 i32 i32)))
    (memory (export "memory") 1)
    (data (i32.const 16) "\\08\\00\\00\\00b\\00o\\00o\\00m\\00")
    (func $start (call $abort (i32.const 20) (i32.const 0) (i32.const 7) (i32.const 3)))
    (start $start))`).emitBinary());
  const { bytes, report } = instrumentModule(source, { maxMemoryPages: 4, meterFuel: true, importMemory: true });
  const limits = { fuelPerCall: 1000, maxMemoryPages: 4, importedMemoryPages: report.memories[0]!.minPages };
  const err = t.throws(() => new GuestInstance(new WebAssembly.Module(bytes), () => undefined, limits));
  t.is(err!.message, "abort() in the module's start function: boom (?:7:3)");
});
