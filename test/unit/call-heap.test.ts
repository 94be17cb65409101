// The call-heap runtime (guest-sdk/runtime/call-heap.ts) drops what calls allocated without
// freeing objects one by one; these tests hold it to both halves of its promise on real
// modules: what a call only used is gone (memory stays flat over far more allocation than
// the memory cap), and what a module keeps by reference outlives every call after it, with
// other calls' garbage written over the memory in between.
import test from "ava";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import protobuf from "protobufjs";
import type { GuestInstance } from "../../host/abi/guest-instance.js";
import { DEFAULT_GUEST_LIMITS } from "../../host/runtime/guest-limits.js";
import { exampleMessage } from "../helpers/example-messages.js";
import { useBuiltFixture } from "../helpers/fixture-build.js";
import { guestFromFile } from "../helpers/guest-instance.js";
import { REPO_ROOT } from "../helpers/node-process.js";

const KEEPER = "keystate.test.heap.Keeper";
const COUNTER = "keystate.examples.counter.Counter";
const CART = "keystate.examples.shoppingcart.ShoppingCart";
const PAGE = 65_536;
const keeperWasm = useBuiltFixture(test, "kept-heap");

const root = protobuf.Root.fromJSON({
  nested: {
    Entry: { fields: { key: { type: "string", id: 1 }, value: { type: "string", id: 2 } } },
    ChurnRequest: { fields: { count: { type: "int32", id: 1 } } },
    Recalled: {
      fields: {
        value: { type: "string", id: 1 }, kept: { type: "int32", id: 2 }, lastAppended: { type: "string", id: 3 },
        held: { type: "string", id: 4 }, latest: { type: "string", id: 5 }, churnedBytes: { type: "int64", id: 6 },
      },
    },
  },
});
/** The kept-heap fixture's messages. */
const type = (name: string) => root.lookupType(name);
const ChangeValue = exampleMessage("keystate.examples.counter.ChangeValue");
const CounterState = exampleMessage("keystate.examples.counter.domain.CounterState");
const AddLineItem = exampleMessage("keystate.examples.shoppingcart.AddLineItem");
const GetShoppingCart = exampleMessage("keystate.examples.shoppingcart.GetShoppingCart");

interface Recalled {
  value: string;
  kept: number;
  lastAppended: string;
  held: string;
  latest: string;
  churnedBytes: number;
}

test("a per-call module exports only the ABI's functions and its memory", (t) => {
  // The runtime's own functions stay inside: every export costs each instantiation.
  const exportsOf = (path: string) => WebAssembly.Module.exports(new WebAssembly.Module(readFileSync(path))).map((e) => e.name).sort();
  const abi = ["ks_abort", "ks_command", "ks_input", "ks_replay", "memory"];
  t.deepEqual(exportsOf(keeperWasm()), abi);
  t.deepEqual(exportsOf(join(REPO_ROOT, "modules", "counter", "build", "counter.wasm")), abi);
});

function pages(guest: GuestInstance): number {
  return guest.exports.memory.buffer.byteLength / PAGE;
}

function keeperCall(guest: GuestInstance, method: string, message: Record<string, unknown>, requestType: string): Recalled {
  const result = guest.command({ service: KEEPER, method, entityKey: "", sequence: 0, state: undefined, payload: type(requestType).encode(message).finish() });
  if (result.failure) throw new Error(`${method} failed: ${result.failure.message}`);
  const recalled = type("Recalled");
  return recalled.toObject(recalled.decode(result.reply!), { defaults: true, longs: Number }) as Recalled;
}

test("what calls only used is dropped: many times the memory cap allocated, the memory stays as it was", async (t) => {
  const guest = await guestFromFile(keeperWasm(), { ...DEFAULT_GUEST_LIMITS, maxMemoryPages: 64 }); // 4 MiB
  let churned = 0;
  let settled = 0;
  for (let i = 0; i < 10_000; i++) {
    churned += keeperCall(guest, "Churn", { count: 60 }, "ChurnRequest").churnedBytes;
    // Sixteen calls' objects wait for a collection (exports.ts), and the heap grows to hold
    // them (doubling, as AssemblyScript's allocators do); from then on it must not grow.
    if (i === 500) settled = pages(guest);
  }
  // The strings and arrays alone, not counting the temporaries that made them: 8 times the cap.
  t.true(churned > 8 * 64 * PAGE, `churned ${churned} bytes`);
  t.true(settled < 64, `${settled} pages after 500 calls`);
  t.is(pages(guest), settled, "the memory grew after its first 500 calls");
});

