// Presence when storage fails under it: a Connect cancelled while redis-server is down
// cannot write its vote back to false, so the node retries the cancellation; once Redis is
// back (same port, same append-only data) the user goes offline and Monitor sees it.
// Real processes throughout: `keystate serve`, redis-server killed with SIGKILL.
import test from "ava";
import { execFile } from "node:child_process";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { streamClient } from "../helpers/grpc-stream.js";
import { KEYSTATE_BIN, REPO_ROOT, startNodeProcess } from "../helpers/node-process.js";
import { startRedis } from "../helpers/redis-server.js";
import { makeTempDir, removeDir, tempDirFor } from "../helpers/temp-dir.js";

const run = promisify(execFile);
const MODULE_DIR = join(REPO_ROOT, "modules", "presence");
let buildDir = "";

test.before(async () => {
  buildDir = await makeTempDir("presence-storage-build");
  await run(process.execPath, [KEYSTATE_BIN, "build", MODULE_DIR, "-o", join(buildDir, "presence.wasm")], { cwd: REPO_ROOT });
});

test.after.always(async () => {
  if (buildDir) await removeDir(buildDir);
});

test("a Connect cancelled while Redis is down still takes the user offline once Redis is back", async (t) => {
  const redisDir = await tempDirFor(t, "presence-redis");
  let redis = await startRedis({ appendOnly: true, dataDir: redisDir });
  t.teardown(() => redis.stop());
  const dataDir = await tempDirFor(t, "presence-storage");
  await writeFile(join(dataDir, "admin-token"), "presence-token\n", { mode: 0o600 });
  const node = await startNodeProcess({ dataDir, redisUrl: redis.url, extraArgs: ["--admin-token", "presence-token"] });
  t.teardown(() => node.kill());
  await run(process.execPath, [KEYSTATE_BIN, "deploy", join(buildDir, "presence.wasm"), "--admin", node.adminUrl, "--token", node.token]);

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
