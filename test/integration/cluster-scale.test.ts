// Scaling under load (../shared/CLUSTER.md, "scale 1 -> 3 -> 1 under load"): one node, then
// two, three, two and one again, while a background load of counter increments and cart
// additions (each with a product id of its own) goes through random live nodes. Nodes join by
// starting and leave gracefully (SIGTERM: mark draining, hand every shard off, exit 0).
//
// After each step, once the cluster has settled on the live nodes (each node's own account of
// the shards it holds): no operation failed after its one client retry; shards are spread
// within 10 % of even; a joining node logged "shard acquired" for the shards it holds; a
// leaving node logged "node leaving", "shard released" (with `to`, a live node) for every
// shard it held (or "shard lost" at its safety deadline, on a loaded box), "node left", and
// exited with code 0. At the end every entity is read back: a counter holds its acknowledged
// increments (plus at most the ones whose first attempt failed and so are in doubt), a cart
// every acknowledged item once.
//
// A second test sets up, deterministically, what a loaded box can do to the first: the owner
// drops shards at its safety deadline while a newcomer waits for them.
import test from "ava";
import { Redis } from "ioredis";
import { assignShards } from "../../host/cluster/assignment.js";
import { RedisLayout } from "../../host/journal/redis-keys.js";
import {
  cartClient,
  clusterView,
  counterClient,
  deployExamples,
  heldShards,
  logEntries,
  outputComplete,
  pollUntil,
  settledOn,
  startClusterNode,
  stopAll,
  waitForCluster,
  waitForHeldBy,
  waitForServices,
  type ClusterNodeProcess,
} from "../helpers/cluster-nodes.js";
import type { ContractClient } from "../helpers/grpc-client.js";
import { startRedis } from "../helpers/redis-server.js";

const LEASE_MS = 3000;
const COUNTERS = 24;
const CARTS = 12;
const WORKERS = 4;
/** A worker's pause between operations: a steady load that leaves the 2-core box room for the nodes' own work. */
const PACE_MS = 5;
const CALL_DEADLINE_MS = 10_000;
/** Acknowledged operations each step must see before it is checked (the load really ran through it). */
const OPS_PER_STEP = 100;

const counterKey = (i: number) => `scale-counter-${i}`;
const cartKey = (i: number) => `scale-cart-${i}`;
const pick = <T>(items: readonly T[]): T => items[Math.floor(Math.random() * items.length)]!;

interface Clients {
  readonly counter: ContractClient;
  readonly cart: ContractClient;
}

/** What the load did, per entity: acknowledged, and in doubt (an attempt failed; it may or may not have been applied). */
class Ledger {
  readonly counterAcked = new Map<string, number>();
  readonly counterInDoubt = new Map<string, number>();
  readonly cartAcked = new Map<string, Set<string>>();
  readonly cartInDoubt = new Map<string, Set<string>>();
  acknowledged = 0;
  retried = 0;
  /** Operations that failed after their one retry, with the errors of both attempts. */
  readonly failures: string[] = [];
  /** The errors first attempts met (retried), for the log. */
  readonly firstErrors = new Map<string, number>();
}

const add = (map: Map<string, number>, key: string, by: number) => map.set(key, (map.get(key) ?? 0) + by);
const addTo = (map: Map<string, Set<string>>, key: string, item: string) => {
  let set = map.get(key);
  if (!set) map.set(key, (set = new Set()));
  set.add(item);
};
const describe = (err: unknown) => {
  const { code, details, message } = err as { code?: number; details?: string; message?: string };
  return code === undefined ? String(message) : `code ${code}: ${details}`;
};

