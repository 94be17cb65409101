// A Keystate cluster on a real Redis Cluster: two `keystate serve` nodes started with
// `--redis <3 master URLs> --redis-cluster` (ioredis Cluster client) on a 3-master Redis
// Cluster (AOF, fsync always). The modules deployed through node 1 reach node 2 (module
// notices on pub/sub, which a Redis Cluster broadcasts over its bus); calls through either
// node reach the owner of the key's shard (forwarded when it is the other node); every
// shard has one owner; entity state really sits on several masters. Then node 1 is killed
// with SIGKILL: node 2 must serve every key within one lease plus a few seconds, with
// every acknowledged write there exactly once, and write on from it.
import test from "ava";
import { Cluster, Redis } from "ioredis";
import { RedisLayout } from "../../host/journal/redis-keys.js";
import { shardOf } from "../../host/journal/shards.js";
import {
  cartClient,
  counterClient,
  deployExamples,
  failoverPoller,
  inPool,
  pollUntil,
  settledOn,
  sortedCartLines,
  startClusterNode,
  stopAll,
  waitForCluster,
  type CartLine,
  type ClusterNodeProcess,
  type ClusterViewJson,
} from "../helpers/cluster-nodes.js";
import type { ContractClient } from "../helpers/grpc-client.js";
import { scrapeMetrics } from "../helpers/metrics-scrape.js";
import type { NodeProcess } from "../helpers/node-process.js";
import { startRedisCluster } from "../helpers/redis-cluster.js";

const LEASE_MS = 3000;
/** "Lease + a few seconds": node 2 sees the heartbeat lapse, the leases expire, it acquires. */
const FAILOVER_BOUND_MS = LEASE_MS + 3000;
const COUNTERS = 60;
const CARTS = 12;
/** The counter's and the cart's persistence ids (each module.json in modules/). */
const COUNTER_PID = "counter";
const CART_PID = "shopping-cart";
const MODULES = ["counter", "shopping-cart"];

const counterKey = (i: number) => `rc-counter-${i}`;
const cartKey = (i: number) => `rc-cart-${i}`;
/** How often counter i is incremented (1..3): the counters end at values of their own. */
const timesOf = (i: number) => 1 + (i % 3);

const cartLines = (i: number): CartLine[] => [
  { productId: `p-${i}-a`, name: `A ${i}`, quantity: 1 },
  { productId: `p-${i}-b`, name: `B ${i}`, quantity: 2 },
];

/** The time (node's Date.now()) `node` logged `msg` for `module`, if it did. */
function loggedAt(node: NodeProcess, msg: string, module: string): number | undefined {
  for (const line of node.output.join("").split("\n")) {
    if (!line.startsWith("{")) continue;
    try {
      const entry = JSON.parse(line) as { msg?: string; module?: string; time?: number };
      if (entry.msg === msg && entry.module === module) return entry.time;
    } catch {
      // a line cut by the pipe
    }
  }
  return undefined;
}

const evenlySplit = (ids: readonly string[]) => (view: ClusterViewJson) =>
  settledOn(ids)(view) && view.nodes.filter((n) => ids.includes(n.id)).every((n) => n.shards.length === view.shardCount / ids.length);

