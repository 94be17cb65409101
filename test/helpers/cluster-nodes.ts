// Real `keystate serve` processes joined to one cluster on a real Redis, for cluster tests:
// each node a child process with its own id, ports and data dir, all sharing one admin
// token; kill them with SIGKILL, pause them with SIGSTOP, restart them with the same id.
import { shardOf as shardOfKey } from "../../host/journal/shards.js";
import { join } from "node:path";
import { assignShards } from "../../host/cluster/assignment.js";
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
  readonly env?: Readonly<Record<string, string>>;
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
    env: options.env,
  });
  return Object.assign(node, { nodeId: options.nodeId, dataDir });
}

export interface ClusterViewJson {
  cluster: string;
  shardCount: number;
  self: string;
  nodes: Array<{ id: string; address: string; peerAddress: string; shards: number[]; alive: boolean; draining: boolean }>;
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

/** One pino line of a node's log (`time` in ms since the epoch, as Date.now() on that node). */
export interface LogEntry {
  readonly time: number;
  readonly msg?: string;
  readonly shard?: number;
  readonly epoch?: number;
  readonly reason?: string;
  readonly [field: string]: unknown;
}

/** Every JSON log line `node` printed so far, parsed, in the order printed. */
export function logEntries(node: NodeProcess): LogEntry[] {
  const entries: LogEntry[] = [];
  for (const line of node.output.join("").split("\n")) {
    if (!line.startsWith("{")) continue;
    try {
      entries.push(JSON.parse(line) as LogEntry);
    } catch {
      // a line cut by the pipe: not a log entry we can read
    }
  }
  return entries;
}

/**
 * Settled and done rebalancing: every shard on the node the assignment (rendezvous hashing
 * over `aliveIds`) gives it. settledOn alone also holds halfway through the hand-offs to a
 * joining node.
 */
export function balancedOn(aliveIds: readonly string[]): (view: ClusterViewJson) => boolean {
  return (view) => {
    if (!settledOn(aliveIds)(view)) return false;
    const target = assignShards(view.shardCount, aliveIds);
    return view.nodes.every((n) => n.shards.every((shard) => target[shard] === n.id));
  };
}

/** Shard -> owner id, as `view` says. */
export function shardOwners(view: ClusterViewJson): Map<number, string> {
  const owners = new Map<number, string>();
  for (const node of view.nodes) for (const shard of node.shards) owners.set(shard, node.id);
  return owners;
}

/** Calls `probe` until it returns something other than undefined; throws after `timeoutMs` naming `what`. */
export async function pollUntil<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined> | T | undefined, everyMs = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
}

/** Waits until every node answers the counter and the shopping cart (modules deployed elsewhere reach it through the cluster). */
export async function waitForServices(nodes: readonly NodeProcess[], timeoutMs = 20_000): Promise<void> {
  await Promise.all(
    nodes.map(async (node) => {
      const counters = counterClient(node);
      const carts = cartClient(node);
      try {
        await pollUntil(`port ${node.grpcPort} to answer Counter and ShoppingCart`, timeoutMs, async () => {
          const ok = await Promise.all([
            counters.methods.Get!({ counterId: "probe" }, { deadlineMs: 2000 }).then(() => true, () => false),
            carts.methods.GetCart!({ userId: "probe" }, { deadlineMs: 2000 }).then(() => true, () => false),
          ]);
          return ok.every(Boolean) ? true : undefined;
        }, 100);
      } finally {
        counters.close();
        carts.close();
      }
    }),
  );
}

// Helpers of the scale, identity, deploy and moved tests (cluster-*.test.ts).

/**
 * The first key `${prefix}${i}` (i = 0, 1, ...) of `persistenceId` whose shard node `nodeId`
 * owns in `view`, or holds by its own account (a map from heldShards / waitForHeldBy).
 */
export function keyOwnedBy(view: ClusterViewJson | ReadonlyMap<string, readonly number[]>, nodeId: string, persistenceId: string, prefix: string, shardCount = 256): string {
  const list = view instanceof Map ? view.get(nodeId) : (view as ClusterViewJson).nodes.find((n) => n.id === nodeId)?.shards;
  const count = view instanceof Map ? shardCount : (view as ClusterViewJson).shardCount;
  const shards = new Set(list ?? []);
  if (shards.size === 0) throw new Error(`node ${nodeId} owns no shard in ${JSON.stringify(view instanceof Map ? [...view] : view)}`);
  for (let i = 0; ; i++) {
    const key = `${prefix}${i}`;
    if (shards.has(shardOfKey(persistenceId, key, count))) return key;
  }
}

/** `method path` on `node`'s admin port with the cluster's admin token: status and parsed JSON body. */
export function adminRequest(node: NodeProcess, method: string, path: string, body?: string | Buffer): Promise<{ status: number; body: any }> {
  const headers: Record<string, string> = { authorization: `Bearer ${CLUSTER_TOKEN}` };
  if (typeof body === "string") headers["content-type"] = "application/json";
  return fetchJson(`${node.adminUrl}${path}`, { method, headers, body: body === undefined || typeof body === "string" ? body : new Uint8Array(body) });
}