/** Background load through random live nodes: one client retry per operation, at another random live node. */
function startLoad(live: () => readonly ClusterNodeProcess[], clientsOf: (node: ClusterNodeProcess) => Clients, ledger: Ledger): { stop(): Promise<void> } {
  let stopping = false;
  let nextProduct = 0;
  const attempt = (call: (clients: Clients) => Promise<unknown>) => call(clientsOf(pick(live())));
  const operation = async (): Promise<void> => {
    const isCounter = Math.random() < 0.5;
    let call: (clients: Clients) => Promise<unknown>;
    let acked: () => void;
    let inDoubt: () => void;
    let what: string;
    if (isCounter) {
      const id = counterKey(Math.floor(Math.random() * COUNTERS));
      const by = 1 + Math.floor(Math.random() * 5);
      call = (c) => c.counter.methods.Increase!({ counterId: id, value: by }, { deadlineMs: CALL_DEADLINE_MS });
      acked = () => add(ledger.counterAcked, id, by);
      inDoubt = () => add(ledger.counterInDoubt, id, by);
      what = `Increase ${id} by ${by}`;
    } else {
      const id = cartKey(Math.floor(Math.random() * CARTS));
      const product = `product-${nextProduct++}`;
      call = (c) => c.cart.methods.AddItem!({ userId: id, productId: product, name: `Item ${product}`, quantity: 1 }, { deadlineMs: CALL_DEADLINE_MS });
      acked = () => addTo(ledger.cartAcked, id, product);
      inDoubt = () => addTo(ledger.cartInDoubt, id, product);
      what = `AddItem ${product} to ${id}`;
    }
    try {
      await attempt(call);
      acked();
      ledger.acknowledged++;
      return;
    } catch (first) {
      inDoubt();
      ledger.retried++;
      const key = describe(first);
      ledger.firstErrors.set(key, (ledger.firstErrors.get(key) ?? 0) + 1);
      try {
        await attempt(call);
        acked();
        ledger.acknowledged++;
      } catch (second) {
        ledger.failures.push(`${what}: ${describe(first)}; then ${describe(second)}`);
      }
    }
  };
  const worker = async () => {
    while (!stopping) {
      await operation();
      await new Promise((resolve) => setTimeout(resolve, PACE_MS));
    }
  };
  const workers = Array.from({ length: WORKERS }, worker);
  return {
    async stop() {
      stopping = true;
      await Promise.all(workers);
    },
  };
}

/** What a node's log says about its shards, and its warnings and errors (for a step that did not settle). */
function logSummary(node: ClusterNodeProcess): string {
  const entries = logEntries(node);
  const count = (msg: string) => entries.filter((e) => e.msg === msg).length;
  const problems = entries.filter((e) => Number(e.level) >= 40).map((e) => JSON.stringify(e));
  return `${count("shard acquired")} acquired, ${count("shard released")} released, ${count("shard lost")} lost; ${problems.length} warnings/errors:\n${problems.slice(-15).join("\n")}`;
}

