// Replicated entities of all eight CRDT types on three real node processes over one real
// Redis: concurrent writes on every node with 20% of each node's outgoing changes dropped
// converge (anti-entropy) to what one sequential replica would hold; a node killed with
// SIGKILL and restarted comes back with the merged state and keeps counting correctly.
// The longer run of the same checker is scripts/crdt-convergence.ts.
import test from "ava";
import { DROP_DELTAS_ENV } from "../../host/cluster/crdt-replication.js";
import { buildBeforeAll } from "../helpers/built-module.js";
import { FIXTURE_DIR, percentile, replicationClients, runRound, type RoundResult } from "../helpers/crdt-convergence.js";
import { deploy } from "../helpers/deployed-node.js";
import { listedModule, pollUntil, startClusterNode, stopAll, type ClusterNodeProcess } from "../helpers/cluster-nodes.js";
import { startRedis } from "../helpers/redis-server.js";

const wasm = buildBeforeAll(test, FIXTURE_DIR);
const ANTI_ENTROPY_MS = 500;
/** Generous for a loaded 2-core box; the figure itself is logged (and measured at length by the script). */
const CONVERGE_WITHIN_MS = 15_000;

function assertRound(t: { is: (a: unknown, b: unknown, m?: string) => void; deepEqual: (a: unknown, b: unknown, m?: string) => void; true: (a: boolean, m?: string) => void }, round: RoundResult): void {
  t.deepEqual(round.failures, [], "every write was acknowledged");
  t.deepEqual(round.differences, [], "every node reads what one sequential replica would hold");
  t.true(round.convergedMs !== undefined, `converged within ${CONVERGE_WITHIN_MS} ms`);
}

test("all eight types written concurrently on three nodes, 20% of changes dropped: every replica converges to the sequential value; a SIGKILLed node rejoins with the merged state", async (t) => {
  t.timeout(180_000);
  const redis = await startRedis();
  t.teardown(() => redis.stop());
  const nodes: ClusterNodeProcess[] = [];
  t.teardown(() => stopAll(nodes));
  const options = {
    redisUrl: redis.url,
    cluster: "crdts",
    extraArgs: ["--anti-entropy-ms", String(ANTI_ENTROPY_MS)],
    env: { [DROP_DELTAS_ENV]: "0.2" },
  };
  for (const nodeId of ["a", "b", "c"]) nodes.push(await startClusterNode({ ...options, nodeId }));
  await deploy(nodes[0]!, wasm());
  for (const node of nodes.slice(1)) await pollUntil(`${node.nodeId} to load the module`, 10_000, async () => ((await listedModule(node, "crdt-replication")) ? true : undefined));
  t.true(nodes.every((node) => node.output.join("").includes("FAULT INJECTION ON")), "the fault injection is loud in every node's log");

  let clients = replicationClients(nodes.map((node) => node.grpcPort));
  t.teardown(() => clients.close());
  const times: number[] = [];
  for (let round = 0; round < 3; round++) {
    const result = await runRound(clients, { keys: 6, writesPerNode: 240, writers: 3, prefix: `r${round}`, seed: round + 1 }, CONVERGE_WITHIN_MS);
    assertRound(t, result);
    times.push(result.convergedMs ?? CONVERGE_WITHIN_MS);
    t.log(`round ${round}: ${result.writes} writes in ${result.writeMs} ms, converged ${result.convergedMs} ms after the last one`);
  }
  t.log(`convergence time over ${times.length} rounds: p50 ${percentile(times, 50)} ms, max ${Math.max(...times)} ms (anti-entropy every ${ANTI_ENTROPY_MS} ms, 20% dropped)`);

  // Node c dies mid-life and comes back under its id: it reads the merged state and counts on from it.
  const c = nodes[2]!;
  await c.kill("SIGKILL");
  clients.close();
  const again = await startClusterNode({ ...options, nodeId: "c" });
  nodes[2] = again;
  clients = replicationClients(nodes.map((node) => node.grpcPort));
  const before = await runRound(clients, { keys: 6, writesPerNode: 0, writers: 1, prefix: "r0", seed: 1 }, 0).catch(() => undefined);
  t.truthy(before, "reads work on the restarted node");
  const restarted = await clients.byNode[2]!.GCounters.methods["Get"]!({ key: "r0-k0" });
  const elsewhere = await clients.byNode[0]!.GCounters.methods["Get"]!({ key: "r0-k0" });
  t.is(restarted.counter, elsewhere.counter, "the restarted node starts from the merged state");
  const after = await runRound(clients, { keys: 6, writesPerNode: 180, writers: 3, prefix: "after-restart", seed: 99 }, CONVERGE_WITHIN_MS);
  assertRound(t, after);
  t.log(`after the restart: ${after.writes} writes, converged ${after.convergedMs} ms after the last one`);
});
