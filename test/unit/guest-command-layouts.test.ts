// The AssemblyScript SDK reads a CommandCall's service and method in place when they lead
// the input (as the host writes them), matches them against names it has seen, and reads
// state and payload as views of its input buffer. These tests hold it to protobuf: any
// field order, long names, many names, malformed input, and inputs that outgrow the buffer
// all read exactly as the host's own encoding does.
import test from "ava";
import { join } from "node:path";
import protobuf from "protobufjs";
import type { CommandResult } from "../../host/abi/abi-codec.js";
import type { GuestInstance } from "../../host/abi/guest-instance.js";
import { exampleMessage } from "../helpers/example-messages.js";
import { guestFromFile } from "../helpers/guest-instance.js";
import { REPO_ROOT } from "../helpers/node-process.js";

const SERVICE = "keystate.examples.counter.Counter";
const INTERNAL = 13;
const UNIMPLEMENTED = 12;

const ChangeValue = exampleMessage("keystate.examples.counter.ChangeValue");
const CounterState = exampleMessage("keystate.examples.counter.domain.CounterState");
const CurrentValue = exampleMessage("keystate.examples.counter.CurrentValue");

function counterGuest(): Promise<GuestInstance> {
  return guestFromFile(join(REPO_ROOT, "modules", "counter", "build", "counter.wasm"));
}

interface Fields {
  service: string;
  method: string;
  entityKey: string;
  state?: Uint8Array;
  payload: Uint8Array;
}

/** One CommandCall field by field (keystate/abi.proto numbers), in the order given. */
function encodeFields(fields: Fields, order: ReadonlyArray<keyof Fields>): Uint8Array {
  const w = protobuf.Writer.create();
  for (const name of order) {
    switch (name) {
      case "service": w.uint32(10).string(fields.service); break;
      case "method": w.uint32(18).string(fields.method); break;
      case "entityKey": w.uint32(26).string(fields.entityKey); break;
      case "state":
        if (fields.state) w.uint32(42).bytes(fields.state).uint32(48).bool(true);
        break;
      case "payload": w.uint32(58).bytes(fields.payload); break;
    }
  }
  return w.finish();
}

const HOST_ORDER = ["service", "method", "entityKey", "state", "payload"] as const;

function increase(key: string, by: number, state?: number): Fields {
  return {
    service: SERVICE,
    method: "Increase",
    entityKey: key,
    state: state === undefined ? undefined : CounterState.encode({ value: state }).finish(),
    payload: ChangeValue.encode({ counterId: key, value: by }).finish(),
  };
}

function valueOf(message: Uint8Array, type: protobuf.Type): number {
  return Number((type.toObject(type.decode(message), { longs: Number, defaults: true }) as { value: number }).value);
}

function assertIncreased(t: import("ava").ExecutionContext, result: CommandResult, expected: number): void {
  t.is(result.failure, undefined);
  t.is(valueOf(result.reply, CurrentValue), expected);
  t.is(valueOf(result.state, CounterState), expected);
}

// Checked against each other: the layout of fields must not change the answer.
test("a CommandCall reads the same in any field order, with the host's layout as the reference", async (t) => {
  const guest = await counterGuest();
  const call = increase("c-1", 5, 37);
  assertIncreased(t, guest.commandEncoded(encodeFields(call, HOST_ORDER)), 42);
  const orders: Array<ReadonlyArray<keyof Fields>> = [
    ["method", "service", "entityKey", "state", "payload"],
    ["payload", "state", "entityKey", "method", "service"],
    ["entityKey", "service", "method", "payload", "state"],
    ["service", "entityKey", "method", "state", "payload"],
  ];
  for (const order of orders) assertIncreased(t, guest.commandEncoded(encodeFields(call, order)), 42);
  // The same through the host's encoder.
  assertIncreased(t, guest.command({ ...call, sequence: 0, state: call.state }), 42);
});

