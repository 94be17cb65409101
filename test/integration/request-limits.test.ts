// The request size limit on a real `keystate serve --max-request-size`: one setting bounds
// both ingresses. A gRPC message over it is RESOURCE_EXHAUSTED with a message that names
// the sizes, an HTTP/JSON body over it is 413 with a JSON error; requests under it are
// served, and the refused ones change nothing.
import test from "ava";
import * as grpc from "@grpc/grpc-js";
import { status } from "@grpc/grpc-js";
import protobuf from "protobufjs";
import { join } from "node:path";
import { deploy, ensureExample, fetchJson, postJson } from "../helpers/deployed-node.js";
import { contractClient, statusOf } from "../helpers/grpc-client.js";
import { REPO_ROOT, startNodeProcess } from "../helpers/node-process.js";
import { tempDirFor } from "../helpers/temp-dir.js";

const CART = "keystate.examples.shoppingcart.ShoppingCart";
const LIMIT = 2048;

test("--max-request-size bounds gRPC messages (RESOURCE_EXHAUSTED) and HTTP/JSON bodies (413) alike", async (t) => {
  const wasm = (await ensureExample("shopping-cart"))!;
  const node = await startNodeProcess({ dataDir: await tempDirFor(t, "limits"), extraArgs: ["--max-request-size", String(LIMIT)] });
  t.teardown(() => node.kill());
  await deploy(node, wasm);
  const cart = contractClient(join(REPO_ROOT, "modules", "shopping-cart", "proto"), "shoppingcart.proto", CART, node.grpcPort);
  t.teardown(() => cart.close());

  // Under the limit: served on both.
  await cart.methods.AddItem!({ userId: "ann", productId: "small", name: "x".repeat(LIMIT / 2), quantity: 1 });
  t.is((await postJson(`${node.adminUrl}/cart/ann/items/add`, { productId: "small-http", name: "y".repeat(LIMIT / 2), quantity: 1 })).status, 200);

  // Over it: refused before any entity sees it.
  const big = await statusOf(cart.methods.AddItem!({ userId: "ann", productId: "big", name: "x".repeat(LIMIT * 2), quantity: 1 }));
  t.is(big.code, status.RESOURCE_EXHAUSTED);
  t.regex(big.details, new RegExp(`larger than max.*${LIMIT}`), "the message names the limit");

  const response = await postJson(`${node.adminUrl}/cart/ann/items/add`, { productId: "big-http", name: "y".repeat(LIMIT * 2), quantity: 1 });
  t.is(response.status, 413);
  t.is(response.body.error.status, "RESOURCE_EXHAUSTED");
  t.regex(response.body.error.message, new RegExp(`limit (is|of) ${LIMIT}`));

  const { body } = await fetchJson(`${node.adminUrl}/carts/ann`);
  t.deepEqual(
    body.items.map((item: { productId: string }) => item.productId),
    ["small", "small-http"],
    "the refused requests added nothing",
  );
});

test("the default limit is 4 MiB on gRPC too: a message just under it is served, one just over it refused", async (t) => {
  const wasm = (await ensureExample("shopping-cart"))!;
  const node = await startNodeProcess({ dataDir: await tempDirFor(t, "limits-default") });
  t.teardown(() => node.kill());
  await deploy(node, wasm);
  const client = new grpc.Client(`127.0.0.1:${node.grpcPort}`, grpc.credentials.createInsecure());
  t.teardown(() => client.close());
  // GetShoppingCart{user_id: "bo"} padded with an unknown field (number 99) to `size` bytes:
  // big on the wire, cheap for the entity (it skips unknown fields in one step).
  const getCartOfSize = (size: number): Promise<Buffer> => {
    const head = protobuf.Writer.create().uint32((1 << 3) | 2).string("bo").finish();
    const padding = size - head.length - 2 - 4; // tag (2 bytes) + length (4 bytes) + data
    const bytes = protobuf.Writer.create().uint32((1 << 3) | 2).string("bo").uint32((99 << 3) | 2).bytes(Buffer.alloc(padding, 1)).finish();
    t.is(bytes.length, size);
    return new Promise((resolve, reject) =>
      client.makeUnaryRequest(`/${CART}/GetCart`, (b: Buffer) => b, (b: Buffer) => b, Buffer.from(bytes), (err, reply) => (err ? reject(err) : resolve(reply!))),
    );
  };
  const MiB = 1024 * 1024;
  t.deepEqual(await getCartOfSize(4 * MiB - 64), Buffer.alloc(0), "an empty cart, for a request just under 4 MiB");
  const over = await statusOf(getCartOfSize(4 * MiB + 64));
  t.is(over.code, status.RESOURCE_EXHAUSTED);
  t.regex(over.details, new RegExp(`larger than max.*${4 * MiB}`));
});