test.serial("scale 1 -> 2 -> 3 -> 2 -> 1 under load: graceful joins and leaves, shards spread evenly, no failed operation, all state intact", async (t) => {
  const redis = await startRedis();
  t.teardown(() => redis.stop());
  const cluster = `scale-${process.pid}`;
  const started: ClusterNodeProcess[] = [];
  const clients = new Map<ClusterNodeProcess, Clients>();
  t.teardown(async () => {
    for (const c of clients.values()) {
      c.counter.close();
      c.cart.close();
    }
    await stopAll(started);
  });
  const clientsOf = (node: ClusterNodeProcess): Clients => {
    let c = clients.get(node);
    if (!c) clients.set(node, (c = { counter: counterClient(node), cart: cartClient(node) }));
    return c;
  };
  let live: ClusterNodeProcess[] = [];
  const ids = () => live.map((n) => n.nodeId);
  const ledger = new Ledger();

  const start = async (nodeId: string) => {
    const node = await startClusterNode({ redisUrl: redis.url, cluster, nodeId, leaseMs: LEASE_MS });
    started.push(node);
    return node;
  };

  /** The checks after every step; `step` names it in messages. */
  const settle = async (step: string, opsBefore: number): Promise<Map<string, number[]>> => {
    // The members are the live nodes (a view from one of them), and the shards are held by
    // them, each exactly once, by each node's own account. settledOn alone also holds between
    // two hand-off rounds (some shards not yet where they go) and counts a shard whose lease in
    // Redis still names a node that dropped it: wait for the spread on the nodes' own word.
    const even = 256 / live.length;
    const within = (count: number) => count >= 0.9 * even && count <= 1.1 * even;
    let held: Map<string, number[]>;
    try {
      await waitForCluster(live[0]!, settledOn(ids()), 30_000);
      held = await waitForHeldBy(live, 30_000, (h) => ids().every((id) => within(h.get(id)?.length ?? 0)));
    } catch (err) {
      for (const node of live) t.log(`${node.nodeId}'s log: ${logSummary(node)}`);
      throw err;
    }
    await pollUntil(`${OPS_PER_STEP} operations acknowledged during ${step}`, 20_000, () => (ledger.acknowledged >= opsBefore + OPS_PER_STEP ? true : undefined), 20);
    t.deepEqual(ledger.failures, [], `${step}: no operation failed after its retry`);
    const counts = Object.fromEntries([...held].map(([id, shards]) => [id, shards.length]));
    t.log(`${step}: shards ${JSON.stringify(counts)}; ${ledger.acknowledged} operations acknowledged, ${ledger.retried} retried so far`);
    for (const id of ids()) t.true(within(counts[id] ?? 0), `${step}: ${id} holds ${counts[id]} shards, within 10 % of ${even.toFixed(1)}`);
    const members = (await clusterView(live[0]!)).nodes.filter((n) => n.alive).map((n) => n.id);
    t.deepEqual(members.sort(), [...ids()].sort(), `${step}: the live members are exactly ${ids().join(", ")}`);
    return held;
  };

  const join = async (nodeId: string): Promise<void> => {
    const opsBefore = ledger.acknowledged;
    const node = await start(nodeId);
    live = [...live, node];
    const held = await settle(`${live.length - 1} -> ${live.length} (${nodeId} joins)`, opsBefore);
    // Its log lines travel on a pipe of their own: give the last ones a moment to arrive.
    const holds = held.get(nodeId)!;
    const unlogged = () => {
      const acquired = new Set(logEntries(node).filter((e) => e.msg === "shard acquired").map((e) => e.shard));
      return holds.filter((s) => !acquired.has(s));
    };
    await pollUntil(`${nodeId}'s "shard acquired" lines`, 5000, () => (unlogged().length === 0 ? true : undefined)).catch(() => undefined);
    t.deepEqual(unlogged(), [], `${nodeId} logged "shard acquired" for every shard it holds`);
  };

  const leave = async (node: ClusterNodeProcess): Promise<void> => {
    const opsBefore = ledger.acknowledged;
    const held = (await heldShards([node])).get(node.nodeId)!;
    live = live.filter((n) => n !== node); // no new operation goes to it from now on
    const remaining = ids();
    const sentAt = Date.now();
    await node.kill("SIGTERM");
    await outputComplete(node);
    const step = `${live.length + 1} -> ${live.length} (${node.nodeId} leaves)`;
    t.log(`${step}: exited ${Date.now() - sentAt} ms after SIGTERM, handing off ${held.length} shards`);
    t.is(node.child.exitCode, 0, `${step}: exit code 0`);
    t.is(node.child.signalCode, null, `${step}: it exited on its own`);
    const entries = logEntries(node);
    const leaving = entries.findIndex((e) => e.msg === "node leaving");
    const left = entries.findIndex((e) => e.msg === "node left");
    t.true(leaving >= 0, `${step}: logged "node leaving"`);
    t.true(left > leaving, `${step}: logged "node left" after it`);
    const during = entries.slice(leaving, left);
    const released = during.filter((e) => e.msg === "shard released");
    // A shard whose renewal came too late on a loaded box is dropped at its safety deadline
    // ("shard lost") instead: by design, its lease then runs out and its target takes it over.
    const lost = during.filter((e) => e.msg === "shard lost");
    if (lost.length > 0) t.log(`${step}: lost during the leave instead of handed off: ${JSON.stringify(lost.map((e) => ({ shard: e.shard, reason: e.reason })))}`);
    t.true(released.length > 0, `${step}: logged "shard released" lines`);
    t.deepEqual(lost.filter((e) => e.reason !== "not renewed in time").map((e) => ({ shard: e.shard, reason: e.reason })), [], `${step}: no shard taken away from the leaving node (only safety-deadline drops)`);
    const accounted = [...released, ...lost].map((e) => e.shard).sort((a, b) => a! - b!);
    if (accounted.length !== held.length) t.log(`${step}: the leaving node's log from "node leaving" on: ${entries.slice(leaving).map((e) => `${e.msg}${e.shard === undefined ? "" : ` ${e.shard}`}`).join("; ")}`);
    t.deepEqual(accounted, [...held].sort((a, b) => a - b), `${step}: every shard it held is released ("shard released") or dropped ("shard lost"), once`);
    t.deepEqual(released.filter((e) => typeof e.to !== "string" || !remaining.includes(e.to)).map((e) => ({ shard: e.shard, to: e.to })), [], `${step}: every release names a live node in "to"`);
    await settle(step, opsBefore);
  };

  // One node with the modules, then the load.
  live = [await start("scale-1")];
  await deployExamples(live[0]!);
  await waitForServices(live);
  const load = startLoad(() => live, clientsOf, ledger);
  try {
    await settle("1 node", 0);
    await join("scale-2");
    await join("scale-3");
    await leave(started[0]!); // 3 -> 2: the first node goes
    await leave(started[1]!); // 2 -> 1
  } finally {
    await load.stop();
  }
  t.deepEqual(ledger.failures, [], "no operation failed after its retry");
  t.log(`load: ${ledger.acknowledged} operations acknowledged, ${ledger.retried} retried; first-attempt errors: ${JSON.stringify(Object.fromEntries(ledger.firstErrors))}`);

  // Everything reads back from the last node.
  const last = clientsOf(live[0]!);
  for (let i = 0; i < COUNTERS; i++) {
    const id = counterKey(i);
    const value = Number(((await last.counter.methods.Get!({ counterId: id })) as { value: string }).value);
    const acked = ledger.counterAcked.get(id) ?? 0;
    const doubt = ledger.counterInDoubt.get(id) ?? 0;
    t.true(value >= acked && value <= acked + doubt, `${id} = ${value}: its acknowledged ${acked}, plus at most ${doubt} in doubt`);
  }
  for (let i = 0; i < CARTS; i++) {
    const id = cartKey(i);
    const cart = (await last.cart.methods.GetCart!({ userId: id })) as { items: Array<{ productId: string; quantity: number }> };
    const acked = ledger.cartAcked.get(id) ?? new Set<string>();
    const doubt = ledger.cartInDoubt.get(id) ?? new Set<string>();
    const lines = new Map<string, number>();
    for (const item of cart.items) lines.set(item.productId, (lines.get(item.productId) ?? 0) + 1);
    t.deepEqual([...lines].filter(([, n]) => n > 1), [], `${id}: one line per product`);
    t.deepEqual([...acked].filter((p) => !lines.has(p)), [], `${id}: every acknowledged item is there`);
    // Quantity 1 each: an item added twice (a retry after an attempt that did apply) is in doubt, not acknowledged once.
    t.deepEqual(cart.items.filter((item) => item.quantity !== 1 && !doubt.has(item.productId)).map((item) => item.productId), [], `${id}: every item not in doubt is there once (quantity 1)`);
    t.deepEqual(cart.items.filter((item) => !acked.has(item.productId) && !doubt.has(item.productId)).map((item) => item.productId), [], `${id}: no item that was never sent`);
    t.deepEqual(cart.items.filter((item) => item.quantity > 2).map((item) => item.productId), [], `${id}: no item applied more often than it was sent (two attempts at most)`);
  }
});

