// Keystate cluster nodes for the cluster suite: real `keystate serve --redis --cluster`
// processes (lib/node-process.ts) on one Redis, each with its own id, data dir and ports,
// all sharing an admin token. Answers "which node owns this key" from GET /cluster and
// shardOf() (the same hash the nodes use), waits until the shards sit where the
// assignment puts them, and reads each node's forward counter from /metrics.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { assignShards } from "../../host/cluster/assignment.js";
import { shardOf } from "../../host/journal/shards.js";
import { GrpcClient } from "./grpc-client.js";
import { tempDir } from "./inproc.js";
import { startServe, type ServeProcess } from "./node-process.js";
import { REPO_ROOT } from "./paths.js";
import { grpcPath, type Workload } from "./workloads.js";

export const BENCH_CLUSTER_TOKEN = "bench-cluster-token";

export interface ClusterMemberOptions {
  readonly redisUrl: string;
  readonly cluster: string;
  readonly nodeId: string;
  readonly leaseMs: number;
  /** Modules deployed by this node at start (`--deploy`); the others load them from the cluster's store. */
  readonly deploy?: readonly string[];
  /** e.g. ["taskset", "-c", "0"]. */
  readonly prefix?: readonly string[];
}

export interface ClusterMember {
  readonly id: string;
  readonly serve: ServeProcess;
  /** `shard lost` log lines so far, by reason (e.g. "not renewed in time": a lease renewal came too late under load; its calls waited for a new owner). */
  readonly shardsLost: ReadonlyMap<string, number>;
  /** SIGTERM: the node hands its shards off, leaves, exits; then its data dir is removed. */
  leave(): Promise<void>;
  /** SIGKILL and remove the data dir. */
  kill(): Promise<void>;
}

export interface ClusterViewJson {
  readonly cluster: string;
  readonly shardCount: number;
  readonly self: string;
  readonly nodes: ReadonlyArray<{ id: string; address: string; shards: number[]; alive: boolean; draining: boolean }>;
}

export async function startMember(options: ClusterMemberOptions): Promise<ClusterMember> {
  const dir = await tempDir(`cluster-${options.nodeId}`);
  const lost = new Map<string, number>();
  let serve: ServeProcess;
  try {
    serve = await startServe({
      dataDir: dir.path,
      redisUrl: options.redisUrl,
      adminToken: BENCH_CLUSTER_TOKEN,
      serveArgs: ["--cluster", options.cluster, "--node-id", options.nodeId, "--lease-ms", String(options.leaseMs)],
      deploy: options.deploy ?? [],
      readyMessage: (options.deploy ?? []).length > 0 ? "deployed" : "node started",
      prefix: options.prefix ?? [],
      onLine: (line) => {
        if (!line.includes('"msg":"shard lost"')) return;
        let reason = "unknown";
        try {
          reason = String((JSON.parse(line) as { reason?: string }).reason ?? reason);
        } catch {
          // a cut line still counts
        }
        lost.set(reason, (lost.get(reason) ?? 0) + 1);
      },
    });
  } catch (err) {
    await dir.remove();
    throw err;
  }
  return {
    id: options.nodeId,
    serve,
    shardsLost: lost,
    async leave() {
      await serve.terminate();
      await dir.remove();
    },
    async kill() {
      await serve.stop();
      await dir.remove();
    },
  };
}

/** `shard lost` lines of these members so far. */
export function shardsLostBy(members: Iterable<ClusterMember>): number {
  let total = 0;
  for (const member of members) for (const count of member.shardsLost.values()) total += count;
  return total;
}

/** GET /cluster on the member's admin port, with the bearer token. */
export async function clusterView(member: ClusterMember): Promise<ClusterViewJson> {
  const res = await fetch(`http://127.0.0.1:${member.serve.httpPort}/cluster`, { headers: { authorization: `Bearer ${BENCH_CLUSTER_TOKEN}` } });
  if (res.status !== 200) throw new Error(`GET /cluster on ${member.id} answered ${res.status}: ${await res.text()}`);
  return (await res.json()) as ClusterViewJson;
}

