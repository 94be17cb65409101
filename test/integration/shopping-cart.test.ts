// The backbone, end to end with real processes: `keystate serve` as a child process on
// the embedded store and on a real redis-server, `keystate deploy`, a grpc-js client
// built from the contract .proto, SIGKILL, restart, and the same cart read back.
// Every test runs once per cart module: the AssemblyScript cart and the C cart
// (guest-sdk-c), which implement one contract and must behave the same.
import test, { type ExecutionContext } from "ava";
import { status } from "@grpc/grpc-js";
import { openStore } from "../../host/journal/open-store.js";
import { startRedis } from "../helpers/redis-server.js";
import { tempDirFor } from "../helpers/temp-dir.js";
import { contractClient, statusOf, type ContractClient } from "../helpers/grpc-client.js";
import { startNodeProcess, type NodeProcess } from "../helpers/node-process.js";
import { deploy } from "../helpers/deployed-node.js";
import { CART_MODULES, CART_PROTO_DIR, cartWasm, type CartModule } from "../helpers/cart-modules-c.js";

const SERVICE = "keystate.examples.shoppingcart.ShoppingCart";

interface Backend {
  readonly name: string;
  setUp(t: ExecutionContext): Promise<{ dataDir: string; redisUrl?: string }>;
}

const backends: Backend[] = [
  { name: "embedded store", setUp: async (t) => ({ dataDir: await tempDirFor(t, "cart-embedded") }) },
  {
    name: "Redis",
    setUp: async (t) => {
      const redis = await startRedis({ appendOnly: true });
      t.teardown(() => redis.stop());
      return { dataDir: await tempDirFor(t, "cart-redis"), redisUrl: redis.url };
    },
  },
];

const deployCart = async (node: NodeProcess, cart: CartModule): Promise<string> => deploy(node, await cartWasm(cart));

function cartClient(node: NodeProcess): ContractClient {
  return contractClient(CART_PROTO_DIR, "shoppingcart.proto", SERVICE, node.grpcPort);
}

/** "shopping cart" for the AssemblyScript cart (its historical titles), "shopping cart in C" for the other. */
const cartTitle = (cart: CartModule) => (cart.language === "AssemblyScript" ? "shopping cart" : `shopping cart in ${cart.language}`);