test("two nodes with --redis-cluster on a 3-master Redis Cluster: modules follow over pub/sub, calls are forwarded, kill -9 of node 1 loses nothing", async (t) => {
  const redis = await startRedisCluster();
  t.teardown(() => redis.stop());
  const clusterName = `rc-${process.pid}`;
  const layout = new RedisLayout(clusterName, 256);
  const ids = ["node-1", "node-2"];
  const nodes: Array<ClusterNodeProcess | undefined> = [];
  t.teardown(() => stopAll(nodes));

  // The test's own view of the Redis Cluster: a cluster client, one plain client per master,
  // and a subscriber on the Keystate cluster's notice channel.
  const inspect = new Cluster([...redis.seeds], { lazyConnect: true });
  const subscriber = new Cluster([...redis.seeds], { lazyConnect: true });
  const direct = redis.seeds.map((seed) => new Redis({ host: seed.host, port: seed.port, lazyConnect: true }));
  for (const client of [inspect, subscriber, ...direct]) client.on("error", () => {});
  t.teardown(() => [inspect, subscriber, ...direct].forEach((c) => c.disconnect()));
  await Promise.all([inspect.connect(), subscriber.connect(), ...direct.map((c) => c.connect())]);
  const channel = layout.clusterKey("events");
  const notices: Array<{ at: number; notice: { type: string; from: string; name?: string } }> = [];
  subscriber.on("message", (ch: string, message: string) => {
    if (ch === channel) notices.push({ at: Date.now(), notice: JSON.parse(message) });
  });
  await subscriber.subscribe(channel);

  const seeds = redis.urls.join(",");
  const started = await Promise.all(
    ids.map((nodeId) => startClusterNode({ redisUrl: seeds, cluster: clusterName, nodeId, leaseMs: LEASE_MS, extraArgs: ["--redis-cluster"] })),
  );
  nodes.push(...started);
  const [n1, n2] = started as [ClusterNodeProcess, ClusterNodeProcess];

  // GET /cluster, on both nodes: 2 alive nodes, every one of the 256 shards owned by exactly one, 128 each.
  const [view1, view2] = await Promise.all([waitForCluster(n1, evenlySplit(ids), 30_000), waitForCluster(n2, evenlySplit(ids), 30_000)]);
  t.is(view1.shardCount, 256);
  t.deepEqual(view1.nodes.map((n) => [n.id, n.alive, n.shards.length]), [["node-1", true, 128], ["node-2", true, 128]]);
  t.deepEqual(view2.nodes.map((n) => [n.id, n.shards]), view1.nodes.map((n) => [n.id, n.shards]), "both nodes see the same owners");
  const owners = new Map<number, string>();
  for (const node of view1.nodes) for (const shard of node.shards) owners.set(shard, node.id);
  t.is(owners.size, 256);

  // The leases themselves are on the Redis Cluster, spread over its masters, and agree with the view.
  const slotMaster = new Map<number, number>();
  for (const [start, end, [, port]] of (await direct[0]!.call("CLUSTER", "SLOTS")) as Array<[number, number, [string, number]]>) {
    for (let slot = start; slot <= end; slot++) slotMaster.set(slot, Number(port));
  }
  const masterOfKey = async (key: string) => slotMaster.get(Number(await direct[0]!.call("CLUSTER", "KEYSLOT", key)))!;
  const leaseOwners = await Promise.all(Array.from({ length: 256 }, (_, shard) => inspect.hget(layout.leaseKey(shard), "owner")));
  t.deepEqual(leaseOwners, Array.from({ length: 256 }, (_, shard) => owners.get(shard)), "every lease hash names the owner /cluster shows");
  const leaseMasters = new Set(await Promise.all(Array.from({ length: 256 }, (_, shard) => masterOfKey(layout.leaseKey(shard)))));
  t.is(leaseMasters.size, 3, "the shard leases are spread over all three masters");

  // Both nodes' subscribers are on the Redis Cluster (each master counts its own subscribers): theirs and ours.
  const numsub = await Promise.all(direct.map(async (c) => Number(((await c.call("PUBSUB", "NUMSUB", channel)) as [string, number])[1])));
  t.is(numsub.reduce((a, b) => a + b, 0), 3, `subscribers of ${channel} per master: ${numsub.join(", ")}`);

  // Deploy through node 1 only; node 2 hears of it on pub/sub and loads the same versions.
  const deployedAt = Date.now();
  await deployExamples(n1);
  for (const name of MODULES) {
    const notice = await pollUntil(`a module notice for ${name} on the Redis Cluster`, 10_000, () =>
      notices.find((n) => n.notice.type === "module" && n.notice.name === name && n.notice.from === "node-1"),
    );
    const loaded = await pollUntil(`node 2 to load ${name} from the cluster`, 15_000, () => loggedAt(n2, "module version loaded from the cluster", name));
    t.log(`${name}: notice ${notice.at - deployedAt} ms after the deploy started; node 2 loaded it ${loaded - notice.at} ms after the notice`);
  }
  t.true(notices.some((n) => n.notice.type === "joined" && n.notice.from === "node-2"), "join notices travel on the same channel");

  // Both nodes serve both services (node 2 never had a deploy of its own).
  const clients = new Map<NodeProcess, { counter: ContractClient; cart: ContractClient }>();
  const via = (node: NodeProcess) => {
    let c = clients.get(node);
    if (!c) clients.set(node, (c = { counter: counterClient(node), cart: cartClient(node) }));
    return c;
  };
  t.teardown(() => clients.forEach((c) => (c.counter.close(), c.cart.close())));
  for (const node of [n1, n2]) {
    await pollUntil(`port ${node.grpcPort} to answer Counter and ShoppingCart`, 15_000, async () => {
      const ok = await Promise.all([
        via(node).counter.methods.Get!({ counterId: "probe" }, { deadlineMs: 2000 }).then(() => true, () => false),
        via(node).cart.methods.GetCart!({ userId: "probe" }, { deadlineMs: 2000 }).then(() => true, () => false),
      ]);
      return ok.every(Boolean) ? true : undefined;
    }, 100);
  }

  // Acknowledged writes through both nodes, alternating: every increment's reply is the counter's new value.
  const both = [n1, n2];
  await inPool(8, [
    ...Array.from({ length: COUNTERS }, (_, i) => async () => {
      for (let n = 1; n <= timesOf(i); n++) {
        const reply = await via(both[(i + n) % 2]!).counter.methods.Increase!({ counterId: counterKey(i), value: 1 });
        t.is(Number(reply.value), n, `${counterKey(i)}: increment ${n}`);
      }
    }),
    ...Array.from({ length: CARTS }, (_, i) => async () => {
      for (const [m, line] of cartLines(i).entries()) await via(both[(i + m) % 2]!).cart.methods.AddItem!({ userId: cartKey(i), ...line });
    }),
  ]);
  // Reads through each node give the same answer, whichever node owns the key.
  for (const node of both) {
    await inPool(8, [
      ...Array.from({ length: COUNTERS }, (_, i) => async () => {
        t.is(Number((await via(node).counter.methods.Get!({ counterId: counterKey(i) })).value), timesOf(i), `${counterKey(i)} via ${node.grpcPort}`);
      }),
      ...Array.from({ length: CARTS }, (_, i) => async () => {
        t.deepEqual(sortedCartLines((await via(node).cart.methods.GetCart!({ userId: cartKey(i) })).items), cartLines(i), `${cartKey(i)} via ${node.grpcPort}`);
      }),
    ]);
  }
  const ownerOfCounter = (i: number) => owners.get(shardOf(COUNTER_PID, counterKey(i), 256))!;
  const ownerOfCart = (i: number) => owners.get(shardOf(CART_PID, cartKey(i), 256))!;
  const onNode1 = {
    counters: Array.from({ length: COUNTERS }, (_, i) => i).filter((i) => ownerOfCounter(i) === "node-1"),
    carts: Array.from({ length: CARTS }, (_, i) => i).filter((i) => ownerOfCart(i) === "node-1"),
  };
  t.true(onNode1.counters.length > 10 && onNode1.counters.length < COUNTERS - 10, `node 1 owns a share of the counters: ${onNode1.counters.length}`);
  t.true(onNode1.carts.length > 0 && onNode1.carts.length < CARTS, `node 1 owns a share of the carts: ${onNode1.carts.length}`);
  // Each node forwarded the calls for the other's keys, and they succeeded.
  for (const node of both) {
    const { samples } = await scrapeMetrics(node.adminUrl);
    const ok = samples.get('keystate_cluster_forwards_total{result="ok"}') ?? 0;
    t.true(ok >= 20, `port ${node.grpcPort} forwarded calls to the owner: ${ok} ok`);
  }

  // The counters' values are on the Redis Cluster under their shard's tag, on several masters,
  // each written once per acknowledged increment (the value hash's version).
  const valueMasters = new Set<number>();
  for (let i = 0; i < COUNTERS; i++) {
    const keys = layout.entityKeys({ persistenceId: COUNTER_PID, key: counterKey(i) });
    t.is(keys.shard, shardOf(COUNTER_PID, counterKey(i), 256));
    t.is(await inspect.hget(keys.value, "n"), String(timesOf(i)), `${keys.value}: one stored version per increment`);
    valueMasters.add(await masterOfKey(keys.value));
  }
  t.is(valueMasters.size, 3, "the counters' values are spread over all three masters");

  // kill -9 of node 1: node 2 takes its shards once their leases lapse and serves every key.
  const killedAt = Date.now();
  await n1.kill("SIGKILL");
  // Retryable while the shard has no reachable owner; anything else is a failure.
  const poller = failoverPoller(killedAt, 4 * FAILOVER_BOUND_MS);
  const untilAnswered = poller.answer;
  const answeredAfter = poller.after;
  await Promise.all([
    ...onNode1.counters.map((i) =>
      untilAnswered(
        () => via(n2).counter.methods.Get!({ counterId: counterKey(i) }, { deadlineMs: 10_000 }),
        (reply) => t.is(Number(reply.value), timesOf(i), `${counterKey(i)} right after the failover`),
      ),
    ),
    ...onNode1.carts.map((i) =>
      untilAnswered(
        () => via(n2).cart.methods.GetCart!({ userId: cartKey(i) }, { deadlineMs: 10_000 }),
        (reply) => t.deepEqual(sortedCartLines(reply.items), cartLines(i), `${cartKey(i)} right after the failover`),
      ),
    ),
  ]);
  const failoverMs = Math.max(...answeredAfter);
  t.log(`every key node 1 owned answered through node 2 ${failoverMs} ms after the kill (lease ${LEASE_MS} ms)`);
  t.true(failoverMs < FAILOVER_BOUND_MS, `served by node 2 within lease + a few seconds: ${failoverMs} ms`);

  // GET /cluster: node 2 alone owns all 256 shards; node 1 is not alive.
  const after = await waitForCluster(n2, settledOn(["node-2"]), 15_000);
  t.is(after.nodes.find((n) => n.id === "node-2")!.shards.length, 256);
  t.false(after.nodes.find((n) => n.id === "node-1")?.alive ?? false, "node 1 is not alive in the view");

  // Every acknowledged write, exactly once, through node 2; then it writes on from the stored versions.
  await inPool(8, [
    ...Array.from({ length: COUNTERS }, (_, i) => async () => {
      t.is(Number((await via(n2).counter.methods.Get!({ counterId: counterKey(i) })).value), timesOf(i), `${counterKey(i)} after the kill`);
    }),
    ...Array.from({ length: CARTS }, (_, i) => async () => {
      t.deepEqual(sortedCartLines((await via(n2).cart.methods.GetCart!({ userId: cartKey(i) })).items), cartLines(i), `${cartKey(i)} after the kill`);
    }),
  ]);
  await inPool(8, onNode1.counters.map((i) => async () => {
    const reply = await via(n2).counter.methods.Increase!({ counterId: counterKey(i), value: 1 });
    t.is(Number(reply.value), timesOf(i) + 1, `${counterKey(i)} incremented at its new owner`);
  }));
  for (const i of onNode1.counters) {
    t.is(await inspect.hget(layout.entityKeys({ persistenceId: COUNTER_PID, key: counterKey(i) }).value, "n"), String(timesOf(i) + 1));
  }
  // The shards node 2 took over have a new epoch, held by node 2.
  const moved = [...new Set(onNode1.counters.map((i) => shardOf(COUNTER_PID, counterKey(i), 256)))];
  for (const shard of moved) {
    const [owner, epoch] = await inspect.hmget(layout.leaseKey(shard), "owner", "epoch");
    t.is(owner, "node-2", `shard ${shard} is leased to node 2`);
    t.true(Number(epoch) >= 2, `shard ${shard} has a later epoch than node 1's (${epoch})`);
  }
});
