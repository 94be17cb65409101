// A whole convergence run: its own redis-server, N `keystate serve` nodes (cluster "crdts")
// with the test-only switch dropping a fraction of each node's outgoing CRDT changes, the
// crdt-replication fixture deployed, then rounds of the concurrent eight-type workload
// (crdt-convergence.ts), each checked against the sequential model; every `restartEvery`
// rounds one node is killed with SIGKILL and restarted under its id first. Used by
// test/integration/crdt-replication.test.ts (short) and scripts/crdt-convergence.ts (long).
import { join } from "node:path";
import { DROP_DELTAS_ENV } from "../../host/cluster/crdt-replication.js";
import { buildModuleTo } from "./build-cache.js";
import { listedModule, pollUntil, startClusterNode, stopAll, type ClusterNodeProcess } from "./cluster-nodes.js";
import { FIXTURE_DIR, replicationClients, runRound, type RoundResult } from "./crdt-convergence.js";
import { deploy } from "./deployed-node.js";
import { startRedis } from "./redis-server.js";
import { makeTempDir, removeDir } from "./temp-dir.js";

export interface ConvergenceSettings {
  readonly nodes: number;
  readonly rounds: number;
  readonly keys: number;
  readonly writesPerNode: number;
  readonly writersPerNode: number;
  /** Fraction of each node's outgoing changes dropped (the test-only switch). */
  readonly drop: number;
  readonly antiEntropyMs: number;
  /** Kill -9 and restart one node before every this many rounds (0: never). */
  readonly restartEvery: number;
  readonly convergeWithinMs: number;
  /** At the end: kill every node with SIGKILL, restart them all plus one new node, and re-read every round on each. */
  readonly wholeClusterRestart?: boolean;
}

export interface ConvergenceRun {
  readonly rounds: Array<RoundResult & { readonly restartedNode?: string }>;
  /** After each restart (and the whole-cluster restart): what the nodes read differently from the earlier rounds' models. */
  readonly afterRestarts: string[];
  /** Sum over nodes of each metric at the end (changes sent, dropped, gaps, pulls, bytes). */
  readonly metrics: Record<string, number>;
}

export async function runConvergence(settings: ConvergenceSettings, log: (line: string) => void = () => undefined): Promise<ConvergenceRun> {
  const buildDir = await makeTempDir("crdt-replication-build");
  const wasm = join(buildDir, "crdt-replication.wasm");
  const redis = await startRedis({ appendOnly: true });
  const nodes: ClusterNodeProcess[] = [];
  try {
    await buildModuleTo(FIXTURE_DIR, wasm);
    const options = {
      redisUrl: redis.url,
      cluster: "crdts",
      extraArgs: ["--anti-entropy-ms", String(settings.antiEntropyMs)],
      env: { [DROP_DELTAS_ENV]: String(settings.drop) },
    };
    const ids = Array.from({ length: settings.nodes }, (_, i) => `n${i}`);
    for (const nodeId of ids) nodes.push(await startClusterNode({ ...options, nodeId }));
    await deploy(nodes[0]!, wasm);
    const loaded = async () => {
      for (const node of nodes) await pollUntil(`${node.nodeId} to load the module`, 15_000, async () => ((await listedModule(node, "crdt-replication")) ? true : undefined));
    };
    await loaded();
    const rounds: ConvergenceRun["rounds"] = [];
    const afterRestarts: string[] = [];
    for (let round = 0; round < settings.rounds; round++) {
      let restartedNode: string | undefined;
      if (settings.restartEvery > 0 && round > 0 && round % settings.restartEvery === 0) {
        const victim = round % nodes.length;
        restartedNode = nodes[victim]!.nodeId;
        await nodes[victim]!.kill("SIGKILL");
        nodes[victim] = await startClusterNode({ ...options, nodeId: restartedNode });
        await loaded();
        log(`round ${round}: ${restartedNode} killed with SIGKILL and restarted`);
      }
      const clients = replicationClients(nodes.map((node) => node.grpcPort));
      try {
        if (restartedNode !== undefined) {
          // The restarted node starts from the merged state: every earlier round reads as its model says, on every node,
          // except the votes of the killed process, which every node retires (its own at once, the others within a few leases).
          for (const earlier of rounds) {
            earlier.forgetVotesOf(round % nodes.length);
            afterRestarts.push(...(await earlier.recheck(clients, settings.convergeWithinMs)).map((d) => `after restarting ${restartedNode}: ${d}`));
          }
        }
        const result = await runRound(
          clients,
          { keys: settings.keys, writesPerNode: settings.writesPerNode, writers: settings.writersPerNode, prefix: `r${round}`, seed: round + 1 },
          settings.convergeWithinMs,
        );
        rounds.push({ ...result, restartedNode });
        log(`round ${round}: ${result.writes} writes in ${result.writeMs} ms, ${result.failures.length} failed, converged ${result.convergedMs ?? "NOT"} ms after the last one`);
      } finally {
        clients.close();
      }
    }
    const metrics = await summedMetrics(nodes);
    if (settings.wholeClusterRestart) {
      // Durable replicas: nothing acknowledged is lost when every node dies at once, and a node that never saw a write reads it.
      await Promise.all(nodes.map((node) => node.kill("SIGKILL")));
      for (let i = 0; i < nodes.length; i++) nodes[i] = await startClusterNode({ ...options, nodeId: nodes[i]!.nodeId });
      nodes.push(await startClusterNode({ ...options, nodeId: "joined-later" }));
      await loaded();
      log(`every node killed with SIGKILL and restarted, and node joined-later added`);
      const clients = replicationClients(nodes.map((node) => node.grpcPort));
      try {
        for (const earlier of rounds) {
          for (let n = 0; n < settings.nodes; n++) earlier.forgetVotesOf(n);
          afterRestarts.push(...(await earlier.recheck(clients, settings.convergeWithinMs)).map((d) => `after the whole-cluster restart: ${d}`));
        }
      } finally {
        clients.close();
      }
    }
    return { rounds, afterRestarts, metrics };
  } finally {
    await stopAll(nodes);
    await redis.stop();
    await removeDir(buildDir);
  }
}

const METRICS = ["keystate_crdt_changes_sent_total", "keystate_crdt_changes_dropped_total", "keystate_crdt_changes_received_total", "keystate_crdt_gaps_total", "keystate_crdt_copies_pulled_total", "keystate_crdt_sent_bytes_total"];

async function summedMetrics(nodes: readonly ClusterNodeProcess[]): Promise<Record<string, number>> {
  const sums: Record<string, number> = Object.fromEntries(METRICS.map((name) => [name, 0]));
  for (const node of nodes) {
    const text = await (await fetch(`${node.adminUrl}/metrics`, { headers: { authorization: `Bearer ${node.token}` } })).text();
    for (const name of METRICS) sums[name]! += Number(new RegExp(`^${name} (\\S+)`, "m").exec(text)?.[1] ?? 0);
  }
  return sums;
}
