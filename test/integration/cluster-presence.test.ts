// Presence across the cluster (replicated entities on every node): a Monitor on node B and
// an HTTP/NDJSON Monitor on node C see a Connect made on node A go online and offline; B's
// stream never depends on A. When A dies (SIGKILL) holding a Connect, the survivors retire
// A's vote and the user goes offline within a few lease periods, with every stream on B and C
// still open.
import test from "ava";
import { join } from "node:path";
import { deploy, exampleWasm } from "../helpers/deployed-node.js";
import { streamClient } from "../helpers/grpc-stream.js";
import { REPO_ROOT } from "../helpers/node-process.js";
import { startRedis } from "../helpers/redis-server.js";
import { listedModule, pollUntil, startClusterNode, stopAll, type ClusterNodeProcess } from "../helpers/cluster-nodes.js";

const PROTO_DIR = join(REPO_ROOT, "modules", "presence", "proto");
const SERVICE = "keystate.examples.presence.Presence";
const LEASE_MS = 2000;

test("Connect on A, Monitor on B and C: online, offline, and offline again once A dies holding a Connect", async (t) => {
  t.timeout(90_000);
  const redis = await startRedis();
  t.teardown(() => redis.stop());
  const nodes: ClusterNodeProcess[] = [];
  t.teardown(() => stopAll(nodes));
  const options = { redisUrl: redis.url, cluster: "presence", leaseMs: LEASE_MS };
  for (const nodeId of ["a", "b", "c"]) nodes.push(await startClusterNode({ ...options, nodeId }));
  const [a, b, c] = nodes as [ClusterNodeProcess, ClusterNodeProcess, ClusterNodeProcess];
  await deploy(a, exampleWasm("presence"));
  for (const node of [b, c]) await pollUntil(`${node.nodeId} to load presence`, 10_000, async () => ((await listedModule(node, "presence"))?.services.includes(SERVICE) ? true : undefined));

  const onA = streamClient(PROTO_DIR, "presence.proto", SERVICE, a.grpcPort);
  const onB = streamClient(PROTO_DIR, "presence.proto", SERVICE, b.grpcPort);
  t.teardown(() => (onA.close(), onB.close()));
  const monitor = onB.open<{ online: boolean }>("Monitor", { name: "zoe" }, { deadlineMs: 80_000 });
  t.deepEqual(await monitor.nth(0), { online: false });
  const http = new AbortController();
  t.teardown(() => http.abort());
  const ndjson = await fetch(`${c.adminUrl}/${SERVICE}/Monitor`, { method: "POST", body: JSON.stringify({ name: "zoe" }), signal: http.signal });
  t.is(ndjson.status, 200);
  const lines = ndjsonLines(ndjson);

  let connect = onA.open("Connect", { name: "zoe" }, { deadlineMs: 80_000 });
  t.deepEqual(await monitor.nth(1), { online: true }, "B sees the Connect made on A");
  t.deepEqual(await lines.until((line) => line.online === true), { online: true }, "C's HTTP/NDJSON stream sees it too");
  connect.cancel();
  t.deepEqual(await monitor.nth(2), { online: false }, "and the cancel on A");
  t.deepEqual(await lines.until((line) => line.online !== true), {}, "C too (proto3 JSON omits a false bool)");

  connect = onA.open("Connect", { name: "zoe" }, { deadlineMs: 80_000 });
  t.deepEqual(await monitor.nth(3), { online: true });
  const killedAt = Date.now();
  await a.kill("SIGKILL");
  // A's heartbeat lapses after one lease; then B and C retire its vote at their next sweep.
  t.deepEqual(await monitor.nth(4, 6 * LEASE_MS), { online: false }, "A's vote is retired once A is gone");
  const offlineAfterMs = Date.now() - killedAt;
  t.log(`the dead node's vote was retired ${offlineAfterMs} ms after its SIGKILL (lease ${LEASE_MS} ms)`);
  t.deepEqual(await lines.until((line) => line.online !== true), {});
  t.is(monitor.messages.length, 5, "B's Monitor stayed open throughout, one message per flip");
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
