// Redis restart with AOF on (../shared/CLUSTER.md, "Redis restart (AOF on)"): two nodes;
// acknowledged state written through both; Redis is killed with SIGKILL and started again
// on the same port and data dir, a second later (shorter than the nodes' safety deadline:
// they may keep their leases) and two leases later (every node must drop its shards and
// take them again from the leases Redis reloaded). The cluster must recover on its own: the
// same node processes (no restart) reconnect, serve reads from storage and writes through
// either node within seconds, GET /cluster shows the shards balanced over both nodes again,
// and every acknowledged write is there.
import test, { type ExecutionContext } from "ava";
import { status, type ServiceError } from "@grpc/grpc-js";
import { shardOf } from "../../host/journal/shards.js";
import {
  balancedOn,
  cartClient,
  clusterView,
  counterClient,
  deployExamples,
  logEntries,
  pollUntil,
  shardOwners,
  sortedCartLines,
  startClusterNode,
  stopAll,
  waitForCluster,
  waitForServices,
  type ClusterNodeProcess,
  type ClusterViewJson,
} from "../helpers/cluster-nodes.js";
import type { ContractClient } from "../helpers/grpc-client.js";
import { startRedis, type RunningRedis } from "../helpers/redis-server.js";
import { tempDirFor } from "../helpers/temp-dir.js";

