import test from "ava";
import { join } from "node:path";
import { REPLAY_CHUNK, type GuestInstance } from "../../host/abi/guest-instance.js";
import { DEFAULT_GUEST_LIMITS } from "../../host/runtime/guest-limits.js";
import { guestFromFile } from "../helpers/guest-instance.js";
import { exampleMessage } from "../helpers/example-messages.js";
import { REPO_ROOT } from "../helpers/node-process.js";

const SERVICE = "keystate.examples.shoppingcart.ShoppingCart";
const AddLineItem = exampleMessage("keystate.examples.shoppingcart.AddLineItem");
const Cart = exampleMessage("keystate.examples.shoppingcart.Cart");

/** A shopping-cart instance whose memory is capped at `pages` 64 KiB pages. */
function cartGuest(pages: number): Promise<GuestInstance> {
  return guestFromFile(join(REPO_ROOT, "modules", "shopping-cart", "build", "shopping-cart.wasm"), { ...DEFAULT_GUEST_LIMITS, maxMemoryPages: pages });
}

test("a long journal replays within a small memory cap: chunks of events, the state threaded through", async (t) => {
  const guest = await cartGuest(64); // 4 MiB
  const added = guest.command({
    service: SERVICE, method: "AddItem", entityKey: "u1", sequence: 0, state: undefined,
    payload: AddLineItem.encode({ userId: "u1", productId: "p-1", name: "Widget", quantity: 1 }).finish(),
  });
  t.is(added.failure, undefined);
  t.is(added.events.length, 1);
  // 40,000 ItemAdded events: in one guest call their decoded copies and garbage alone would
  // need several times the 4 MiB cap.
  const events = Array.from({ length: 40_000 }, () => added.events[0]!);
  t.true(events.length > REPLAY_CHUNK * 100);
  const replayed = guest.replay({ service: SERVICE, state: undefined, events });
  t.is(replayed.failure, undefined);
  const cart = Cart.toObject(Cart.decode(replayed.state), { defaults: true }) as { items: Array<{ productId: string; quantity: number }> };
  t.deepEqual(cart.items.map((item) => [item.productId, item.quantity]), [["p-1", 40_000]]);
});

test("a replay that does not divide into whole chunks, and one shorter than a chunk, fold every event once", async (t) => {
  const guest = await cartGuest(64);
  const add = (productId: string) =>
    guest.command({
      service: SERVICE, method: "AddItem", entityKey: "u2", sequence: 0, state: undefined,
      payload: AddLineItem.encode({ userId: "u2", productId, name: productId, quantity: 1 }).finish(),
    }).events[0]!;
  for (const length of [REPLAY_CHUNK - 1, REPLAY_CHUNK, REPLAY_CHUNK + 1, 3 * REPLAY_CHUNK + 7]) {
    // Products cycle through 5 ids, so the expected quantities are easy to count.
    const events = Array.from({ length }, (_, i) => add(`p-${i % 5}`));
    const replayed = guest.replay({ service: SERVICE, state: undefined, events });
    t.is(replayed.failure, undefined);
    const cart = Cart.toObject(Cart.decode(replayed.state), { defaults: true }) as { items: Array<{ productId: string; quantity: number }> };
    const expected = [0, 1, 2, 3, 4].map((p) => [`p-${p}`, Math.floor(length / 5) + (p < length % 5 ? 1 : 0)]);
    t.deepEqual(cart.items.map((item) => [item.productId, item.quantity]).sort(), expected.filter(([, n]) => (n as number) > 0).sort(), `length ${length}`);
  }
});
