// Presence when storage fails under it: a Connect cancelled while redis-server is down
// cannot write its vote back to false, so the node retries the cancellation; once Redis is
// back (same port, same append-only data) the user goes offline and Monitor sees it.
// Real processes throughout: `keystate serve`, redis-server killed with SIGKILL.
import test from "ava";
import { join } from "node:path";
import { streamClient } from "../helpers/grpc-stream.js";
import { buildBeforeAll, serveWith } from "../helpers/built-module.js";
import { REPO_ROOT } from "../helpers/node-process.js";
import { startRedis } from "../helpers/redis-server.js";
import { tempDirFor } from "../helpers/temp-dir.js";

const MODULE_DIR = join(REPO_ROOT, "modules", "presence");
const wasm = buildBeforeAll(test, MODULE_DIR);

test("a Connect cancelled while Redis is down still takes the user offline once Redis is back", async (t) => {
  const redisDir = await tempDirFor(t, "presence-redis");
  let redis = await startRedis({ appendOnly: true, dataDir: redisDir });
  t.teardown(() => redis.stop());
  // A lease well beyond the outage: the node keeps its shards through a blip this short
  // (a longer outage makes it give them up: cluster-lost-redis.test.ts).
  const node = await serveWith(t, wasm(), redis.url, undefined, ["--lease-ms", "12000"]);

  const client = streamClient(join(MODULE_DIR, "proto"), "presence.proto", "keystate.examples.presence.Presence", node.grpcPort);
  t.teardown(() => client.close());
  const connect = client.open("Connect", { name: "fay" });
  const monitor = client.open<{ online: boolean }>("Monitor", { name: "fay" });
  t.deepEqual(await monitor.nth(0), { online: true });

  redis.kill();
  connect.cancel();
  // While Redis is down the cancellation cannot be written: nothing is reported as changed.
  await new Promise((r) => setTimeout(r, 1_500));
  t.is(monitor.messages.length, 1);

  redis = await startRedis({ port: redis.port, appendOnly: true, dataDir: redisDir });
  t.deepEqual(await monitor.nth(1, 15_000), { online: false });
  t.true(node.output.join("").includes("retrying"), "the node said it retried the cancellation");
  monitor.cancel();
});