/** One module as GET /modules lists it: `version` is the store's active version, `services` is non-empty only while this node has that version loaded. */
export interface ListedModule {
  readonly name: string;
  readonly version: number | null;
  readonly services: string[];
}

/** GET /modules on `node`: the module named `name`, or undefined when the store has none by that name. */
export async function listedModule(node: NodeProcess, name: string): Promise<ListedModule | undefined> {
  const { status, body } = await adminRequest(node, "GET", "/modules");
  if (status !== 200) throw new Error(`GET /modules answered ${status}: ${JSON.stringify(body)}`);
  return (body as { modules: ListedModule[] }).modules.find((m) => m.name === name);
}

/**
 * Each node's own account of the shards it holds: its GET /cluster entry for itself, which
 * comes from the leases it holds now. (A node's entries for its peers come from the owner
 * field of the leases in Redis, which still names a node that dropped a shard without
 * releasing it, until someone else acquires it.)
 */
export async function heldShards(nodes: readonly ClusterNodeProcess[]): Promise<Map<string, number[]>> {
  const held = new Map<string, number[]>();
  for (const node of nodes) {
    const view = await clusterView(node);
    held.set(node.nodeId, view.nodes.find((n) => n.id === view.self)?.shards ?? []);
  }
  return held;
}

/** Polls until the shards `nodes` say they hold cover all `shardCount` shards exactly once (and `check` holds); throws after `timeoutMs` with the last accounts. */
export async function waitForHeldBy(nodes: readonly ClusterNodeProcess[], timeoutMs = 20_000, check: (held: Map<string, number[]>) => boolean = () => true, shardCount = 256): Promise<Map<string, number[]>> {
  const deadline = Date.now() + timeoutMs;
  let last: Map<string, number[]> | undefined;
  for (;;) {
    last = await heldShards(nodes).catch(() => last);
    if (last) {
      const all = [...last.values()].flat();
      if (all.length === shardCount && new Set(all).size === shardCount && check(last)) return last;
    }
    if (Date.now() > deadline) {
      const held = last ? [...last].map(([id, shards]) => `${id}: ${shards.length}`).join(", ") : "none";
      const missing = last ? Array.from({ length: shardCount }, (_, s) => s).filter((s) => ![...last!.values()].some((l) => l.includes(s))) : [];
      throw new Error(`the nodes did not come to hold every shard once within ${timeoutMs} ms; they hold ${held}; held by none: ${missing.length} (${missing.slice(0, 20).join(", ")}${missing.length > 20 ? ", ..." : ""})`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/**
 * Resolves once everything `node` wrote to stdout and stderr has been read. A child's "exit"
 * can come before the last of its output has been read from the pipes (NodeProcess.kill
 * resolves on "exit"): read a stopped node's log only after this.
 */
export async function outputComplete(node: NodeProcess, timeoutMs = 10_000): Promise<void> {
  const streams = [node.child.stdout, node.child.stderr].filter((s) => s !== null);
  await Promise.all(
    streams.map((stream) =>
      stream.closed || stream.destroyed
        ? undefined
        : new Promise<void>((resolve, reject) => {
            const timer = setTimeout(() => reject(new Error(`output of port ${node.grpcPort} still open ${timeoutMs} ms after exit`)), timeoutMs);
            stream.once("close", () => {
              clearTimeout(timer);
              resolve();
            });
          }),
    ),
  );
}

/**
 * After a kill at `killedAt`: `answer(call, check)` calls until the cluster answers (retrying
 * only UNAVAILABLE, the status of a shard with no reachable owner yet, and failing on any
 * other status or after `giveUpMs`), checks the reply, and records when it answered in `after`.
 */
export function failoverPoller(killedAt: number, giveUpMs: number): {
  answer<T>(call: () => Promise<T>, check: (reply: T) => void): Promise<void>;
  readonly after: number[];
} {
  const after: number[] = [];
  return {
    after,
    async answer(call, check) {
      for (;;) {
        try {
          const reply = await call();
          after.push(Date.now() - killedAt);
          check(reply);
          return;
        } catch (err) {
          if ((err as { code?: number }).code !== UNAVAILABLE_CODE || Date.now() - killedAt > giveUpMs) throw err;
          await new Promise((resolve) => setTimeout(resolve, 50));
        }
      }
    },
  };
}

/** grpc status UNAVAILABLE. */
const UNAVAILABLE_CODE = 14;

/** One line of a shopping cart as GetCart answers it. */
export type CartLine = { productId: string; name: string; quantity: number };

/** A cart's lines without extra fields, by product id: comparable with deepEqual whatever order the node answered in. */
export function sortedCartLines(items: readonly CartLine[]): CartLine[] {
  return items.map((l) => ({ productId: l.productId, name: l.name, quantity: l.quantity })).sort((a, b) => a.productId.localeCompare(b.productId));
}

/** Runs `tasks` with at most `width` in flight. */
export async function inPool(width: number, tasks: ReadonlyArray<() => Promise<void>>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: width }, async () => {
      while (next < tasks.length) await tasks[next++]!();
    }),
  );
}
