// Replicated entities of all eight CRDT types on three real node processes over one real
// Redis: concurrent writes on every node with 20% of each node's outgoing changes dropped
// converge (anti-entropy) to what one sequential replica would hold; a node killed with
// SIGKILL and restarted comes back with the merged state and keeps counting correctly, and
// after every node is killed at once the restarted nodes and a new one read everything;
// majority / all write consistency is checked by pausing nodes with SIGSTOP.
// The longer run of the same checker is scripts/crdt-convergence.ts.
import test from "ava";
import { status } from "@grpc/grpc-js";
import { buildBeforeAll } from "../helpers/built-module.js";
import { FIXTURE_DIR, percentile, replicationClients, type ReplicationClients } from "../helpers/crdt-convergence.js";
import { runConvergence } from "../helpers/crdt-convergence-run.js";
import { statusOf } from "../helpers/grpc-client.js";
import { deploy } from "../helpers/deployed-node.js";
import { listedModule, pollUntil, startClusterNode, stopAll, type ClusterNodeProcess } from "../helpers/cluster-nodes.js";
import { startRedis } from "../helpers/redis-server.js";

const wasm = buildBeforeAll(test, FIXTURE_DIR);
const ANTI_ENTROPY_MS = 500;
/** Generous for a loaded 2-core box; the figure itself is logged (and measured at length by the script). */
const CONVERGE_WITHIN_MS = 15_000;

test("all eight types written concurrently on three nodes, 20% of changes dropped: every replica converges to the sequential value; a SIGKILLed node rejoins with the merged state; a whole-cluster kill -9 loses nothing", async (t) => {
  t.timeout(180_000);
  const settings = { nodes: 3, rounds: 4, keys: 6, writesPerNode: 240, writersPerNode: 3, drop: 0.2, antiEntropyMs: ANTI_ENTROPY_MS, restartEvery: 2, convergeWithinMs: CONVERGE_WITHIN_MS, wholeClusterRestart: true };
  const result = await runConvergence(settings, (line) => t.log(line));
  for (const round of result.rounds) {
    t.deepEqual(round.failures, [], "every write was acknowledged");
    t.deepEqual(round.differences, [], "every node reads what one sequential replica would hold");
    t.true(round.convergedMs !== undefined, `converged within ${CONVERGE_WITHIN_MS} ms`);
  }
  t.truthy(result.rounds[2]?.restartedNode, "a node was killed and restarted before round 2");
  t.deepEqual(result.afterRestarts, [], "the restarted node (and every other), then every node after a whole-cluster kill -9 plus a new one, read the earlier rounds' values");
  const m = result.metrics;
  t.true(m["keystate_crdt_changes_dropped_total"]! > 0 && m["keystate_crdt_copies_pulled_total"]! > 0, "changes were dropped, and anti-entropy pulled copies");
  const times = result.rounds.map((round) => round.convergedMs!);
  t.log(`convergence after the last write: p50 ${percentile(times, 50)} ms, max ${Math.max(...times)} ms over ${times.length} rounds (anti-entropy every ${ANTI_ENTROPY_MS} ms, 20% dropped); ${JSON.stringify(m)}`);
});

test("write consistency: majority answers with one of three nodes paused, all times out keeping the local write, majority times out with two paused; the paused nodes catch up on resume", async (t) => {
  t.timeout(120_000);
  const redis = await startRedis();
  t.teardown(() => redis.stop());
  const nodes: ClusterNodeProcess[] = [];
  t.teardown(() => stopAll(nodes));
  // A long lease: a paused node still counts as a member (its heartbeat alive) for the whole check.
  const options = { redisUrl: redis.url, cluster: "consistency", leaseMs: 6000 };
  for (const nodeId of ["a", "b", "c"]) nodes.push(await startClusterNode({ ...options, nodeId }));
  const [a, b, c] = nodes as [ClusterNodeProcess, ClusterNodeProcess, ClusterNodeProcess];
  await deploy(a, wasm());
  for (const node of [b, c]) await pollUntil(`${node.nodeId} to load the module`, 10_000, async () => ((await listedModule(node, "crdt-replication")) ? true : undefined));
  const clients = replicationClients(nodes.map((node) => node.grpcPort));
  t.teardown(() => clients.close());
  const [onA, onB, onC] = clients.byNode as [ReplicationClients["byNode"][0], ReplicationClients["byNode"][0], ReplicationClients["byNode"][0]];
  const add = (amount: number, consistency: "LOCAL" | "MAJORITY" | "ALL", deadlineMs = 10_000) => onA.GCounters.methods["Add"]!({ key: "hits", amount, consistency }, { deadlineMs });
  const total = async (node: typeof onA) => Number((await node.GCounters.methods["Get"]!({ key: "hits" })).counter);
  // Every node holds the entity (resident), so acknowledgements mean "applied to a live replica".
  for (const node of [onA, onB, onC]) await node.GCounters.methods["Get"]!({ key: "hits" });

  t.is(Number((await add(1, "ALL")).counter), 1, "all three up: `all` answers");
  t.is(await total(onC), 1, "and c has it when it answers");

  c.child.kill("SIGSTOP");
  t.teardown(() => void c.child.kill("SIGCONT"));
  const majority = Date.now();
  t.is(Number((await add(10, "MAJORITY")).counter), 11, "`majority` answers with a and b");
  t.log(`majority write with one node paused: ${Date.now() - majority} ms`);
  const all = await statusOf(add(100, "ALL", 1500));
  t.is(all.code, status.DEADLINE_EXCEEDED, `\`all\` cannot reach the paused node: ${all.details}`);
  t.is(await total(onA), 111, "the local write is kept");
  await pollUntil("b to have the `all` write", 5_000, async () => ((await total(onB)) === 111 ? true : undefined));

  // module.json declares MajorityFlags "majority": a LOCAL request still waits for a majority (a and b here).
  t.true((await onA.MajorityFlags.methods["Enable"]!({ key: "launch", consistency: "LOCAL" })).flag, "a declared majority is met by a and b");

  b.child.kill("SIGSTOP");
  t.teardown(() => void b.child.kill("SIGCONT"));
  const alone = await statusOf(add(1000, "MAJORITY", 1500));
  t.is(alone.code, status.DEADLINE_EXCEEDED, `with two of three paused, \`majority\` is not acknowledged: ${alone.details}`);
  t.is(await total(onA), 1111, "and the local write is kept too");
  const declared = await statusOf(onA.MajorityFlags.methods["Enable"]!({ key: "other", consistency: "LOCAL" }, { deadlineMs: 1500 }));
  t.is(declared.code, status.DEADLINE_EXCEEDED, "the entity's declared majority holds even for a LOCAL request");

  b.child.kill("SIGCONT");
  c.child.kill("SIGCONT");
  await pollUntil("b and c to catch up", 15_000, async () => ((await total(onB)) === 1111 && (await total(onC)) === 1111 ? true : undefined));
  t.is(Number((await add(1, "ALL")).counter), 1112, "with everyone back, `all` answers again");
});
