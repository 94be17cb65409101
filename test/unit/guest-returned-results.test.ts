// ABI version 3: a module built with the SDK imports no host function. A call's result is
// where the export's return value says (a (pointer, length) record), the host decodes it in
// place, in guest memory, and an abort leaves its message in a record the host reads through
// `ks_abort` after the trap. What must hold: nothing decoded from one call changes when the
// guest's next call reuses that memory, a bad record fails the call and nothing else, and an
// abort's message still reaches the error.
import test from "ava";
import binaryen from "binaryen";
import protobuf from "protobufjs";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { GuestInstance } from "../../host/abi/guest-instance.js";
import { compileModule } from "../../host/runtime/loaded-module.js";
import { isKeystateError } from "../../host/errors.js";
import { exampleMessage } from "../helpers/example-messages.js";
import { useBuiltFixture } from "../helpers/fixture-build.js";
import { guestFromFile } from "../helpers/guest-instance.js";
import { REPO_ROOT } from "../helpers/node-process.js";

const ALARMS = "keystate.test.timers.Alarms";
const timersWasm = useBuiltFixture(test, "timers");
const COUNTER_WASM = join(REPO_ROOT, "modules", "counter", "build", "counter.wasm");

const root = protobuf.Root.fromJSON({
  nested: {
    ScheduleRequest: { fields: { id: { type: "string", id: 1 }, delayMs: { type: "uint64", id: 2 }, name: { type: "string", id: 3 } } },
    Alarm: { fields: { id: { type: "string", id: 1 }, scheduled: { type: "uint32", id: 2 } } },
  },
});
/** The timers fixture's messages. */
const ScheduleRequest = root.lookupType("ScheduleRequest");
const ChangeValue = exampleMessage("keystate.examples.counter.ChangeValue");
const CurrentValue = exampleMessage("keystate.examples.counter.CurrentValue");

const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString("hex");

test("a module built with the SDK imports no host function, only the memory the host gives it", async (t) => {
  for (const path of [COUNTER_WASM, timersWasm()]) {
    const upload = new WebAssembly.Module(readFileSync(path));
    t.deepEqual(WebAssembly.Module.imports(upload), [], path);
    t.true(WebAssembly.Module.exports(upload).some((e) => e.name === "ks_abort" && e.kind === "function"), path);
    const loaded = await compileModule(readFileSync(path));
    t.deepEqual(WebAssembly.Module.imports(loaded.compiled).map((i) => `${i.module}.${i.name}:${i.kind}`), ["keystate.memory:memory"], path);
    t.is(loaded.manifest.abiVersion, 3, path);
  }
});

test("a result decoded in place keeps its reply and state when the next call reuses the guest's memory", async (t) => {
  const guest = await guestFromFile(COUNTER_WASM);
  const increase = (key: string, by: number, state?: Uint8Array) =>
    guest.command({ service: "keystate.examples.counter.Counter", method: "Increase", entityKey: key, sequence: 0, state, payload: ChangeValue.encode({ counterId: key, value: by }).finish() });
  const first = increase("a", 5);
  t.falsy(first.failure);
  const reply = hex(first.reply);
  const state = hex(first.state);
  // The same result layout with other values, written where the first one was.
  const second = increase("b", 1_000_000_007);
  t.falsy(second.failure);
  t.not(hex(second.state), state, "the second call's result differs from the first's");
  t.is(hex(first.reply), reply, "the first reply is unchanged");
  t.is(hex(first.state), state, "the first state is unchanged");
  // And it is still the first call's answer, decoded.
  const third = increase("a", 2, first.state);
  t.is(Number(CurrentValue.toObject(CurrentValue.decode(third.reply), { longs: Number }).value ?? 0), 7);
});

test("timers decoded by reflection out of a result read in place keep their calls after the next call", async (t) => {
  const guest = await guestFromFile(timersWasm());
  const schedule = (id: string, name: string) =>
    guest.command({ service: ALARMS, method: "Schedule", entityKey: id, sequence: 0, state: undefined, payload: ScheduleRequest.encode({ id, delayMs: 1000, name }).finish() });
  const first = schedule("alarm-1", "first-name");
  t.falsy(first.failure);
  t.is(first.timers.length, 1);
  const timer = { name: first.timers[0]!.name, payload: hex(first.timers[0]!.call.payload), method: first.timers[0]!.call.method };
  const second = schedule("alarm-2", "other-name");
  t.falsy(second.failure);
  t.not(hex(second.timers[0]!.call.payload), timer.payload, "the second call's timer carries other bytes");
  t.deepEqual({ name: first.timers[0]!.name, payload: hex(first.timers[0]!.call.payload), method: first.timers[0]!.call.method }, timer);
});

/**
 * A hand-written module of the version-3 convention: the first input byte picks what
 * ks_command does. 1: a valid result (reply 08 05) through its record; 2: a record whose
 * bytes lie outside memory; 3: a record outside memory; 4: no result (returns 0); 5: an
 * abort with its record ("boom" at f.ts:7:3); 6: a bare trap.
 */