// A join while the owner is stalled: the owner drops its shards at the safety deadline
// (no renewal in time) before it could hand the newcomer its share. The design (CLUSTER.md,
// "Membership and rebalancing") has the newcomer acquire the shards that target it and are
// "free or expired": once the dropped leases run out, the newcomer must take its share, even
// though the old owner is alive (it woke up before its heartbeat lapsed).
test.serial("a joining node takes over its share of shards that the alive old owner dropped at its safety deadline, once their leases expire", async (t) => {
  const redis = await startRedis();
  t.teardown(() => redis.stop());
  const cluster = `orphan-${process.pid}`;
  const started: ClusterNodeProcess[] = [];
  const direct = new Redis(redis.url, { lazyConnect: true, maxRetriesPerRequest: 1 });
  t.teardown(async () => {
    for (const node of started) if (node.child.exitCode === null && node.child.signalCode === null) node.child.kill("SIGCONT");
    direct.disconnect();
    await stopAll(started);
  });
  // A's lease (= its heartbeat TTL) is 8 s, so A's pause fits C's start-up on a loaded box:
  // A drops its shards 3 s (its safety margin) before its heartbeat would lapse.
  const A_LEASE_MS = 8000;
  const a = await startClusterNode({ redisUrl: redis.url, cluster, nodeId: "orphan-a", leaseMs: A_LEASE_MS });
  started.push(a);
  const b = await startClusterNode({ redisUrl: redis.url, cluster, nodeId: "orphan-b", leaseMs: LEASE_MS });
  started.push(b);
  await waitForCluster(a, settledOn(["orphan-a", "orphan-b"]));
  // Hand-offs done: each of A and B holds exactly what the assignment gives it.
  const twoNodes = assignShards(256, ["orphan-a", "orphan-b"]);
  await direct.connect();
  await waitForHeldBy([a, b], 20_000, (h) => [...h].every(([id, shards]) => shards.every((s) => twoNodes[s] === id)));
  const layout = new RedisLayout(cluster, 256);

  // Freeze A, then let C join: A holds shards the new assignment gives C, and cannot hand them off.
  a.child.kill("SIGSTOP");
  const pausedAt = Date.now();
  // Read after the freeze (A renews its heartbeat and its leases together, and cannot now):
  // A's shards are past their safety deadline 3 s before its heartbeat lapses. Wake A
  // halfway between the two.
  const heartbeatLeft = await direct.pttl(layout.clusterKey("hb:orphan-a"));
  const wakeAt = pausedAt + heartbeatLeft - 1500;
  const c = await startClusterNode({ redisUrl: redis.url, cluster, nodeId: "orphan-c", leaseMs: LEASE_MS });
  started.push(c);
  t.true(Date.now() < wakeAt, `C joined while A was frozen (setting the scene: C started ${Date.now() - pausedAt} ms into A's ${wakeAt - pausedAt} ms pause)`);
  const target = assignShards(256, ["orphan-a", "orphan-b", "orphan-c"]);
  const heldByA = twoNodes.flatMap((id, shard) => (id === "orphan-a" ? [shard] : []));
  const forC = heldByA.filter((s) => target[s] === "orphan-c");
  t.true(forC.length > 0, "A holds shards that now go to C");
  await new Promise((resolve) => setTimeout(resolve, Math.max(0, wakeAt - Date.now())));
  a.child.kill("SIGCONT");
  await pollUntil("A to drop its shards (safety deadline)", 10_000, () => (logEntries(a).some((e) => e.msg === "shard lost" && e.reason === "not renewed in time") ? true : undefined));
  const lost = new Set(logEntries(a).filter((e) => e.msg === "shard lost").map((e) => e.shard));
  t.log(`A held ${heldByA.length} shards, ${forC.length} of them now C's; A dropped ${lost.size} at its safety deadline, ${forC.filter((s) => lost.has(s)).length} of C's; A released ${logEntries(a).filter((e) => e.msg === "shard released").length}`);
  t.true(forC.some((s) => lost.has(s)), "A dropped shards assigned to C without handing them off");
  t.true((await clusterView(b)).nodes.find((n) => n.id === "orphan-a")?.alive, "A is alive (it woke up before its heartbeat lapsed)");

  // A's dropped leases run out one A lease after its last renewal, about when its heartbeat
  // would have lapsed (1.5 s from now); C then acquires its share within a round (750 ms).
  // Allow three of C's leases. Checked on each node's own account of what it holds (not a
  // peer's view of the leases, which still name A).
  const ok = await waitForHeldBy([a, b, c], 3 * LEASE_MS).then(
    () => true,
    async (err: Error) => {
      // Evidence: the leases of the shards nobody holds, read from Redis, against Redis's clock.
      const [seconds, micros] = (await direct.time()) as unknown as [string, string];
      const now = Number(seconds) * 1000 + Math.floor(Number(micros) / 1000);
      const held = new Set([...(await heldShards([a, b, c])).values()].flat());
      const orphans: string[] = [];
      for (let shard = 0; shard < 256; shard++) {
        if (held.has(shard)) continue;
        const [owner, epoch, until] = await direct.hmget(layout.leaseKey(shard), "owner", "epoch", "until");
        orphans.push(`shard ${shard} (target ${target[shard]}): owner=${owner} epoch=${epoch} until=${until} (${Number(until) - now} ms from now)`);
      }
      const members = (await clusterView(c)).nodes.map((n) => `${n.id} alive=${n.alive}`).join(", ");
      t.log(`${err.message}\n${orphans.length} shards held by no node ${Date.now() - pausedAt} ms after A's pause began (members: ${members}); the first of them:\n${orphans.slice(0, 8).join("\n")}`);
      return false;
    },
  );
  t.true(ok, "every shard is held again: C took over the expired leases A dropped");
});