test("objects a call made and a module keeps in a map, an array, an object's field or a variable outlive the calls after it", async (t) => {
  const guest = await guestFromFile(keeperWasm());
  const values = new Map<string, string>();
  for (let i = 0; i < 150; i++) {
    const key = `key-${i}`;
    const value = `value-${i}-${"v".repeat(i % 37)}`;
    values.set(key, value);
    const remembered = keeperCall(guest, "Remember", { key, value }, "Entry");
    t.deepEqual([remembered.value, remembered.kept, remembered.lastAppended, remembered.held, remembered.latest], [value, i + 1, value, value, value]);
    // Other calls' garbage, over more than one collection (every 16 calls): memory the
    // runtime dropped is written over at once, so a kept object dropped with it would show.
    for (let c = 0; c < 20; c++) keeperCall(guest, "Churn", { count: 5 }, "ChurnRequest");
    if (i % 25 === 24) {
      const earlier = `key-${i - 24}`;
      t.is(keeperCall(guest, "Recall", { key: earlier }, "Entry").value, values.get(earlier)!);
    }
  }
  for (const [key, value] of values) {
    const recalled = keeperCall(guest, "Recall", { key }, "Entry");
    if (recalled.value !== value) return t.fail(`${key}: kept ${JSON.stringify(value)}, recalled ${JSON.stringify(recalled.value)}`);
  }
  const last = keeperCall(guest, "Recall", { key: "key-149" }, "Entry");
  t.deepEqual([last.kept, last.lastAppended, last.held, last.latest], [150, values.get("key-149"), values.get("key-149"), values.get("key-149")]);
});

test("the counter and the cart keep no call's objects: tens of thousands of commands on one instance, memory flat", async (t) => {
  const counter = await guestFromFile(join(REPO_ROOT, "modules", "counter", "build", "counter.wasm"), { ...DEFAULT_GUEST_LIMITS, maxMemoryPages: 16 });
  let state: Uint8Array | undefined;
  let counterPages = 0;
  for (let i = 0; i < 50_000; i++) {
    const payload = ChangeValue.encode({ counterId: `c-${i % 100}`, value: 1 }).finish();
    const result = counter.command({ service: COUNTER, method: "Increase", entityKey: "c", sequence: i, state, payload });
    if (result.failure) return t.fail(`command ${i}: ${result.failure.message}`);
    state = result.state.length > 0 ? result.state : state;
    // After the SDK's caches have filled and a few collections have run.
    if (i === 1000) counterPages = pages(counter);
  }
  const value = CounterState.toObject(CounterState.decode(state!), { longs: Number }) as { value: number };
  t.is(value.value, 50_000);
  t.is(pages(counter), counterPages, "the counter's memory grew after its first thousand commands");

  const cart = await guestFromFile(join(REPO_ROOT, "modules", "shopping-cart", "build", "shopping-cart.wasm"), { ...DEFAULT_GUEST_LIMITS, maxMemoryPages: 16 });
  const add = cart.command({
    service: CART, method: "AddItem", entityKey: "u", sequence: 0, state: undefined,
    payload: AddLineItem.encode({ userId: "u", productId: "p", name: "Widget", quantity: 1 }).finish(),
  });
  t.is(add.failure, undefined);
  let cartPages = 0;
  // Replays (ks_replay) and commands in turn, each from the same journal of 50 events.
  const events = Array.from({ length: 50 }, () => add.events[0]!);
  for (let i = 0; i < 5000; i++) {
    const replayed = cart.replay({ service: CART, state: undefined, events });
    if (replayed.failure) return t.fail(`replay ${i}: ${replayed.failure.message}`);
    const got = cart.command({ service: CART, method: "GetCart", entityKey: "u", sequence: 0, state: replayed.state, payload: GetShoppingCart.encode({ userId: "u" }).finish() });
    if (got.failure) return t.fail(`GetCart ${i}: ${got.failure.message}`);
    if (i === 200) cartPages = pages(cart);
  }
  t.is(pages(cart), cartPages, "the cart's memory grew after its first 200 rounds");
});