function handWrittenGuest(): GuestInstance {
  const module = binaryen.parseText(`(module
    (memory (export "memory") 1)
    (global $aborted (mut i32) (i32.const 0))
    (data (i32.const 64) "\\0a\\02\\08\\05")
    (data (i32.const 196) "\\08\\00\\00\\00b\\00o\\00o\\00m\\00")
    (data (i32.const 296) "\\08\\00\\00\\00f\\00.\\00t\\00s\\00")
    (func (export "ks_input") (param i32) (result i32) (i32.const 1024))
    (func (export "ks_command") (param $len i32) (result i32)
      (local $mode i32)
      (local.set $mode (i32.load8_u (i32.const 1024)))
      (if (i32.eq (local.get $mode) (i32.const 1)) (then
        (i32.store (i32.const 16) (i32.const 64)) (i32.store (i32.const 20) (i32.const 4)) (return (i32.const 16))))
      (if (i32.eq (local.get $mode) (i32.const 2)) (then
        (i32.store (i32.const 16) (i32.const 65530)) (i32.store (i32.const 20) (i32.const 100)) (return (i32.const 16))))
      (if (i32.eq (local.get $mode) (i32.const 3)) (then (return (i32.const 65534))))
      (if (i32.eq (local.get $mode) (i32.const 4)) (then (return (i32.const 0))))
      (if (i32.eq (local.get $mode) (i32.const 5)) (then
        (i32.store (i32.const 128) (i32.const 200)) (i32.store (i32.const 132) (i32.const 300))
        (i32.store (i32.const 136) (i32.const 7)) (i32.store (i32.const 140) (i32.const 3))
        (global.set $aborted (i32.const 1))
        (unreachable)))
      (unreachable))
    (func (export "ks_replay") (param i32) (result i32) (i32.const 0))
    (func (export "ks_abort") (result i32) (select (i32.const 128) (i32.const 0) (global.get $aborted))))`);
  const bytes = module.emitBinary();
  module.dispose();
  return new GuestInstance(new WebAssembly.Module(bytes as Uint8Array<ArrayBuffer>), () => undefined, { fuelPerCall: 1_000_000, maxMemoryPages: 16 });
}

function failureOf(t: { fail(message: string): void }, run: () => unknown): Error & { code?: string; cause?: unknown } {
  try {
    run();
  } catch (err) {
    return err as Error & { code?: string };
  }
  t.fail("the call did not fail");
  throw new Error("unreachable");
}

test("a returned record is read for the result, and a bad one fails the call as a guest trap", (t) => {
  const guest = handWrittenGuest();
  t.is(hex(guest.commandEncoded(Uint8Array.of(1)).reply), "0805");
  for (const [mode, message] of [[2, /out-of-bounds buffer \(65530\+100\)/], [3, /out-of-bounds buffer \(65534\+8\)/]] as const) {
    const err = failureOf(t, () => guest.commandEncoded(Uint8Array.of(mode)));
    t.true(isKeystateError(err, "GUEST_TRAP"), `mode ${mode}: ${err.message}`);
    t.regex((err.cause as Error).message, message);
  }
  const none = failureOf(t, () => guest.commandEncoded(Uint8Array.of(4)));
  t.true(isKeystateError(none, "GUEST_TRAP"));
  t.is(none.message, "the guest returned without producing a result");
  // A failed call leaves the next one unharmed (the pool would discard the instance; this one still answers).
  t.is(hex(guest.commandEncoded(Uint8Array.of(1)).reply), "0805");
});

test("an abort recorded by the module reaches the error with its message and place; a bare trap stays a trap", (t) => {
  const aborted = failureOf(t, () => handWrittenGuest().commandEncoded(Uint8Array.of(5)));
  t.true(isKeystateError(aborted, "GUEST_TRAP"));
  t.is((aborted.cause as Error).message, "boom (f.ts:7:3)");
  const trapped = failureOf(t, () => handWrittenGuest().commandEncoded(Uint8Array.of(6)));
  t.true(isKeystateError(trapped, "GUEST_TRAP"));
  t.true(trapped.cause instanceof WebAssembly.RuntimeError, String(trapped.cause));
  t.regex((trapped.cause as Error).message, /unreachable/);
});

test("a module of ABI versions 1 and 2, which passes its result to keystate.output and aborts through env.abort, is still served", (t) => {
  const module = binaryen.parseText(`(module
    (import "keystate" "output" (func $output (param i32 i32)))
    (import "env" "abort" (func $abort (param i32 i32 i32 i32)))
    (memory (export "memory") 1)
    (data (i32.const 64) "\\0a\\02\\08\\06")
    (data (i32.const 196) "\\08\\00\\00\\00b\\00o\\00o\\00m\\00")
    (func (export "ks_input") (param i32) (result i32) (i32.const 1024))
    (func (export "ks_command") (param $len i32)
      (if (i32.eq (i32.load8_u (i32.const 1024)) (i32.const 1)) (then (call $output (i32.const 64) (i32.const 4)) (return)))
      (if (i32.eq (i32.load8_u (i32.const 1024)) (i32.const 2)) (then (return)))
      (call $abort (i32.const 200) (i32.const 0) (i32.const 9) (i32.const 1)))
    (func (export "ks_replay") (param i32)))`);
  const bytes = module.emitBinary();
  module.dispose();
  const guest = new GuestInstance(new WebAssembly.Module(bytes as Uint8Array<ArrayBuffer>), () => undefined, { fuelPerCall: 1_000_000, maxMemoryPages: 16 });
  t.is(hex(guest.commandEncoded(Uint8Array.of(1)).reply), "0806");
  const none = failureOf(t, () => guest.commandEncoded(Uint8Array.of(2)));
  t.is(none.message, "the guest returned without producing a result");
  const aborted = failureOf(t, () => guest.commandEncoded(Uint8Array.of(3)));
  t.true(isKeystateError(aborted, "GUEST_TRAP"));
  t.is((aborted.cause as Error).message, "boom (?:9:1)");
});