const LEASE_MS = 3000;
const RECOVERY_BOUND_MS = 15_000;
const COUNTERS = 60;
const CARTS = 20;
const counterKey = (i: number) => `restart-counter-${i}`;
const cartKey = (i: number) => `restart-cart-${i}`;
const timesOf = (i: number) => 1 + (i % 3);
const itemsOf = (i: number) => [
  { productId: `a-${i}`, name: "A", quantity: 1 },
  { productId: `b-${i}`, name: "B", quantity: 1 + (i % 4) },
];

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function redisRestart(t: ExecutionContext, outageMs: number): Promise<{ nodes: ClusterNodeProcess[]; view: ClusterViewJson; killedAt: number; restartedAt: number }> {
  const redisDir = await tempDirFor(t, "restart-redis");
  let redis: RunningRedis = await startRedis({ appendOnly: true, dataDir: redisDir });
  t.teardown(() => redis.stop());
  const cluster = `restart-${outageMs}-${process.pid}`;
  const ids = ["node-a", "node-b"];
  const nodes: ClusterNodeProcess[] = [];
  t.teardown(() => stopAll(nodes));
  for (const nodeId of ids) nodes.push(await startClusterNode({ redisUrl: redis.url, cluster, nodeId, leaseMs: LEASE_MS }));
  const [a, b] = nodes as [ClusterNodeProcess, ClusterNodeProcess];
  const counters = [counterClient(a), counterClient(b)];
  const carts = [cartClient(a), cartClient(b)];
  t.teardown(() => [...counters, ...carts].forEach((c: ContractClient) => c.close()));
  const pids = nodes.map((n) => n.child.pid);

  const view = await waitForCluster(a, balancedOn(ids));
  await deployExamples(a);
  await waitForServices(nodes);

  // Acknowledged state through both nodes (each entity's calls one after another).
  await Promise.all([
    ...Array.from({ length: COUNTERS }, async (_, i) => {
      for (let n = 1; n <= timesOf(i); n++) {
        const reply = await counters[(i + n) % 2]!.methods.Increase!({ counterId: counterKey(i), value: 1 });
        t.is(Number(reply.value), n, `${counterKey(i)} increment ${n}`);
      }
    }),
    ...Array.from({ length: CARTS }, async (_, i) => {
      for (const [m, item] of itemsOf(i).entries()) await carts[(i + m) % 2]!.methods.AddItem!({ userId: cartKey(i), ...item });
    }),
  ]);

  // Redis dies (kill -9) and stays away `outageMs`. Calls right then get a right answer or UNAVAILABLE.
  redis.kill();
  const killedAt = Date.now();
  const during = await Promise.all(
    [0, 1].flatMap((via) =>
      [0, 1, 2, 3].map(async (i) => {
        try {
          return { i, value: Number((await counters[via]!.methods.Get!({ counterId: counterKey(i) }, { deadlineMs: 5000 })).value) };
        } catch (err) {
          return { i, code: (err as ServiceError).code, details: (err as ServiceError).details };
        }
      }),
    ),
  );
  t.deepEqual(during.filter((r) => (r.code === undefined ? r.value !== timesOf(r.i) : r.code !== status.UNAVAILABLE)), [], "during the outage: the right value or UNAVAILABLE");
  await sleep(Math.max(0, killedAt + outageMs - Date.now()));
  redis = await startRedis({ appendOnly: true, dataDir: redisDir, port: redis.port });
  const restartedAt = Date.now();

  // Both nodes serve again: a write and a read from storage (a key never loaded), on each node's
  // shards, through each node. Attempts that fail (UNAVAILABLE while connections come back) are in doubt.
  const owners = shardOwners(view);
  const firstKeyOf = (owner: string, prefix: string) => {
    for (let k = 0; ; k++) if (owners.get(shardOf("counter", `${prefix}-${k}`, view.shardCount)) === owner) return `${prefix}-${k}`;
  };
  const probes: Array<{ key: string; attempts: number; acked: number[] }> = [];
  const recoveredAfter = await Promise.all(
    [0, 1].map(async (via) => {
      const mine = ids.map((owner) => ({ key: firstKeyOf(owner, `recovery-${via}-${owner}`), attempts: 0, acked: [] as number[] }));
      probes.push(...mine);
      const unread = ids.map((owner) => firstKeyOf(owner, `never-loaded-${via}-${owner}`));
      await pollUntil(`${ids[via]} to serve again`, RECOVERY_BOUND_MS, async () => {
        await Promise.all(
          mine.filter((p) => p.acked.length === 0).map(async (p) => {
            p.attempts++;
            const reply = await counters[via]!.methods.Increase!({ counterId: p.key, value: 1 }, { deadlineMs: 2000 }).catch((err: ServiceError) => {
              if (err.code !== status.UNAVAILABLE) throw err;
              return undefined;
            });
            if (reply) p.acked.push(Number(reply.value));
          }),
        );
        const reads = await Promise.all(unread.map((key) => counters[via]!.methods.Get!({ counterId: key }, { deadlineMs: 2000 }).then((r) => Number(r.value), () => undefined)));
        if (mine.some((p) => p.acked.length === 0) || reads.some((v) => v === undefined)) return undefined;
        t.deepEqual(reads, [0, 0], "keys never written read as 0 from storage");
        return true;
      }, 100);
      return Date.now() - restartedAt;
    }),
  );
  t.log(`Redis away ${restartedAt - killedAt} ms; nodes served again ${recoveredAfter.join(" and ")} ms after its restart`);
  t.true(Math.max(...recoveredAfter) <= RECOVERY_BOUND_MS);

  await waitForCluster(a, balancedOn(ids), RECOVERY_BOUND_MS);
  const settled = await waitForCluster(b, balancedOn(ids), RECOVERY_BOUND_MS);
  t.deepEqual(settled.nodes.map((n) => [n.id, n.alive]), [["node-a", true], ["node-b", true]]);
  t.deepEqual(nodes.map((n) => [n.child.pid, n.child.exitCode, n.child.signalCode]), pids.map((pid) => [pid, null, null]), "the same node processes, never restarted");
  t.is((await clusterView(a)).nodes.length, 2);

  // Writes work again through both nodes, from the stored values.
  await Promise.all(
    Array.from({ length: COUNTERS }, async (_, i) => {
      const reply = await counters[i % 2]!.methods.Increase!({ counterId: counterKey(i), value: 1 });
      t.is(Number(reply.value), timesOf(i) + 1, `${counterKey(i)} incremented after the restart`);
    }),
  );

  // Each probe counter holds its acknowledged increment and at most the attempts that failed.
  for (const probe of probes) {
    const value = Number((await counters[0]!.methods.Get!({ counterId: probe.key })).value);
    t.true(probe.acked[0]! <= value && value <= probe.attempts, `${probe.key}: ${value}, answered ${probe.acked[0]}, ${probe.attempts} attempts`);
  }

  // Everything acknowledged is there, read through each node.
  for (const via of [0, 1]) {
    await Promise.all([
      ...Array.from({ length: COUNTERS }, async (_, i) => {
        t.is(Number((await counters[via]!.methods.Get!({ counterId: counterKey(i) })).value), timesOf(i) + 1, `${counterKey(i)} via ${ids[via]}`);
      }),
      ...Array.from({ length: CARTS }, async (_, i) => {
        t.deepEqual(sortedCartLines((await carts[via]!.methods.GetCart!({ userId: cartKey(i) })).items), itemsOf(i), `${cartKey(i)} via ${ids[via]}`);
      }),
    ]);
  }
  return { nodes, view, killedAt, restartedAt };
}

test.serial("Redis killed and restarted on its AOF a second later: both nodes serve again on their own, every acknowledged write is there", async (t) => {
  await redisRestart(t, 1000);
});

test.serial("Redis away longer than the lease: every node drops its shards, then takes them again from the restarted Redis on its own", async (t) => {
  const { nodes, view, killedAt, restartedAt } = await redisRestart(t, 2 * LEASE_MS);
  for (const node of nodes) {
    const entries = logEntries(node);
    const lost = entries.filter((e) => e.msg === "shard lost" && e.time >= killedAt && e.time < restartedAt);
    const held = view.nodes.find((n) => n.id === node.nodeId)!.shards;
    t.deepEqual(lost.map((e) => e.shard).sort((x, y) => x! - y!), held, `${node.nodeId} dropped every shard it held`);
    t.deepEqual(lost.filter((e) => e.reason !== "not renewed in time"), [], `${node.nodeId} dropped them for lack of renewal`);
    const again = new Set(entries.filter((e) => e.msg === "shard acquired" && e.time >= restartedAt).map((e) => e.shard));
    t.deepEqual(lost.map((e) => e.shard).filter((shard) => !again.has(shard)), [], `${node.nodeId} took every dropped shard again after the restart`);
  }
});