test("service and method names of any length, and more of them than the SDK keeps, are read in full", async (t) => {
  const guest = await counterGuest();
  // 127 bytes fits a one-byte length; 128 and 300 need a two-byte one.
  for (const length of [1, 127, 128, 300]) {
    const name = "s".repeat(length);
    const result = guest.commandEncoded(encodeFields({ ...increase("c", 1), service: name }, HOST_ORDER));
    t.is(result.failure?.code, UNIMPLEMENTED);
    t.is(result.failure?.message, `this module does not serve ${name}`);
    const method = "M".repeat(length);
    const byMethod = guest.commandEncoded(encodeFields({ ...increase("c", 1), method }, HOST_ORDER));
    t.is(byMethod.failure?.code, UNIMPLEMENTED);
    t.true(byMethod.failure?.message.endsWith(`has no method ${method}`), byMethod.failure?.message);
  }
  // Far more distinct names than the SDK remembers, each answered by its own name, with
  // the real service still served between them.
  for (let i = 0; i < 200; i++) {
    const name = `pkg.Service${i}`;
    const result = guest.commandEncoded(encodeFields({ ...increase("c", 1), service: name }, HOST_ORDER));
    t.is(result.failure?.message, `this module does not serve ${name}`);
    if (i % 50 === 0) assertIncreased(t, guest.commandEncoded(encodeFields(increase("c", 2, i), HOST_ORDER)), i + 2);
  }
  // Names that share a prefix and a length with a known one are not taken for it.
  const almost = SERVICE.slice(0, -1) + "X";
  t.is(guest.commandEncoded(encodeFields({ ...increase("c", 1), service: almost }, HOST_ORDER)).failure?.message, `this module does not serve ${almost}`);
  const sameLength = "Increasf";
  t.true(guest.commandEncoded(encodeFields({ ...increase("c", 1), method: sameLength }, HOST_ORDER)).failure?.message.endsWith(`has no method ${sameLength}`));
  // Nor one that differs in any single byte (names are compared eight bytes at a time, then
  // byte by byte: every word and the tail), after the real names have been seen.
  assertIncreased(t, guest.commandEncoded(encodeFields(increase("c", 1, 0), HOST_ORDER)), 1);
  for (let i = 0; i < SERVICE.length; i++) {
    const other = SERVICE.slice(0, i) + (SERVICE[i] === "x" ? "y" : "x") + SERVICE.slice(i + 1);
    t.is(guest.commandEncoded(encodeFields({ ...increase("c", 1), service: other }, HOST_ORDER)).failure?.message, `this module does not serve ${other}`);
  }
  for (let i = 0; i < "Increase".length; i++) {
    const other = "Increase".slice(0, i) + "x" + "Increase".slice(i + 1);
    t.true(guest.commandEncoded(encodeFields({ ...increase("c", 1), method: other }, HOST_ORDER)).failure?.message.endsWith(`has no method ${other}`), other);
  }
});

test("a malformed or truncated CommandCall is refused with INTERNAL, and the next call is unaffected", async (t) => {
  const guest = await counterGuest();
  const whole = encodeFields(increase("c-2", 3, 4), HOST_ORDER);
  // Inside the service tag, its length, its name, the method tag and the method name.
  const cuts = [1, 2, 5, 3 + SERVICE.length, 4 + SERVICE.length + "Increase".length - 1];
  for (const cut of cuts) {
    const result = guest.commandEncoded(whole.subarray(0, cut));
    t.is(result.failure?.code, INTERNAL, `cut at ${cut}`);
    t.is(result.failure?.message, "the host sent a malformed CommandCall");
    assertIncreased(t, guest.commandEncoded(whole), 7);
  }
  // A service length that runs past the input.
  const lying = Uint8Array.from([10, 100, 65, 66]);
  t.is(guest.commandEncoded(lying).failure?.code, INTERNAL);
  assertIncreased(t, guest.commandEncoded(whole), 7);
});

test("state and payload read in place stay right when the next input outgrows the buffer and when calls alternate keys", async (t) => {
  const guest = await counterGuest();
  // Keys of growing length: each call's input is larger than the last, so the guest's
  // input buffer is replaced along the way; each reply and state must be this call's.
  let expected = 0;
  for (let i = 0; i < 12; i++) {
    const key = "k".repeat(2 ** i);
    const result = guest.commandEncoded(encodeFields(increase(key, i + 1, expected), HOST_ORDER));
    expected += i + 1;
    assertIncreased(t, result, expected);
  }
  // Two counters interleaved, each result from its own state and payload.
  let a = 0;
  let b = 1_000;
  for (let i = 0; i < 100; i++) {
    const ra = guest.commandEncoded(encodeFields(increase("a", 1, a), HOST_ORDER));
    const rb = guest.commandEncoded(encodeFields(increase("b", 7, b), HOST_ORDER));
    a += 1;
    b += 7;
    assertIncreased(t, ra, a);
    assertIncreased(t, rb, b);
  }
});
