// Storage unreachable: calls fail with UNAVAILABLE and nothing is acknowledged that was
// not written; when Redis comes back the same node serves again without a restart.
import test from "ava";
import { status } from "@grpc/grpc-js";
import { join } from "node:path";
import { contractClient, statusOf } from "../helpers/grpc-client.js";
import { REPO_ROOT, startNodeProcess } from "../helpers/node-process.js";
import { deploy } from "../helpers/deployed-node.js";
import { startRedis } from "../helpers/redis-server.js";
import { tempDirFor } from "../helpers/temp-dir.js";

const MODULE_DIR = join(REPO_ROOT, "modules", "shopping-cart");

test("Redis down: UNAVAILABLE, nothing acknowledged is lost, nothing unacknowledged appears; back up: served again", async (t) => {
  const redisDir = await tempDirFor(t, "outage-redis");
  let redis = await startRedis({ appendOnly: true, dataDir: redisDir });
  t.teardown(() => redis.stop());
  const node = await startNodeProcess({ dataDir: await tempDirFor(t, "outage-node"), redisUrl: redis.url });
  t.teardown(() => node.kill());
  await deploy(node, join(MODULE_DIR, "build", "shopping-cart.wasm"));
  const client = contractClient(join(MODULE_DIR, "proto"), "shoppingcart.proto", "keystate.examples.shoppingcart.ShoppingCart", node.grpcPort);
  t.teardown(() => client.close());
  const cart = client.methods;

  await cart.AddItem({ userId: "eve", productId: "tea", name: "Tea", quantity: 1 });

  redis.kill();
  const started = Date.now();
  const down = await statusOf(cart.AddItem({ userId: "eve", productId: "cake", name: "Cake", quantity: 2 }));
  t.is(down.code, status.UNAVAILABLE);
  t.regex(down.details, /storage is unavailable/);
  t.true(Date.now() - started < 5_000, "fails fast instead of hanging");
  // An entity not yet loaded cannot even be read.
  t.is((await statusOf(cart.GetCart({ userId: "frank" }))).code, status.UNAVAILABLE);

  redis = await startRedis({ appendOnly: true, dataDir: redisDir, port: redis.port });
  let items: Array<{ productId: string; quantity: number }> | undefined;
  for (let attempt = 0; attempt < 50 && !items; attempt++) {
    items = await cart.GetCart({ userId: "eve" }).then((reply) => reply.items, () => undefined);
    if (!items) await new Promise((resolve) => setTimeout(resolve, 100));
  }
  t.deepEqual(items?.map((i) => [i.productId, i.quantity]), [["tea", 1]], "the refused AddItem left no trace");
  await cart.AddItem({ userId: "eve", productId: "cake", name: "Cake", quantity: 2 });
  t.deepEqual((await cart.GetCart({ userId: "eve" })).items.map((i: { productId: string }) => i.productId), ["tea", "cake"]);
});
