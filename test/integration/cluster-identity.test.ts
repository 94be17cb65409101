// Who may join a cluster (../shared/CLUSTER.md, "two nodes started with the same id", and the
// fixed shard count): a second live process with a node id already in use refuses to start
// while the first keeps serving; a node started with another shard count than the cluster
// was created with refuses to join and says which count to use; and the same id started
// again after its process was killed (kill -9) joins once the old heartbeat has lapsed.
import test from "ava";
import { spawn } from "node:child_process";
import { Redis } from "ioredis";
import { RedisLayout } from "../../host/journal/redis-keys.js";
import {
  CLUSTER_TOKEN,
  clusterView,
  counterClient,
  deployExamples,
  logEntries,
  pollUntil,
  settledOn,
  startClusterNode,
  stopAll,
  waitForCluster,
  type ClusterNodeProcess,
} from "../helpers/cluster-nodes.js";
import type { ContractClient } from "../helpers/grpc-client.js";
import { KEYSTATE_BIN, REPO_ROOT } from "../helpers/node-process.js";
import { startRedis, type RunningRedis } from "../helpers/redis-server.js";
import { tempDirFor } from "../helpers/temp-dir.js";

const LEASE_MS = 3000;

let redis: RunningRedis;
test.before(async () => {
  redis = await startRedis();
});
test.after.always(async () => {
  await redis?.stop();
});

interface Refused {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  /** Date.now() when the process exited. */
  readonly exitedAt: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs `keystate serve` joining `cluster` and waits for it to exit (it is expected to refuse); SIGKILL after `timeoutMs`. */
async function serveExpectingRefusal(dataDir: string, cluster: string, args: readonly string[], timeoutMs = 30_000): Promise<Refused> {
  const child = spawn(
    process.execPath,
    [KEYSTATE_BIN, "serve", "--grpc-port", "0", "--http-port", "0", "--data", dataDir, "--redis", redis.url, "--cluster", cluster, "--lease-ms", String(LEASE_MS), "--admin-token", CLUSTER_TOKEN, ...args],
    { cwd: REPO_ROOT, stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, KEYSTATE_LOG_LEVEL: "info" } },
  );
  let stdout = "";
  let stderr = "";
  child.stdout!.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr!.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
  const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) => child.once("exit", (c, s) => resolve([c, s])));
  const exitedAt = Date.now();
  clearTimeout(timer);
  // The pipes may still hold the last lines: wait for them to close.
  await Promise.all([child.stdout!, child.stderr!].map((s) => (s.readableEnded || s.destroyed ? undefined : new Promise((r) => s.once("close", r)))));
  return { code, signal, exitedAt, stdout, stderr };
}

/** The JSON log lines of a captured stdout. */
function entries(stdout: string): Array<{ msg?: string; time: number; [field: string]: unknown }> {
  return stdout.split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l) as { msg?: string; time: number });
}

