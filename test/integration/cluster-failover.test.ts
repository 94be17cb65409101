// Owner kill -9 (../shared/CLUSTER.md, "owner kill -9"): three `keystate serve` nodes on one
// Redis (AOF on). State is written through random nodes and acknowledged; then the node
// owning a third of the shards is killed with SIGKILL. Its entities must be served by the
// survivors within one lease plus an acquisition round, with every acknowledged increment and
// cart item present exactly once, and writable again (the new owner continues from the stored
// version). The killed node restarts with the same id and data dir, the cluster settles on
// three nodes again, and everything still reads back.
import test from "ava";
import { shardOf } from "../../host/journal/shards.js";
import {
  balancedOn,
  cartClient,
  clusterView,
  counterClient,
  deployExamples,
  failoverPoller,
  inPool,
  shardOwners,
  sortedCartLines,
  startClusterNode,
  stopAll,
  waitForCluster,
  waitForServices,
  type CartLine,
  type ClusterNodeProcess,
} from "../helpers/cluster-nodes.js";
import type { ContractClient } from "../helpers/grpc-client.js";
import { startRedis } from "../helpers/redis-server.js";
import { tempDirFor } from "../helpers/temp-dir.js";

const LEASE_MS = 3000;
const COUNTERS = 200;
const CARTS = 50;
const ITEMS_PER_CART = 3;
/** The counter's and the cart's persistence ids (each module.json in modules/). */
const COUNTER_PID = "counter";
const CART_PID = "shopping-cart";

const counterKey = (i: number) => `failover-counter-${i}`;
const cartKey = (i: number) => `failover-cart-${i}`;
/** How often counter i is incremented (1..4): every counter ends at a value of its own. */
const timesOf = (i: number) => 1 + (i % 4);
const productOf = (cart: number, item: number) => `p-${cart}-${item}`;

interface Clients {
  readonly counter: ContractClient;
  readonly cart: ContractClient;
}

const pick = <T>(items: readonly T[]): T => items[Math.floor(Math.random() * items.length)]!;

function expectedCart(i: number): CartLine[] {
  return Array.from({ length: ITEMS_PER_CART }, (_, m) => ({ productId: productOf(i, m), name: `Item ${i}/${m}`, quantity: m + 1 }));
}