/** True when the view shows exactly `ids` alive (none draining) and every shard on the node the assignment gives it. */
function settledOn(view: ClusterViewJson, ids: readonly string[]): boolean {
  const alive = view.nodes.filter((n) => n.alive);
  if (alive.length !== ids.length || !alive.every((n) => ids.includes(n.id) && !n.draining)) return false;
  const target = assignShards(view.shardCount, ids);
  const owner = new Map<number, string>();
  for (const node of alive) {
    for (const shard of node.shards) {
      if (owner.has(shard)) return false;
      owner.set(shard, node.id);
    }
  }
  return target.every((id, shard) => owner.get(shard) === id);
}

/**
 * Waits until every member's GET /cluster shows the members (and only they) alive and every
 * shard owned where the assignment (host/cluster/assignment.ts) puts it; returns the first member's view.
 */
export async function waitSettled(members: readonly ClusterMember[], timeoutMs = 60_000): Promise<ClusterViewJson> {
  const ids = members.map((m) => m.id);
  const deadline = Date.now() + timeoutMs;
  let last: ClusterViewJson[] = [];
  for (;;) {
    last = await Promise.all(members.map((m) => clusterView(m))).catch(() => last);
    if (last.length === members.length && last.every((view) => settledOn(view, ids))) return last[0]!;
    if (Date.now() > deadline) {
      const counts = last.map((v) => `${v.self}: ${v.nodes.map((n) => `${n.id}${n.alive ? "" : " (dead)"}${n.draining ? " (draining)" : ""} ${n.shards.length}`).join(", ")}`);
      throw new Error(`the cluster did not settle on ${ids.join(", ")} within ${timeoutMs} ms; last views: ${counts.join("; ")}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** Until every member answers the workload's read (a deployed module reaches the others through the store). */
export async function waitServing(members: readonly ClusterMember[], workload: Workload, timeoutMs = 30_000): Promise<void> {
  await Promise.all(
    members.map(async (member) => {
      const client = new GrpcClient(member.serve.grpcPort);
      const deadline = Date.now() + timeoutMs;
      try {
        for (;;) {
          const reply = await client.call(grpcPath(workload, workload.readMethod), workload.readPayload("probe"), 2000).catch((err: Error) => ({ status: -1, message: err.message }));
          if (reply.status === 0) return;
          if (Date.now() > deadline) throw new Error(`${member.id} did not serve ${workload.service} within ${timeoutMs} ms (last: ${reply.status} ${reply.message})`);
          await new Promise((resolve) => setTimeout(resolve, 100));
        }
      } finally {
        client.close();
      }
    }),
  );
}

/** The storage persistence id of the workload's entity: modules/<m>/module.json, else the module name. */
export function persistenceIdOf(workload: Workload): string {
  const manifest = JSON.parse(readFileSync(join(REPO_ROOT, "modules", workload.module, "module.json"), "utf8")) as {
    name: string;
    entities?: Array<{ service: string; persistenceId?: string }>;
  };
  return manifest.entities?.find((e) => e.service === workload.service)?.persistenceId ?? manifest.name;
}

/** Owner of `key` in `view` (node id), by the nodes' own hash. */
export function ownerOf(view: ClusterViewJson, persistenceId: string, key: string): string | undefined {
  const shard = shardOf(persistenceId, key, view.shardCount);
  return view.nodes.find((n) => n.alive && n.shards.includes(shard))?.id;
}

/** `count` fresh key names starting with `prefix` whose shard `owner` holds in `view`. */
export function keysOwnedBy(view: ClusterViewJson, persistenceId: string, owner: string, prefix: string, count: number): string[] {
  const keys: string[] = [];
  for (let n = 0; keys.length < count; n++) {
    if (n > 1_000_000) throw new Error(`no keys owned by ${owner} found (does it hold any shard?)`);
    const key = `${prefix}-${n}`;
    if (ownerOf(view, persistenceId, key) === owner) keys.push(key);
  }
  return keys;
}

/** Calls this member forwarded to an owner and got an answer for (keystate_cluster_forwards_total{result="ok"}). */
export async function forwardsOk(member: ClusterMember): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${member.serve.httpPort}/metrics`)).text();
  const match = /^keystate_cluster_forwards_total\{result="ok"\} (\d+(?:\.\d+)?(?:e\+\d+)?)$/m.exec(text);
  return match ? Number(match[1]) : 0;
}