for (const cartModule of CART_MODULES) for (const backend of backends) {
  test.serial(`${cartTitle(cartModule)} on the ${backend.name}: contract behaviour, SIGKILL, restart, same cart`, async (t) => {
    const setup = await backend.setUp(t);
    let node = await startNodeProcess(setup);
    t.teardown(() => node.kill());

    const uploadStart = performance.now();
    t.regex(await deployCart(node, cartModule), new RegExp(`deployed ${cartModule.module} version 1: keystate\\.examples\\.shoppingcart\\.ShoppingCart`));
    let client = cartClient(node);
    const cart = client.methods;
    await cart.AddItem({ userId: "ann", productId: "apple", name: "Apple", quantity: 2 });
    t.log(`upload to first reply: ${(performance.now() - uploadStart).toFixed(1)} ms (includes spawning the deploy CLI)`);

    await cart.AddItem({ userId: "ann", productId: "pear", name: "Pear", quantity: 1 });
    await cart.AddItem({ userId: "ann", productId: "apple", name: "Apple", quantity: 3 }); // merges
    await cart.AddItem({ userId: "ann", productId: "fig", name: "Fig", quantity: 7 });
    await cart.RemoveItem({ userId: "ann", productId: "pear" });
    await cart.AddItem({ userId: "ann", productId: "kiwi", name: "Kiwi", quantity: 1 });

    const notFound = await statusOf(cart.RemoveItem({ userId: "ann", productId: "durian" }));
    t.is(notFound.code, status.NOT_FOUND);
    t.is(notFound.details, "item durian is not in the cart");
    const invalid = await statusOf(cart.AddItem({ userId: "ann", productId: "apple", name: "Apple", quantity: 0 }));
    t.is(invalid.code, status.INVALID_ARGUMENT);
    t.is(invalid.details, "quantity for item apple must be at least 1");
    const noProduct = await statusOf(cart.AddItem({ userId: "ann", productId: "", name: "Nothing", quantity: 1 }));
    t.deepEqual([noProduct.code, noProduct.details], [status.INVALID_ARGUMENT, "product_id must not be empty"]);
    t.is((await statusOf(cart.AddItem({ userId: "ann", productId: "apple", name: "Apple", quantity: -4 }))).code, status.INVALID_ARGUMENT);
    const noKey = await statusOf(cart.GetCart({ userId: "" }));
    t.is(noKey.code, status.INVALID_ARGUMENT);
    t.regex(noKey.details, /user_id/);

    const expected = [
      { productId: "apple", name: "Apple", quantity: 5 },
      { productId: "fig", name: "Fig", quantity: 7 },
      { productId: "kiwi", name: "Kiwi", quantity: 1 },
    ];
    t.deepEqual((await cart.GetCart({ userId: "ann" })).items, expected, "lines in first-added order, quantities merged");
    t.deepEqual((await cart.GetCart({ userId: "bob" })).items, [], "a cart never written is empty");
    client.close();

    await node.kill("SIGKILL");
    node = await startNodeProcess(setup);
    client = cartClient(node);
    t.deepEqual((await client.methods.GetCart({ userId: "ann" })).items, expected, "the same cart after SIGKILL and restart, without a redeploy");
    client.close();

    // Every accepted command is one event; refused ones wrote nothing.
    await node.kill("SIGKILL");
    const store = await openStore(setup);
    try {
      const events = await store.journal.readEvents({ persistenceId: "shopping-cart", key: "ann" }, 1);
      t.deepEqual(events.map((e) => e.seq), [1, 2, 3, 4, 5, 6]);
      t.deepEqual(events.map((e) => e.type.split(".").pop()), ["ItemAdded", "ItemAdded", "ItemAdded", "ItemAdded", "ItemRemoved", "ItemAdded"]);
    } finally {
      await store.close();
    }
  });

  test.serial(`${cartTitle(cartModule)} on the ${backend.name}: 200 concurrent AddItem on one cart are all applied, events 1..200 without a gap`, async (t) => {
    const setup = await backend.setUp(t);
    const node = await startNodeProcess(setup);
    t.teardown(() => node.kill());
    await deployCart(node, cartModule);
    const client = cartClient(node);
    t.teardown(() => client.close());

    const calls = Array.from({ length: 200 }, (_, i) =>
      client.methods.AddItem({ userId: "crowd", productId: `p${i % 10}`, name: `Product ${i % 10}`, quantity: i + 1 }),
    );
    const results = await Promise.allSettled(calls);
    t.deepEqual(results.filter((r) => r.status === "rejected"), []);

    const items = (await client.methods.GetCart({ userId: "crowd" })).items as Array<{ productId: string; quantity: number }>;
    t.is(items.length, 10);
    const total = items.reduce((sum, item) => sum + item.quantity, 0);
    t.is(total, (200 * 201) / 2, "every quantity was added exactly once");

    await node.kill("SIGKILL");
    const store = await openStore(setup);
    try {
      const events = await store.journal.readEvents({ persistenceId: "shopping-cart", key: "crowd" }, 1);
      t.deepEqual(events.map((e) => e.seq), Array.from({ length: 200 }, (_, i) => i + 1));
    } finally {
      await store.close();
    }
  });
}

for (const cartModule of CART_MODULES) test.serial(`bad calls get clear statuses and the node keeps serving (${cartModule.module})`, async (t) => {
  const dataDir = await tempDirFor(t, "cart-bad");
  const node = await startNodeProcess({ dataDir });
  t.teardown(() => node.kill());
  await deployCart(node, cartModule);
  const client = cartClient(node);
  t.teardown(() => client.close());

  const grpc = await import("@grpc/grpc-js");
  const raw = new grpc.Client(`127.0.0.1:${node.grpcPort}`, grpc.credentials.createInsecure());
  t.teardown(() => raw.close());
  const callRaw = (path: string, body: Buffer) =>
    new Promise<{ code: number; details: string }>((resolve) => {
      raw.makeUnaryRequest(path, (b: Buffer) => b, (b: Buffer) => b, body, (err) => resolve({ code: err?.code ?? 0, details: err?.details ?? "" }));
    });

  t.is((await callRaw(`/${SERVICE}/Checkout`, Buffer.alloc(0))).code, status.UNIMPLEMENTED);
  t.is((await callRaw("/no.such.Service/Method", Buffer.alloc(0))).code, status.UNIMPLEMENTED);
  const malformed = await callRaw(`/${SERVICE}/AddItem`, Buffer.from([0x0a, 0x20, 0x61])); // length 32, 1 byte follows
  t.is(malformed.code, status.INVALID_ARGUMENT);
  t.regex(malformed.details, /malformed/);
  const badNested = await callRaw(`/${SERVICE}/AddItem`, Buffer.from([0x0a, 0x01, 0x61, 0x20, 0xff])); // truncated varint
  t.is(badNested.code, status.INVALID_ARGUMENT);

  await client.methods.AddItem({ userId: "carl", productId: "a", name: "A", quantity: 1 });
  t.is((await client.methods.GetCart({ userId: "carl" })).items.length, 1, "still serving after bad input");
});
