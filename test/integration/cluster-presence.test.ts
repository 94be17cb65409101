// Server streams across the cluster: a presence user whose entity lives on node A is
// monitored and connected through node B (gRPC and HTTP/NDJSON): B relays A's stream. When
// A dies, B's relayed stream ends with a retryable status instead of hanging, and once B owns
// the entity a new Monitor shows the user offline (A's Connect died with A).
import test from "ava";
import { status } from "@grpc/grpc-js";
import { join } from "node:path";
import { deploy, exampleWasm } from "../helpers/deployed-node.js";
import { streamClient } from "../helpers/grpc-stream.js";
import { REPO_ROOT } from "../helpers/node-process.js";
import { startRedis } from "../helpers/redis-server.js";
import { balancedOn, keyOwnedBy, listedModule, pollUntil, startClusterNode, stopAll, waitForCluster, type ClusterNodeProcess } from "../helpers/cluster-nodes.js";

const PROTO_DIR = join(REPO_ROOT, "modules", "presence", "proto");
const SERVICE = "keystate.examples.presence.Presence";
/** Replicated entities are stored (and sharded) under this persistence id. */
const STORAGE_PID = "replicated:presence";

test("a stream of an entity on node A, opened through node B, is relayed both ways and ends retryably when A dies", async (t) => {
  t.timeout(60_000);
  const redis = await startRedis();
  t.teardown(() => redis.stop());
  const nodes: ClusterNodeProcess[] = [];
  t.teardown(() => stopAll(nodes));
  const options = { redisUrl: redis.url, cluster: "streams", leaseMs: 2000 };
  const a = await startClusterNode({ ...options, nodeId: "a" });
  nodes.push(a);
  const b = await startClusterNode({ ...options, nodeId: "b" });
  nodes.push(b);
  await deploy(a, exampleWasm("presence"));
  await pollUntil("B to load presence", 10_000, async () => ((await listedModule(b, "presence"))?.services.includes(SERVICE) ? true : undefined));
  const view = await waitForCluster(a, balancedOn(["a", "b"]));
  const user = keyOwnedBy(view, "a", STORAGE_PID, "user-");

  const viaB = streamClient(PROTO_DIR, "presence.proto", SERVICE, b.grpcPort);
  t.teardown(() => viaB.close());
  const monitor = viaB.open<{ online: boolean }>("Monitor", { name: user }, { deadlineMs: 60_000 });
  t.deepEqual(await monitor.nth(0), { online: false });
  const http = new AbortController();
  t.teardown(() => http.abort());
  const ndjson = await fetch(`${b.adminUrl}/${SERVICE}/Monitor`, { method: "POST", body: JSON.stringify({ name: user }), signal: http.signal });
  t.is(ndjson.status, 200);
  const lines = ndjsonLines(ndjson);

  const connect = viaB.open("Connect", { name: user }, { deadlineMs: 60_000 });
  t.deepEqual(await monitor.nth(1), { online: true }, "B relays the change A's entity made on B's own Connect");
  t.deepEqual(await lines.until((line) => line.online === true), { online: true }, "the HTTP/NDJSON stream through B sees it too");
  connect.cancel();
  t.deepEqual(await monitor.nth(2), { online: false }, "the cancel reached A's entity through the relay");

  const again = viaB.open("Connect", { name: user }, { deadlineMs: 60_000 });
  t.deepEqual(await monitor.nth(3), { online: true });
  const killedAt = Date.now();
  await a.kill("SIGKILL");
  const ended = await monitor.ended;
  t.is(ended.code, status.UNAVAILABLE, `the relayed stream ends retryably (${ended.details})`);
  t.true(Date.now() - killedAt < 10_000, "it does not hang until its deadline");
  t.is((await again.ended).code, status.UNAVAILABLE);

  // B takes A's shards once their leases lapse; the user's vote died with A's Connect.
  await waitForCluster(b, (v) => v.nodes.find((n) => n.id === "b")?.shards.length === v.shardCount, 20_000);
  const after = viaB.open<{ online: boolean }>("Monitor", { name: user }, { deadlineMs: 20_000 });
  t.deepEqual(await after.nth(0, 10_000), { online: false });
  after.cancel();
});

/** Newline-delimited JSON from a fetch response, read as it arrives. */
function ndjsonLines(response: Response): { until(check: (line: any) => boolean, ms?: number): Promise<any> } {
  const reader = response.body!.getReader();
  const decoder = new TextDecoder();
  let buffered = "";
  return {
    async until(check, ms = 5_000) {
      const deadline = Date.now() + ms;
      for (;;) {
        const newline = buffered.indexOf("\n");
        if (newline >= 0) {
          const line = JSON.parse(buffered.slice(0, newline)) as unknown;
          buffered = buffered.slice(newline + 1);
          if (check(line)) return line;
          continue;
        }
        if (Date.now() > deadline) throw new Error("no matching NDJSON line in time");
        const { value, done } = await reader.read();
        if (done) throw new Error("the NDJSON stream ended");
        buffered += decoder.decode(value, { stream: true });
      }
    },
  };
}
