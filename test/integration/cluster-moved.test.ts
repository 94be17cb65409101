// A forwarded call to a node that just lost the shard (../shared/CLUSTER.md, "forwarded call to
// a node that just lost the shard"): one "moved" retry, then success.
//
// Nodes A and B; counter E lives on a shard A owns that the assignment gives to C once C
// joins. Calls to E go through B (B forwards them to A) in a steady stream. B is frozen with
// SIGSTOP, C joins, and A hands E's shard to C while B sleeps, so B's routing table still
// names A. The calls the client sent meanwhile sit in B's socket; on SIGCONT B routes them
// with that stale table to A, A answers "moved", B re-reads the lease and retries at C. The
// client must see every call succeed, E must hold exactly the acknowledged increments, and B's
// metrics must show the "moved" answers it retried (and no forward that failed).
import test from "ava";
import { readFile } from "node:fs/promises";
import { assignShards } from "../../host/cluster/assignment.js";
import { shardOf } from "../../host/journal/shards.js";
import {
  clusterView,
  counterClient,
  deployExamples,
  heldShards,
  pollUntil,
  settledOn,
  startClusterNode,
  stopAll,
  waitForCluster,
  waitForHeldBy,
  type ClusterNodeProcess,
} from "../helpers/cluster-nodes.js";
import type { ContractClient } from "../helpers/grpc-client.js";
import { scrapeMetrics } from "../helpers/metrics-scrape.js";
import { startRedis } from "../helpers/redis-server.js";

const LEASE_MS = 3000;
/**
 * B's own lease (and so its heartbeat TTL). B sleeps for C's whole start-up plus the hand-off
 * (seconds on a loaded box); with 3000 ms B would drop its own shards (safety deadline) or
 * look dead to A and C (heartbeat lapsed), which changes the assignment and so E's target.
 * A long lease on B keeps B a live member holding its shards throughout; nothing here waits
 * for one of B's leases to run out.
 */
const B_LEASE_MS = 60_000;
const COUNTER_PID = "counter";
const SHARDS = 256;
const WORKERS = 3;
/** Client deadline per call: longer than B's pause, so a call parked in B's socket gets its answer. */
const CALL_DEADLINE_MS = 30_000;

const forwards = (samples: Map<string, number>, result: string) => samples.get(`keystate_cluster_forwards_total{result="${result}"}`) ?? 0;

