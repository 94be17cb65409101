// The AssemblyScript SDK writes an event-sourced command's events straight into its result
// as they are applied. Each must be journaled as it was emitted, even when the event handler
// keeps the event's objects in the state and a later event of the same command changes them
// (the shopping cart's ItemAdded does this), and a command that fails after emitting must
// return no events at all. test/fixtures/event-staging has such an entity.
import test from "ava";
import protobuf from "protobufjs";
import type { GuestInstance } from "../../host/abi/guest-instance.js";
import { useBuiltFixture } from "../helpers/fixture-build.js";
import { guestFromFile } from "../helpers/guest-instance.js";

const SERVICE = "keystate.test.stock.Stock";
const wasmPath = useBuiltFixture(test, "event-staging");

const root = protobuf.Root.fromJSON({
  nested: {
    Delivery: { fields: { sku: { type: "string", id: 1 }, quantity: { type: "int32", id: 2 }, times: { type: "int32", id: 3 }, thenUndeclared: { type: "bool", id: 4 }, thenFail: { type: "bool", id: 5 }, thenSchedule: { type: "bool", id: 6 } } },
    Line: { fields: { sku: { type: "string", id: 1 }, quantity: { type: "int32", id: 2 } } },
    Received: { fields: { line: { type: "Line", id: 1 } } },
    StockLevel: { fields: { lines: { rule: "repeated", type: "Line", id: 1 } } },
  },
});
const Delivery = root.lookupType("Delivery");
const Received = root.lookupType("Received");
const StockLevel = root.lookupType("StockLevel");

function stockGuest(): Promise<GuestInstance> {
  return guestFromFile(wasmPath());
}

function receive(guest: GuestInstance, delivery: Record<string, unknown>, state?: Uint8Array) {
  return guest.command({ service: SERVICE, method: "Receive", entityKey: "sku-1", sequence: 0, state, payload: Delivery.encode({ sku: "sku-1", ...delivery }).finish() });
}

function quantities(bytes: Uint8Array): number[] {
  return (StockLevel.toObject(StockLevel.decode(bytes), { defaults: true }) as { lines: Array<{ quantity: number }> }).lines.map((l) => l.quantity);
}

test("each event is journaled as emitted, though the state holds its line and later events of the command change it", async (t) => {
  const guest = await stockGuest();
  const result = receive(guest, { quantity: 3, times: 4 });
  t.is(result.failure, undefined);
  t.deepEqual(result.events.map((e) => e.type), Array(4).fill("keystate.test.stock.Received"));
  // Before the SDK encoded events as they were applied, the first would have read 12 here.
  t.deepEqual(result.events.map((e) => (Received.toObject(Received.decode(e.payload)) as { line: { quantity: number } }).line.quantity), [3, 3, 3, 3]);
  t.deepEqual(quantities(result.state), [12]);
  t.deepEqual(quantities(result.reply), [12]);
  // The next command starts from that state, and its events are its own.
  const next = receive(guest, { quantity: 5, times: 2 }, result.state);
  t.is(next.events.length, 2);
  t.deepEqual(quantities(next.state), [22]);
});

test("a command that fails after emitting returns its failure and no events, reply or state; the next command is whole", async (t) => {
  const guest = await stockGuest();
  const failed = receive(guest, { quantity: 1, times: 3, thenFail: true });
  t.deepEqual(failed.failure, { code: 9, message: "refused after emitting" });
  t.deepEqual([failed.events.length, failed.reply.length, failed.state.length], [0, 0, 0]);
  const undeclared = receive(guest, { quantity: 1, times: 3, thenUndeclared: true });
  t.is(undeclared.failure?.code, 13);
  t.regex(undeclared.failure?.message ?? "", /emitted keystate\.test\.stock\.Delivery, which is not one of its event types/);
  t.deepEqual([undeclared.events.length, undeclared.reply.length, undeclared.state.length], [0, 0, 0]);
  const ok = receive(guest, { quantity: 2, times: 1 });
  t.is(ok.failure, undefined);
  t.is(ok.events.length, 1);
  t.deepEqual(quantities(ok.state), [2]);
});

test("a timer a failed command scheduled is in no later command's result", async (t) => {
  const guest = await stockGuest();
  const failed = receive(guest, { quantity: 1, times: 1, thenSchedule: true, thenFail: true });
  t.is(failed.failure?.code, 9);
  t.deepEqual(failed.timers, []);
  // A command that schedules nothing has no timers; one that schedules has exactly its own.
  for (let i = 0; i < 3; i++) {
    t.deepEqual(receive(guest, { quantity: 1, times: 1 }).timers, []);
    t.deepEqual(receive(guest, { quantity: 1, times: 1, thenSchedule: true }).timers.map((timer) => timer.delayMs), [60_000]);
  }
});
