// `keystate dev-cluster` pieces that need no cluster: flag checks, the serve command lines,
// which child lines reach the terminal, port discovery, and the private redis-server.
import test from "ava";
import { existsSync } from "node:fs";
import { readdir } from "node:fs/promises";
import { devClusterOptions, nodeArgs } from "../../host/cli/dev-cluster.js";
import { portsFromLine, shouldRelay } from "../../host/cli/dev-cluster-node.js";
import { answersPing, findOnPath, launchRedis } from "../../host/cli/redis-launcher.js";
import { tempDirFor } from "../helpers/temp-dir.js";

test("flags: defaults, bounds, and a base port that leaves room for every node", (t) => {
  t.deepEqual(devClusterOptions({}), { nodes: 3, basePort: 0, leaseMs: undefined, verbose: false });
  t.deepEqual(devClusterOptions({ nodes: "2", "base-port": "9000", "lease-ms": "2000", verbose: true }), { nodes: 2, basePort: 9000, leaseMs: 2000, verbose: true });
  t.throws(() => devClusterOptions({ nodes: "0" }), { message: /--nodes must be a whole number >= 1, got "0"/ });
  t.throws(() => devClusterOptions({ "lease-ms": "fast" }), { message: /--lease-ms/ });
  t.throws(() => devClusterOptions({ nodes: "3", "base-port": "65531" }), { message: /no room for 3 nodes/ });
});

test("each node is a cluster member with its own id, ports and data dir; only the first deploys the examples", (t) => {
  const options = devClusterOptions({ nodes: "3", "base-port": "9000", "lease-ms": "2000" });
  const first = nodeArgs(1, options, "redis://127.0.0.1:7000", "/tmp/dc", "tok");
  t.deepEqual(first, [
    "serve", "--redis", "redis://127.0.0.1:7000", "--cluster", "dev", "--node-id", "node-1",
    "--grpc-port", "9000", "--http-port", "9001", "--data", "/tmp/dc/node-1", "--admin-token", "tok",
    "--lease-ms", "2000", "--examples",
  ]);
  const third = nodeArgs(3, options, "redis://127.0.0.1:7000", "/tmp/dc", "tok");
  t.is(third[third.indexOf("--grpc-port") + 1], "9004");
  t.is(third[third.indexOf("--http-port") + 1], "9005");
  t.false(third.includes("--examples"));
  const free = nodeArgs(2, devClusterOptions({}), "redis://x", "/tmp/dc", "tok");
  t.is(free[free.indexOf("--grpc-port") + 1], "0");
  t.false(free.includes("--lease-ms"));
});

test("only warnings, errors and stderr reach the terminal unless --verbose", (t) => {
  const info = JSON.stringify({ level: 30, msg: "shard acquired" });
  const warn = JSON.stringify({ level: 40, msg: "shard lost" });
  t.false(shouldRelay(info, false, false));
  t.true(shouldRelay(warn, false, false));
  t.true(shouldRelay(JSON.stringify({ level: 50, msg: "boom" }), false, false));
  t.false(shouldRelay("Keystate node ready: gRPC on 127.0.0.1:1, admin HTTP on 127.0.0.1:2", false, false));
  t.true(shouldRelay("TypeError: x is undefined", true, false));
  t.true(shouldRelay(info, false, true));
});

test("ports come from the `node started` log line or the banner", (t) => {
  t.deepEqual(portsFromLine(JSON.stringify({ level: 30, msg: "node started", grpcPort: 41001, httpPort: 41002, nodeId: "node-1" })), { grpcPort: 41001, httpPort: 41002 });
  t.deepEqual(portsFromLine("Keystate node ready: gRPC on 127.0.0.1:41003, admin HTTP on 127.0.0.1:41004 (store: redis)"), { grpcPort: 41003, httpPort: 41004 });
  t.is(portsFromLine(JSON.stringify({ level: 30, msg: "shard acquired", shard: 3 })), undefined);
  t.is(portsFromLine("{not json"), undefined);
  t.is(portsFromLine("Admin token: abc"), undefined);
});

test("the launcher starts redis-server with an append-only file in the given dir and stops it", async (t) => {
  const dir = await tempDirFor(t, "redis-launcher");
  const redis = await launchRedis(dir);
  t.teardown(() => redis.child.kill("SIGKILL"));
  t.regex(redis.url, /^redis:\/\/127\.0\.0\.1:\d+$/);
  t.true(await answersPing(redis.port));
  const files = await readdir(dir);
  t.true(files.some((f) => f.startsWith("appendonly")), files.join(", "));
  await redis.stop();
  t.true(redis.child.exitCode !== null || redis.child.signalCode !== null, "stop() resolves after the exit");
  t.false(await answersPing(redis.port));
  t.true(existsSync(dir), "the caller owns the data dir");
});

test("findOnPath looks only on the PATH it is given", (t) => {
  t.is(findOnPath("redis-server", ""), undefined);
  t.is(findOnPath("sh", "/nonexistent:/bin"), "/bin/sh");
});