test.serial("a call forwarded to a node that just lost the shard gets one moved retry, then success; no error reaches the client", async (t) => {
  const redis = await startRedis();
  t.teardown(() => redis.stop());
  const cluster = `moved-${process.pid}`;
  const nodes: Array<ClusterNodeProcess | undefined> = [];
  const clients: ContractClient[] = [];
  let stopping = false;
  t.teardown(async () => {
    stopping = true; // a test that failed half-way must not leave its callers running
    for (const node of nodes) if (node?.child.signalCode === null && node.child.exitCode === null) node.child.kill("SIGCONT");
    for (const client of clients) client.close();
    await stopAll(nodes);
  });

  const a = await startClusterNode({ redisUrl: redis.url, cluster, nodeId: "node-a", leaseMs: LEASE_MS });
  nodes.push(a);
  await deployExamples(a, ["counter"]);
  const b = await startClusterNode({ redisUrl: redis.url, cluster, nodeId: "node-b", leaseMs: B_LEASE_MS });
  nodes.push(b);
  await waitForCluster(a, settledOn(["node-a", "node-b"]));
  // Hand-offs done: A and B hold exactly what the assignment gives each (by their own account).
  const twoNodes = assignShards(SHARDS, ["node-a", "node-b"]);
  const before = await waitForHeldBy([a, b], 20_000, (h) => [...h].every(([id, shards]) => shards.every((s) => twoNodes[s] === id)));

  // E: a counter on a shard A holds that the assignment moves to C when C joins.
  const target = assignShards(SHARDS, ["node-a", "node-b", "node-c"]);
  const ofA = new Set(before.get("node-a"));
  let e = "";
  for (let i = 0; e === ""; i++) {
    const shard = shardOf(COUNTER_PID, `moved-${i}`, SHARDS);
    if (ofA.has(shard) && target[shard] === "node-c") e = `moved-${i}`;
  }
  const shard = shardOf(COUNTER_PID, e, SHARDS);
  t.log(`E = ${e} on shard ${shard}: owned by node-a, assigned to node-c once it joins`);

  const viaB = counterClient(b);
  clients.push(viaB);
  // B serves the counter (it followed A's deploy) and forwards E to A: the channels B -> A and client -> B are open.
  await pollUntil("B to answer the counter", 20_000, () => viaB.methods.Get!({ counterId: e }, { deadlineMs: 2000 }).then(() => true, () => undefined), 100);
  let acknowledged = 0;
  for (let i = 0; i < 5; i++) {
    await viaB.methods.Increase!({ counterId: e, value: 1 });
    acknowledged++;
  }
  const warm = (await scrapeMetrics(b.adminUrl)).samples;
  t.true(forwards(warm, "ok") >= 5, "B forwarded the warm-up calls for E to A");

  // The steady stream of calls to E through B; every failure is kept with its code and message.
  const failures: string[] = [];
  let sent = 0;
  const worker = async () => {
    while (!stopping) {
      sent++;
      try {
        await viaB.methods.Increase!({ counterId: e, value: 1 }, { deadlineMs: CALL_DEADLINE_MS });
        acknowledged++;
      } catch (err) {
        const { code, details } = err as { code?: number; details?: string };
        failures.push(`code ${code}: ${details}`);
      }
    }
  };
  const workers = Array.from({ length: WORKERS }, worker);
  await pollUntil("calls to E through B to flow", 10_000, () => (acknowledged >= 20 ? true : undefined), 10);

  // B sleeps while C joins and A hands E's shard to C.
  b.child.kill("SIGSTOP");
  const pausedAt = Date.now();
  const parked = sent - (acknowledged - 5) - failures.length; // calls sent to B and not answered yet
  const c = await startClusterNode({ redisUrl: redis.url, cluster, nodeId: "node-c", leaseMs: LEASE_MS });
  nodes.push(c);
  // C holds E's shard by its own account (so A released it), and B is still a live member.
  await pollUntil("C to hold E's shard", 20_000, async () => ((await heldShards([c])).get("node-c")!.includes(shard) ? true : undefined), 50);
  t.true((await clusterView(a)).nodes.some((n) => n.id === "node-b" && n.alive), "B is a live member while it sleeps");
  // B is still frozen (state T in /proc): the hand-off happened entirely while it slept.
  const state = (await readFile(`/proc/${b.child.pid}/stat`, "utf8")).replace(/^.*\) /s, "")[0];
  t.is(state, "T", "B is still stopped when A has handed E's shard to C");
  const pausedMs = Date.now() - pausedAt;

  // Wake B; one more call goes to B at once, on top of the ones parked in its socket.
  b.child.kill("SIGCONT");
  sent++;
  await viaB.methods.Increase!({ counterId: e, value: 1 }, { deadlineMs: CALL_DEADLINE_MS }).then(
    () => acknowledged++,
    (err: { code?: number; details?: string }) => failures.push(`code ${err.code}: ${err.details}`),
  );
  const afterWake = acknowledged;
  await pollUntil("more calls to E through B after the wake-up", 10_000, () => (acknowledged >= afterWake + 20 ? true : undefined), 10);
  stopping = true;
  await Promise.all(workers);
  t.log(`B paused ${pausedMs} ms with ${parked} call(s) parked in its socket; ${sent} calls sent through B during the run`);

  t.deepEqual(failures, [], "no call to E through B failed");
  t.is(acknowledged, 5 + sent, "every call sent was acknowledged");

  const metrics = (await scrapeMetrics(b.adminUrl)).samples;
  const moved = forwards(metrics, "moved") - forwards(warm, "moved");
  t.log(`B's forwards during the run: ok +${forwards(metrics, "ok") - forwards(warm, "ok")}, moved +${moved}, unreachable +${forwards(metrics, "unreachable") - forwards(warm, "unreachable")}, error +${forwards(metrics, "error") - forwards(warm, "error")}`);
  t.true(moved >= 1, "B forwarded with its stale table to A, and A answered moved");
  t.is(forwards(metrics, "error"), 0, "no forward from B failed");
  t.is(forwards(metrics, "unreachable"), 0, "no forward from B found its peer unreachable");

  // E holds exactly the acknowledged increments, read at its new owner and through the others.
  await waitForCluster(a, settledOn(["node-a", "node-b", "node-c"]), 20_000);
  const held = await waitForHeldBy([a, b, c], 20_000);
  t.true(held.get("node-c")!.includes(shard), "E's shard stays with C");
  for (const node of [c, a, b]) {
    const client = counterClient(node);
    clients.push(client);
    const reply = (await client.methods.Get!({ counterId: e })) as { value: string };
    t.is(Number(reply.value), acknowledged, `E read through ${node.nodeId}`);
  }
  // Nothing of this changed A's or C's view of B: B stayed a live member the whole time.
  t.true((await clusterView(c)).nodes.every((n) => n.alive));
});
