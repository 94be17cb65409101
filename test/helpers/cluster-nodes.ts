// Real `keystate serve` processes joined to one cluster on a real Redis, for cluster tests:
// each node a child process with its own id, ports and data dir, all sharing one admin
// token; kill them with SIGKILL, pause them with SIGSTOP, restart them with the same id.
import { join } from "node:path";
import { contractClient, type ContractClient } from "./grpc-client.js";
import { deploy, exampleWasm, fetchJson } from "./deployed-node.js";
import { REPO_ROOT, startNodeProcess, type NodeProcess } from "./node-process.js";
import { makeTempDir, removeDir } from "./temp-dir.js";

export const CLUSTER_TOKEN = "cluster-test-token";

export interface ClusterNodeOptions {
  readonly redisUrl: string;
  readonly cluster: string;
  readonly nodeId: string;
  /** Default 3000: short enough for quick failover tests, long enough for a loaded 2-core box. */
  readonly leaseMs?: number;
  readonly extraArgs?: readonly string[];
  /** Reuse a data dir (a restart); default a new temp dir. */
  readonly dataDir?: string;
}

export interface ClusterNodeProcess extends NodeProcess {
  readonly nodeId: string;
  readonly dataDir: string;
}

export async function startClusterNode(options: ClusterNodeOptions): Promise<ClusterNodeProcess> {
  const dataDir = options.dataDir ?? (await makeTempDir(`node-${options.nodeId}`));
  const node = await startNodeProcess({
    dataDir,
    redisUrl: options.redisUrl,
    extraArgs: [
      "--cluster", options.cluster,
      "--node-id", options.nodeId,
      "--lease-ms", String(options.leaseMs ?? 3000),
      "--admin-token", CLUSTER_TOKEN,
      ...(options.extraArgs ?? []),
    ],
  });
  return Object.assign(node, { nodeId: options.nodeId, dataDir });
}

export interface ClusterViewJson {
  cluster: string;
  shardCount: number;
  self: string;
  nodes: Array<{ id: string; address: string; shards: number[]; alive: boolean; draining: boolean }>;
}

/** GET /cluster from `node`. */
export async function clusterView(node: NodeProcess): Promise<ClusterViewJson> {
  const { status, body } = await fetchJson(`${node.adminUrl}/cluster`, { headers: { authorization: `Bearer ${CLUSTER_TOKEN}` } });
  if (status !== 200) throw new Error(`GET /cluster answered ${status}: ${JSON.stringify(body)}`);
  return body as ClusterViewJson;
}

/** Polls until `check(view)` holds (or throws after `timeoutMs` with the last view). */
export async function waitForCluster(node: NodeProcess, check: (view: ClusterViewJson) => boolean, timeoutMs = 20_000): Promise<ClusterViewJson> {
  const deadline = Date.now() + timeoutMs;
  let last: ClusterViewJson | undefined;
  for (;;) {
    last = await clusterView(node).catch(() => last);
    if (last && check(last)) return last;
    if (Date.now() > deadline) throw new Error(`cluster did not settle within ${timeoutMs} ms; last view: ${JSON.stringify(last)}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** Every shard owned by exactly one of `aliveIds`, and each of them alive. */
export function settledOn(aliveIds: readonly string[]): (view: ClusterViewJson) => boolean {
  return (view) => {
    const owned = view.nodes.filter((n) => aliveIds.includes(n.id) && n.alive).flatMap((n) => n.shards);
    return new Set(owned).size === view.shardCount && owned.length === view.shardCount && view.nodes.filter((n) => n.alive).length === aliveIds.length;
  };
}

/** Deploys the example modules through `node` (the others follow through the cluster). */
export async function deployExamples(node: NodeProcess, names: readonly string[] = ["counter", "shopping-cart"]): Promise<void> {
  for (const name of names) await deploy(node, exampleWasm(name));
}

export function counterClient(node: NodeProcess): ContractClient {
  return contractClient(join(REPO_ROOT, "modules", "counter", "proto"), "counter.proto", "keystate.examples.counter.Counter", node.grpcPort);
}

export function cartClient(node: NodeProcess): ContractClient {
  return contractClient(join(REPO_ROOT, "modules", "shopping-cart", "proto"), "shoppingcart.proto", "keystate.examples.shoppingcart.ShoppingCart", node.grpcPort);
}

/** Stops (SIGKILL) every node still running and removes their data dirs. */
export async function stopAll(nodes: Iterable<ClusterNodeProcess | undefined>): Promise<void> {
  for (const node of nodes) {
    if (!node) continue;
    await node.kill("SIGKILL");
    await removeDir(node.dataDir);
  }
}