test.serial("a second process with a node id in use refuses to start within about a lease, while the first keeps serving", async (t) => {
  const cluster = `ident-dup-${process.pid}`;
  const nodes: Array<ClusterNodeProcess | undefined> = [];
  const clients: ContractClient[] = [];
  let stopping = false;
  t.teardown(async () => {
    stopping = true; // a test that failed half-way must not leave its caller running
    for (const client of clients) client.close();
    await stopAll(nodes);
  });
  const first = await startClusterNode({ redisUrl: redis.url, cluster, nodeId: "twin", leaseMs: LEASE_MS });
  nodes.push(first);
  await deployExamples(first, ["counter"]);
  await waitForCluster(first, settledOn(["twin"]));
  const client = counterClient(first);
  clients.push(client);

  // Calls to the first node keep going the whole time the second tries to start.
  let acknowledged = 0;
  const failures: string[] = [];
  const load = (async () => {
    while (!stopping) {
      await client.methods.Increase!({ counterId: "twin-counter", value: 1 }, { deadlineMs: 5000 }).then(
        () => acknowledged++,
        (err: { code?: number; details?: string }) => failures.push(`code ${err.code}: ${err.details}`),
      );
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  })();

  const spawnedAt = Date.now();
  const second = await serveExpectingRefusal(await tempDirFor(t, "twin-2"), cluster, ["--node-id", "twin"]);
  const waited = entries(second.stdout).find((e) => e.msg?.startsWith("a heartbeat with this node id exists"));
  t.log(`second process exited with ${second.code} after ${second.exitedAt - spawnedAt} ms (${waited ? second.exitedAt - waited.time : "?"} ms after its first join attempt); stderr: ${second.stderr.trim()}`);
  t.not(second.code, 0, "the second process exits non-zero");
  t.is(second.signal, null, "it exits on its own (not killed by the test's timeout)");
  t.regex(second.stderr, /node id twin is already in use/, "the message names the id");
  t.false(second.stdout.includes('"msg":"node started"'), "the second process never started serving");
  // It gives up one heartbeat TTL (= lease) + 500 ms after its first join attempt (+ up to one
  // 200 ms retry), then shuts down what it opened and exits: "about lease + 1 s". The bound
  // allows another 500 ms for that shutdown on a loaded 2-core box (seen: 4.2 s at load 13).
  t.truthy(waited, "the second process saw the live heartbeat and waited for it to lapse");
  if (waited) {
    const refusedAfter = second.exitedAt - waited.time;
    t.true(refusedAfter >= LEASE_MS, `it waited a full heartbeat TTL for the id to free up (${refusedAfter} ms)`);
    t.true(refusedAfter <= LEASE_MS + 1500, `it exited within about lease + 1 s of its first join attempt (${refusedAfter} ms)`);
  }

  // The first node keeps serving after the refusal, and its next heartbeats succeed: the
  // heartbeat key keeps the token it held before (the first node's), refreshed to a full TTL
  // (a beat that found another token would make the first node stop and exit).
  const atRefusal = acknowledged;
  const heartbeat = new RedisLayout(cluster).clusterKey("hb:twin");
  const direct = new Redis(redis.url, { maxRetriesPerRequest: 1 });
  t.teardown(() => direct.disconnect());
  const token = await direct.get(heartbeat);
  t.truthy(token, "the first node's heartbeat is there");
  for (let beats = 0; beats < 2; ) {
    // Refreshed iff the TTL is above where it would have decayed to (50 ms margin for the
    // reads' own timing): a plain "above the last reading" misses a beat that lands while
    // the last reading was itself taken right after one.
    const before = await direct.pttl(heartbeat);
    const readAt = Date.now();
    const refreshed = async () => ((await direct.pttl(heartbeat)) > before - (Date.now() - readAt) + 50 ? true : undefined);
    await pollUntil("the first node's next heartbeat", 2 * LEASE_MS, refreshed, 20);
    t.is(await direct.get(heartbeat), token, "the heartbeat is still the first node's");
    beats++;
  }
  await pollUntil("calls answered after the refusal", 5000, () => (acknowledged > atRefusal ? true : undefined), 20);
  stopping = true;
  await load;
  t.deepEqual(failures, [], "no call to the first node failed");
  t.true(acknowledged > atRefusal, "the first node answered calls after the refusal");
  t.is(first.child.exitCode, null, "the first node is still running");
  t.false(logEntries(first).some((e) => e.msg === "another process now holds this node id; this node stops serving"));
  const view = await clusterView(first);
  t.deepEqual(view.nodes.map((n) => [n.id, n.alive, n.shards.length]), [["twin", true, 256]]);
  const reply = (await client.methods.Get!({ counterId: "twin-counter" })) as { value: string };
  t.is(Number(reply.value), acknowledged, "every acknowledged increment is there");
});

test.serial("a node started with another shard count than the cluster's refuses to join and names the stored count", async (t) => {
  const cluster = `ident-count-${process.pid}`;
  const nodes: Array<ClusterNodeProcess | undefined> = [];
  t.teardown(() => stopAll(nodes));
  const first = await startClusterNode({ redisUrl: redis.url, cluster, nodeId: "count-256", leaseMs: LEASE_MS });
  nodes.push(first);
  await waitForCluster(first, settledOn(["count-256"]));

  const other = await serveExpectingRefusal(await tempDirFor(t, "count-64"), cluster, ["--node-id", "count-64", "--shard-count", "64"]);
  t.log(`exit ${other.code}; stderr: ${other.stderr.trim()}`);
  t.not(other.code, 0);
  t.is(other.signal, null);
  t.regex(other.stderr, new RegExp(`cluster ${cluster} has 256 shards`), "the message tells the stored count");
  t.regex(other.stderr, /--shard-count 64/, "and the count it was started with");
  t.regex(other.stderr, /--shard-count 256/, "and how to start it instead");
  t.false(other.stdout.includes('"msg":"node started"'));

  // The cluster is as it was: one node, 256 shards, all of them on that node.
  const view = await waitForCluster(first, settledOn(["count-256"]));
  t.is(view.shardCount, 256);
  t.deepEqual(view.nodes.map((n) => n.id), ["count-256"]);
});

test.serial("the same node id started again after a kill -9 joins once the old heartbeat has lapsed, with its data intact", async (t) => {
  const cluster = `ident-restart-${process.pid}`;
  const nodes: Array<ClusterNodeProcess | undefined> = [];
  const clients: ContractClient[] = [];
  const direct = new Redis(redis.url, { lazyConnect: true, maxRetriesPerRequest: 1 });
  t.teardown(async () => {
    for (const client of clients) client.close();
    direct.disconnect();
    await stopAll(nodes);
  });
  const before = await startClusterNode({ redisUrl: redis.url, cluster, nodeId: "phoenix", leaseMs: LEASE_MS });
  nodes.push(before);
  await deployExamples(before, ["counter"]);
  await waitForCluster(before, settledOn(["phoenix"]));
  const client = counterClient(before);
  clients.push(client);
  for (let i = 0; i < 5; i++) await client.methods.Increase!({ counterId: "phoenix-counter", value: 3 });

  await before.kill("SIGKILL");
  // When the dead process's heartbeat runs out, in Redis's own time.
  await direct.connect();
  const heartbeat = new RedisLayout(cluster).clusterKey("hb:phoenix");
  const askedAt = Date.now();
  const pttl = await direct.pttl(heartbeat);
  // Redis measured the PTTL at some moment after askedAt: the heartbeat lapses no earlier than this.
  const lapsesAt = askedAt + pttl;
  t.true(pttl > 0, `the killed process's heartbeat is still there right after the kill (PTTL ${pttl})`);

  const after = await startClusterNode({ redisUrl: redis.url, cluster, nodeId: "phoenix", leaseMs: LEASE_MS, dataDir: before.dataDir });
  nodes.push(after);
  const joined = logEntries(after).find((e) => e.msg === "joined the cluster");
  t.truthy(joined, "the restarted process joined");
  t.log(`old heartbeat lapsed ${pttl} ms after the kill; the restarted process joined ${joined ? joined.time - lapsesAt : "?"} ms after that`);
  // Redis expires keys to the millisecond; both clocks are this machine's, so allow 2 ms of rounding.
  if (joined) t.true(joined.time >= lapsesAt - 2, "it joined only after the old heartbeat lapsed");
  if (joined && pttl > 500) t.true(logEntries(after).some((e) => e.msg?.startsWith("a heartbeat with this node id exists")), "it waited for the old heartbeat");

  // It serves the cluster again: every shard back (the old leases ran out), the acknowledged state intact.
  await waitForCluster(after, settledOn(["phoenix"]), 15_000);
  const again = counterClient(after);
  clients.push(again);
  const value = await pollUntil("the counter to answer after the restart", 10_000, () =>
    again.methods.Get!({ counterId: "phoenix-counter" }, { deadlineMs: 2000 }).then((r: { value: string }) => Number(r.value), () => undefined),
  );
  t.is(value, 15);
  const increased = (await again.methods.Increase!({ counterId: "phoenix-counter", value: 1 })) as { value: string };
  t.is(Number(increased.value), 16);
  t.is(await direct.get(heartbeat).then((v) => v !== null), true, "the restarted process holds the heartbeat");
});
