// Modules on every node (../shared/CLUSTER.md, "Membership and rebalancing", Modules): a deploy,
// undeploy or rollback made through one node takes effect on every node, through the notice
// each node acts on at once (not the 5 s reconcile that backs it up), and a node started
// later serves the active version from its first call.
//
// "Serves version v" is checked on each node itself: GET /modules lists a module's services
// only while that node has the store's active version loaded, and calls use a key whose shard
// the called node owns, so a node never passes by forwarding to a peer that has the module.
import test from "ava";
import { status } from "@grpc/grpc-js";
import { readFile } from "node:fs/promises";
import { performance } from "node:perf_hooks";
import { assignShards } from "../../host/cluster/assignment.js";
import {
  adminRequest,
  clusterView,
  counterClient,
  keyOwnedBy,
  listedModule,
  logEntries,
  pollUntil,
  settledOn,
  startClusterNode,
  stopAll,
  waitForCluster,
  waitForHeldBy,
  type ClusterNodeProcess,
} from "../helpers/cluster-nodes.js";
import { exampleWasm } from "../helpers/deployed-node.js";
import type { ContractClient } from "../helpers/grpc-client.js";
import { startRedis } from "../helpers/redis-server.js";

const LEASE_MS = 3000;
const SERVICE = "keystate.examples.counter.Counter";
const COUNTER_PID = "counter";
const REDEPLOYS = 20;

interface Member {
  readonly node: ClusterNodeProcess;
  readonly client: ContractClient;
  /** A counter whose shard this node owns: a call with it runs on this node. */
  readonly key: string;
}

function member(node: ClusterNodeProcess, held: ReadonlyMap<string, readonly number[]>, clients: ContractClient[]): Member {
  const client = counterClient(node);
  clients.push(client);
  return { node, client, key: keyOwnedBy(held, node.nodeId, COUNTER_PID, `deploy-${node.nodeId}-`) };
}

/** True when `m`'s node has `version` of the counter loaded (GET /modules) and answers a call run on it. */
async function serves(m: Member, version: number): Promise<boolean> {
  const listed = await listedModule(m.node, "counter");
  if (listed?.version !== version || !listed.services.includes(SERVICE)) return false;
  return m.client.methods.Get!({ counterId: m.key }, { deadlineMs: 2000 }).then(() => true, () => false);
}

/** The gRPC code a call run on `m`'s node gets (0 = OK). */
function codeOf(m: Member): Promise<number> {
  return m.client.methods.Get!({ counterId: m.key }, { deadlineMs: 2000 }).then(() => status.OK, (err: { code: number }) => err.code);
}

/** Milliseconds from now until every member serves `version` (each polled every ~10 ms). */
async function timeUntilServed(members: readonly Member[], version: number, timeoutMs = 15_000): Promise<number> {
  const started = performance.now();
  await Promise.all(members.map((m) => pollUntil(`${m.node.nodeId} to serve counter version ${version}`, timeoutMs, () => serves(m, version).then((ok) => (ok ? true : undefined)), 10)));
  return performance.now() - started;
}

async function deployThrough(node: ClusterNodeProcess, wasm: Buffer): Promise<number> {
  const { status: code, body } = await adminRequest(node, "POST", "/modules", wasm);
  if (code !== 201) throw new Error(`deploy through ${node.nodeId} answered ${code}: ${JSON.stringify(body)}`);
  return (body as { version: number }).version;
}

/** Every shard held by the node the assignment gives it to (hand-offs done: keys stay where they are). */
function atTarget(ids: readonly string[]): (held: Map<string, number[]>) => boolean {
  const target = assignShards(256, ids);
  return (held) => ids.every((id) => (held.get(id) ?? []).every((shard) => target[shard] === id));
}

const percentile = (sorted: readonly number[], p: number) => sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;