test("kill -9 of a node: its shards are served elsewhere within lease + acquisition, no acknowledged write lost or doubled; it rejoins with the same id", async (t) => {
  const redis = await startRedis({ appendOnly: true, dataDir: await tempDirFor(t, "failover-redis") });
  t.teardown(() => redis.stop());
  const cluster = `failover-${process.pid}`;
  const ids = ["node-1", "node-2", "node-3"];
  const nodes: Array<ClusterNodeProcess | undefined> = [];
  t.teardown(() => stopAll(nodes));
  for (const nodeId of ids) nodes.push(await startClusterNode({ redisUrl: redis.url, cluster, nodeId, leaseMs: LEASE_MS }));
  const [n1, n2, n3] = nodes as ClusterNodeProcess[];
  const clients = new Map<ClusterNodeProcess, Clients>();
  const clientsOf = (node: ClusterNodeProcess): Clients => {
    let c = clients.get(node);
    if (!c) clients.set(node, (c = { counter: counterClient(node), cart: cartClient(node) }));
    return c;
  };
  t.teardown(() => {
    for (const c of clients.values()) {
      c.counter.close();
      c.cart.close();
    }
  });

  const view = await waitForCluster(n1!, balancedOn(ids));
  await deployExamples(n1!);
  await waitForServices([n1!, n2!, n3!]);

  // Acknowledged state, written through random nodes: counters incremented one call at a
  // time (each reply is the counter's new value), carts with unique items.
  const all = [n1!, n2!, n3!];
  const counterTasks = Array.from({ length: COUNTERS }, (_, i) => async () => {
    for (let n = 1; n <= timesOf(i); n++) {
      const reply = await clientsOf(pick(all)).counter.methods.Increase!({ counterId: counterKey(i), value: 1 });
      if (Number(reply.value) !== n) throw new Error(`${counterKey(i)}: increment ${n} answered ${reply.value}`);
    }
  });
  const cartTasks = Array.from({ length: CARTS }, (_, i) => async () => {
    for (const line of expectedCart(i)) await clientsOf(pick(all)).cart.methods.AddItem!({ userId: cartKey(i), ...line });
  });
  await inPool(16, [...counterTasks, ...cartTasks]);

  // The keys node 2 owns, by the shard function and the view every node agreed on.
  const owners = shardOwners(view);
  const onNode2 = {
    counters: Array.from({ length: COUNTERS }, (_, i) => i).filter((i) => owners.get(shardOf(COUNTER_PID, counterKey(i), view.shardCount)) === "node-2"),
    carts: Array.from({ length: CARTS }, (_, i) => i).filter((i) => owners.get(shardOf(CART_PID, cartKey(i), view.shardCount)) === "node-2"),
  };
  t.true(onNode2.counters.length > 20 && onNode2.carts.length > 3, `node 2 owns a share of the keys: ${JSON.stringify(onNode2)}`);

  // kill -9, then every key node 2 owned is called through the survivors until it answers.
  const survivors = [n1!, n3!];
  const killedAt = Date.now();
  await n2!.kill("SIGKILL");
  // Retryable while the shard has no reachable owner; anything else is a failure.
  const poller = failoverPoller(killedAt, 60_000);
  const untilAnswered = poller.answer;
  const answeredAfter = poller.after;
  await Promise.all([
    ...onNode2.counters.map((i) =>
      untilAnswered(
        () => clientsOf(pick(survivors)).counter.methods.Get!({ counterId: counterKey(i) }, { deadlineMs: 15_000 }),
        (reply) => t.is(Number(reply.value), timesOf(i), `${counterKey(i)} right after the failover`),
      ),
    ),
    ...onNode2.carts.map((i) =>
      untilAnswered(
        () => clientsOf(pick(survivors)).cart.methods.GetCart!({ userId: cartKey(i) }, { deadlineMs: 15_000 }),
        (reply) => t.deepEqual(sortedCartLines(reply.items), expectedCart(i), `${cartKey(i)} right after the failover`),
      ),
    ),
  ]);
  const failoverMs = Math.max(...answeredAfter);
  t.log(`every key node 2 owned answered again ${failoverMs} ms after its kill (lease ${LEASE_MS} ms)`);
  t.true(failoverMs < LEASE_MS + 3000, `served elsewhere within lease + acquisition: ${failoverMs} ms`);

  const afterFailover = await waitForCluster(n1!, balancedOn(["node-1", "node-3"]));
  t.false(afterFailover.nodes.find((n) => n.id === "node-2")?.alive ?? false, "node 2 is not alive in the view");

  // Everything, through the survivors: each increment and item exactly once.
  const readAll = async (through: readonly ClusterNodeProcess[], extra: ReadonlySet<number>, when: string) => {
    await inPool(16, [
      ...Array.from({ length: COUNTERS }, (_, i) => async () => {
        const reply = await clientsOf(pick(through)).counter.methods.Get!({ counterId: counterKey(i) });
        t.is(Number(reply.value), timesOf(i) + (extra.has(i) ? 1 : 0), `${counterKey(i)} ${when}`);
      }),
      ...Array.from({ length: CARTS }, (_, i) => async () => {
        const reply = await clientsOf(pick(through)).cart.methods.GetCart!({ userId: cartKey(i) });
        t.deepEqual(sortedCartLines(reply.items), expectedCart(i), `${cartKey(i)} ${when}`);
      }),
    ]);
  };
  await readAll(survivors, new Set(), "after the kill");

  // The new owners write on from the stored version: one more increment of each moved counter.
  await inPool(16, onNode2.counters.map((i) => async () => {
    const reply = await clientsOf(pick(survivors)).counter.methods.Increase!({ counterId: counterKey(i), value: 1 });
    t.is(Number(reply.value), timesOf(i) + 1, `${counterKey(i)} incremented at its new owner`);
  }));

  // Node 2 comes back with the same id and data dir; the shards spread over three nodes again.
  const restarted = await startClusterNode({ redisUrl: redis.url, cluster, nodeId: "node-2", leaseMs: LEASE_MS, dataDir: n2!.dataDir });
  nodes[1] = restarted;
  const settled = await waitForCluster(restarted, balancedOn(ids));
  await waitForCluster(n1!, balancedOn(ids));
  t.true(settled.nodes.find((n) => n.id === "node-2")!.shards.length > 0, "node 2 owns shards again");
  await waitForServices([restarted]);
  await readAll([n1!, restarted, n3!], new Set(onNode2.counters), "after node 2 rejoined");
  // Straight at node 2: the keys it owns now are served there (and the rest forwarded from there).
  await readAll([restarted], new Set(onNode2.counters), "through the restarted node 2");
  t.is((await clusterView(restarted)).self, "node-2");
});