test.serial("a deploy, undeploy and rollback through any node reach every node through the notice; a node started later serves at once", async (t) => {
  const redis = await startRedis();
  t.teardown(() => redis.stop());
  const cluster = `deploy-${process.pid}`;
  const nodes: Array<ClusterNodeProcess | undefined> = [];
  const clients: ContractClient[] = [];
  t.teardown(async () => {
    for (const client of clients) client.close();
    await stopAll(nodes);
  });
  const wasm = await readFile(exampleWasm("counter"));
  for (const nodeId of ["deploy-a", "deploy-b", "deploy-c"]) nodes.push(await startClusterNode({ redisUrl: redis.url, cluster, nodeId, leaseMs: LEASE_MS }));
  await waitForCluster(nodes[0]!, settledOn(["deploy-a", "deploy-b", "deploy-c"]));
  const held = await waitForHeldBy(nodes as ClusterNodeProcess[], 30_000, atTarget(["deploy-a", "deploy-b", "deploy-c"]));
  const [a, b, c] = (nodes as ClusterNodeProcess[]).map((node) => member(node, held, clients)) as [Member, Member, Member];

  // Nobody serves the counter before the first deploy.
  for (const m of [a, b, c]) t.is(await codeOf(m), status.UNIMPLEMENTED, `${m.node.nodeId} before any deploy`);

  // First deploy through A: how long until B and C answer it.
  t.is(await deployThrough(a.node, wasm), 1);
  const firstMs = await timeUntilServed([b, c], 1);
  t.true(await serves(a, 1), "A serves what it deployed");
  t.log(`first deploy: B and C serve it ${firstMs.toFixed(0)} ms after A answered the deploy`);

  // 20 new versions through A (the same bytes: every upload is a version of its own).
  const times: number[] = [];
  for (let i = 0; i < REDEPLOYS; i++) {
    const version = await deployThrough(a.node, wasm);
    t.is(version, i + 2, "each upload is the next version");
    times.push(await timeUntilServed([b, c], version));
  }
  const sorted = [...times].sort((x, y) => x - y);
  const p50 = percentile(sorted, 50);
  const p99 = percentile(sorted, 99);
  t.log(`redeploys: B and C serve the new version after p50 ${p50.toFixed(0)} ms, p99 ${p99.toFixed(0)} ms (min ${sorted[0]!.toFixed(0)}, max ${sorted.at(-1)!.toFixed(0)}; ${REDEPLOYS} deploys)`);
  t.true(p50 < 2000, `p50 ${p50.toFixed(0)} ms: the notice path, not the 5 s reconcile`);
  const latest = REDEPLOYS + 1;
  t.true(await serves(a, latest));

  // Undeploy through B: A and C stop serving it (UNIMPLEMENTED on calls that run on them).
  const undeployed = await adminRequest(b.node, "DELETE", "/modules/counter");
  t.is(undeployed.status, 200, JSON.stringify(undeployed.body));
  t.is(await codeOf(b), status.UNIMPLEMENTED, "B stops serving at once");
  const undeployStarted = performance.now();
  await Promise.all([a, c].map((m) => pollUntil(`${m.node.nodeId} to stop serving the counter`, 15_000, () => codeOf(m).then((code) => (code === status.UNIMPLEMENTED ? true : undefined)), 10)));
  t.log(`undeploy through B: A and C answer UNIMPLEMENTED after ${(performance.now() - undeployStarted).toFixed(0)} ms`);
  for (const m of [a, b, c]) t.is((await listedModule(m.node, "counter"))?.version, null, `${m.node.nodeId} lists no active version`);

  // Rollback to version 1 through C: every node serves version 1 again.
  const rollback = await adminRequest(c.node, "PUT", "/modules/counter/active", JSON.stringify({ version: 1 }));
  t.is(rollback.status, 200, JSON.stringify(rollback.body));
  t.true(await serves(c, 1), "C serves the version it activated");
  const rollbackMs = await timeUntilServed([a, b], 1);
  t.log(`rollback through C: A and B serve version 1 after ${rollbackMs.toFixed(0)} ms`);
  for (const m of [a, b, c]) t.is((await listedModule(m.node, "counter"))?.version, 1, `${m.node.nodeId} reports version 1`);

  // A node started now serves the active version from its first call (no waiting, no retry).
  const d = await startClusterNode({ redisUrl: redis.url, cluster, nodeId: "deploy-d", leaseMs: LEASE_MS });
  nodes.push(d);
  const dClient = counterClient(d);
  clients.push(dClient);
  await t.notThrowsAsync(dClient.methods.Get!({ counterId: a.key }), "D's first call, right after it started, is answered");
  const listed = await listedModule(d, "counter");
  t.is(listed?.version, 1);
  t.true(listed?.services.includes(SERVICE), "D has version 1 loaded");
  // Once D owns shards, a call that runs on D itself is answered too.
  await waitForCluster(d, settledOn(["deploy-a", "deploy-b", "deploy-c", "deploy-d"]));
  const withD = await waitForHeldBy([a.node, b.node, c.node, d], 30_000, atTarget(["deploy-a", "deploy-b", "deploy-c", "deploy-d"]));
  const onD = keyOwnedBy(withD, "deploy-d", COUNTER_PID, "deploy-deploy-d-");
  await t.notThrowsAsync(dClient.methods.Get!({ counterId: onD }));
  t.is((await clusterView(d)).nodes.length, 4);
});

test.serial("a rollback to an older version while a newer one is live reaches every node", async (t) => {
  const redis = await startRedis();
  t.teardown(() => redis.stop());
  const cluster = `rollback-${process.pid}`;
  const nodes: Array<ClusterNodeProcess | undefined> = [];
  const clients: ContractClient[] = [];
  t.teardown(async () => {
    for (const client of clients) client.close();
    await stopAll(nodes);
  });
  const wasm = await readFile(exampleWasm("counter"));
  for (const nodeId of ["rollback-a", "rollback-b"]) nodes.push(await startClusterNode({ redisUrl: redis.url, cluster, nodeId, leaseMs: LEASE_MS }));
  await waitForCluster(nodes[0]!, settledOn(["rollback-a", "rollback-b"]));
  const held = await waitForHeldBy(nodes as ClusterNodeProcess[], 30_000, atTarget(["rollback-a", "rollback-b"]));
  const [a, b] = (nodes as ClusterNodeProcess[]).map((node) => member(node, held, clients)) as [Member, Member];

  t.is(await deployThrough(a.node, wasm), 1);
  t.is(await deployThrough(a.node, wasm), 2);
  await timeUntilServed([a, b], 2);

  // Roll back through A while B serves version 2: B must load version 1, as A did.
  const rollback = await adminRequest(a.node, "PUT", "/modules/counter/active", JSON.stringify({ version: 1 }));
  t.is(rollback.status, 200, JSON.stringify(rollback.body));
  t.true(await serves(a, 1), "A serves the version it activated");
  // Within the notice path and one 5 s reconcile, with room to spare.
  const served = await timeUntilServed([b], 1, 12_000).then(() => true, () => false);
  if (!served) {
    t.log(`B's GET /modules: ${JSON.stringify(await listedModule(b.node, "counter"))}`);
    t.log(`B's module log lines:\n${logEntries(b.node).filter((e) => typeof e.module === "string").map((e) => JSON.stringify({ msg: e.msg, version: e.version })).join("\n")}`);
  }
  t.true(served, "B serves version 1 (the store's active version) within 12 s, not version 2");
});
