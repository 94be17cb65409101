// A stale owner (../shared/CLUSTER.md, "owner SIGSTOP longer than the lease, then SIGCONT"):
// two nodes; a counter and a cart whose shards node A owns are written through node B
// (forwarded to A) and through A directly. A is frozen with SIGSTOP for 2.5 leases: B must
// take the shards over and serve them from the acknowledged state; calls sent to the frozen
// A must, once it wakes, get a correct answer or a retryable status, never a stale or wrong
// value; A must drop the shards; and Redis, read directly, must hold a gapless journal and
// value history in which nothing was stored under A's epoch once its lease was gone.
// Redis MONITOR (test/helpers/redis-monitor.ts) records every lease change and entity write,
// so "who wrote what under which lease" is checked on what Redis really executed.
import test from "ava";
import { status, type ServiceError } from "@grpc/grpc-js";
import { Redis } from "ioredis";
import protobuf from "protobufjs";
import { RedisLayout } from "../../host/journal/redis-keys.js";
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
  startClusterNode,
  stopAll,
  waitForCluster,
  waitForServices,
  type ClusterNodeProcess,
} from "../helpers/cluster-nodes.js";
import type { ContractClient } from "../helpers/grpc-client.js";
import { scrapeMetrics } from "../helpers/metrics-scrape.js";
import { monitorCluster } from "../helpers/redis-monitor.js";
import { startRedis } from "../helpers/redis-server.js";

const LEASE_MS = 3000;
const PAUSE_MS = 2.5 * LEASE_MS;
/** Worker calls give up after this (a call forwarded to the frozen A waits this long). */
const WORKER_DEADLINE_MS = 3000;
const COUNTER_PID = "counter";
const CART_PID = "shopping-cart";
const RETRYABLE = new Set([status.UNAVAILABLE, status.ABORTED]);

const domain = (() => {
  const root = new protobuf.Root();
  const line = new protobuf.Type("LineItem").add(new protobuf.Field("productId", 1, "string")).add(new protobuf.Field("name", 2, "string")).add(new protobuf.Field("quantity", 3, "int32"));
  const added = new protobuf.Type("ItemAdded").add(new protobuf.Field("item", 1, "LineItem"));
  const state = new protobuf.Type("CounterState").add(new protobuf.Field("value", 1, "int64"));
  root.add(line).add(added).add(state);
  return { added, state };
})();

interface Outcome {
  readonly via: string;
  readonly sentAt: number;
  readonly doneAt: number;
  /** Increment: the counter's value it answered; cart: undefined. */
  readonly value?: number;
  readonly product?: string;
  readonly code?: number;
  readonly details?: string;
}

/** The value of field `name` in an HSET command's field/value pairs. */
function fieldOf(command: string[], name: string): string | undefined {
  for (let i = 2; i + 1 < command.length; i += 2) if (command[i] === name) return command[i + 1];
  return undefined;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function outcomeOf(via: string, call: () => Promise<any>, extra: { product?: string } = {}): Promise<Outcome> {
  const sentAt = Date.now();
  try {
    const reply = await call();
    return { via, sentAt, doneAt: Date.now(), value: reply?.value === undefined ? undefined : Number(reply.value), ...extra };
  } catch (err) {
    const e = err as ServiceError;
    return { via, sentAt, doneAt: Date.now(), code: e.code ?? -1, details: e.details ?? String(err), ...extra };
  }
}

test("SIGSTOP an owner past its lease: B takes over from the acknowledged state, A's late calls are right or retryable, nothing is stored under A's lost lease", async (t) => {
  const redis = await startRedis();
  t.teardown(() => redis.stop());
  const cluster = `fencing-${process.pid}`;
  // From before the first node: every lease of the cluster is seen from its creation.
  const monitor = await monitorCluster(redis.url, cluster);
  t.teardown(() => monitor.close());
  const nodes: ClusterNodeProcess[] = [];
  t.teardown(async () => {
    for (const node of nodes) node.child.kill("SIGCONT");
    await stopAll(nodes);
  });
  nodes.push(await startClusterNode({ redisUrl: redis.url, cluster, nodeId: "node-a", leaseMs: LEASE_MS }));
  nodes.push(await startClusterNode({ redisUrl: redis.url, cluster, nodeId: "node-b", leaseMs: LEASE_MS }));
  const [a, b] = nodes as [ClusterNodeProcess, ClusterNodeProcess];
  const clients: ContractClient[] = [];
  t.teardown(() => clients.forEach((c) => c.close()));
  const counterVia = { a: counterClient(a), b: counterClient(b) };
  const cartVia = { a: cartClient(a), b: cartClient(b) };
  clients.push(counterVia.a, counterVia.b, cartVia.a, cartVia.b);

  const view = await waitForCluster(b, balancedOn(["node-a", "node-b"]));
  await waitForCluster(a, balancedOn(["node-a", "node-b"]));
  await deployExamples(a);
  await waitForServices([a, b]);

  // A counter and a cart whose shards A owns.
  const owners = shardOwners(view);
  const ownedByA = (pid: string, prefix: string) => {
    for (let i = 0; ; i++) {
      const key = `${prefix}-${i}`;
      const shard = shardOf(pid, key, view.shardCount);
      if (owners.get(shard) === "node-a") return { key, shard };
    }
  };
  const counter = ownedByA(COUNTER_PID, "fenced-counter");
  const cart = ownedByA(CART_PID, "fenced-cart");
  const heldByA = view.nodes.find((n) => n.id === "node-a")!.shards;

  // Workers: increments and unique cart items, through B (forwarded to A) and through A.
  const increments: Outcome[] = [];
  const items: Outcome[] = [];
  let product = 0;
  let incrementsSent = 0;
  const stop = { a: false, b: false };
  t.teardown(() => void Object.assign(stop, { a: true, b: true }));
  const worker = async (via: "a" | "b") => {
    while (!stop[via]) {
      incrementsSent++;
      increments.push(await outcomeOf(via, () => counterVia[via].methods.Increase!({ counterId: counter.key, value: 1 }, { deadlineMs: WORKER_DEADLINE_MS })));
      const id = `item-${via}-${product++}`;
      items.push(await outcomeOf(via, () => cartVia[via].methods.AddItem!({ userId: cart.key, productId: id, name: id, quantity: 1 }, { deadlineMs: WORKER_DEADLINE_MS }), { product: id }));
      if (increments.at(-1)!.code !== undefined || items.at(-1)!.code !== undefined) await sleep(50);
    }
  };
  const workers = [worker("a"), worker("b")];
  await pollUntil("some acknowledged writes through both nodes", 10_000, () =>
    ["a", "b"].every((via) => increments.some((o) => o.via === via && o.code === undefined) && items.some((o) => o.via === via && o.code === undefined)) ? true : undefined,
  );
  await sleep(500);
  t.deepEqual(increments.concat(items).filter((o) => o.code !== undefined), [], "no call fails while both nodes run");

  // Freeze A. Its direct worker stops (its call in flight hangs until its deadline).
  const stoppedAt = Date.now();
  a.child.kill("SIGSTOP");
  stop.a = true;
  const maxAcked = () => Math.max(0, ...increments.filter((o) => o.code === undefined).map((o) => o.value!));

  // B takes the shards over once A's lease has run out, and serves the acknowledged value.
  const takenOver = await waitForCluster(b, (v) => {
    const o = shardOwners(v);
    return o.get(counter.shard) === "node-b" && o.get(cart.shard) === "node-b";
  }, 3 * LEASE_MS);
  const takenOverAt = Date.now();
  t.false(takenOver.nodes.find((n) => n.id === "node-a")?.alive ?? true, "B sees the frozen A as not alive");
  const ackedBeforeRead = maxAcked();
  const readAtB = await counterVia.b.methods.Get!({ counterId: counter.key }, { deadlineMs: 5000 });
  t.true(Number(readAtB.value) >= ackedBeforeRead, `B serves at least every acknowledged increment: ${readAtB.value} >= ${ackedBeforeRead}`);
  t.true(Number(readAtB.value) <= incrementsSent, `B serves no increment that was never sent: ${readAtB.value} <= ${incrementsSent}`);
  await pollUntil("B to acknowledge increments of the shard it took over", 2 * LEASE_MS, () =>
    increments.some((o) => o.via === "b" && o.code === undefined && o.sentAt > takenOverAt) ? true : undefined,
  );

  // Calls straight at the frozen A: they wait in its socket until it wakes.
  const ackedBeforeProbes = maxAcked();
  const probeItem = "item-probe-to-frozen-a";
  const probes = {
    increase: outcomeOf("probe", () => counterVia.a.methods.Increase!({ counterId: counter.key, value: 1 }, { deadlineMs: 30_000 })),
    get: outcomeOf("probe", () => counterVia.a.methods.Get!({ counterId: counter.key }, { deadlineMs: 30_000 })),
    add: outcomeOf("probe", () => cartVia.a.methods.AddItem!({ userId: cart.key, productId: probeItem, name: probeItem, quantity: 1 }, { deadlineMs: 30_000 }), { product: probeItem }),
  };
  // (At least a second: the probes are in A's socket before it wakes.)
  await sleep(Math.max(1000, stoppedAt + PAUSE_MS - Date.now()));
  const continuedAt = Date.now();
  a.child.kill("SIGCONT");
  const [probeIncrease, probeGet, probeAdd] = await Promise.all([probes.increase, probes.get, probes.add]);
  t.log(`frozen ${continuedAt - stoppedAt} ms; B took over ${takenOverAt - stoppedAt} ms after the freeze; probes: ${JSON.stringify({ probeIncrease, probeGet, probeAdd })}`);

  // Each probe: a right answer, or a retryable status; never a stale value, never a hang.
  for (const probe of [probeIncrease, probeGet, probeAdd]) {
    if (probe.code !== undefined) t.true(RETRYABLE.has(probe.code), `a probe failed with a retryable status, got ${probe.code} ${probe.details}`);
  }
  if (probeGet.code === undefined) t.true(probeGet.value! >= ackedBeforeProbes, `the read sent to the frozen A sees every increment acknowledged before it: ${probeGet.value} >= ${ackedBeforeProbes}`);
  if (probeIncrease.code === undefined) t.true(probeIncrease.value! > ackedBeforeProbes, `the increment sent to the frozen A lands after every one acknowledged before it: ${probeIncrease.value} > ${ackedBeforeProbes}`);
  increments.push(probeIncrease);
  items.push(probeAdd);

  // A drops every shard it held, for a reason that says it lost the lease. The losses are
  // logged as A finds them (not in one write), so wait for all of them, not for two.
  await pollUntil("A to log the loss of every shard it held", 5000, () => {
    const lost = new Set(logEntries(a).filter((e) => e.msg === "shard lost" && e.time >= stoppedAt).map((e) => e.shard));
    return lost.has(counter.shard) && lost.has(cart.shard) && heldByA.every((s) => lost.has(s)) ? true : undefined;
  });
  const losses = logEntries(a).filter((e) => e.msg === "shard lost" && e.time >= stoppedAt);
  const lostAt = new Map<number, (typeof losses)[number]>();
  for (const loss of losses) if (!lostAt.has(loss.shard!)) lostAt.set(loss.shard!, loss);
  t.deepEqual(heldByA.filter((s) => !lostAt.has(s)), [], "A logged `shard lost` for every shard it held when frozen");
  for (const loss of losses) t.true(["not renewed in time", "renewal refused", "write fenced"].includes(loss.reason!), `shard ${loss.shard} lost: ${loss.reason}`);
  t.true(a.child.exitCode === null && a.child.signalCode === null, "A is still running (its node id was not taken)");

  // Both nodes run on; the shards spread over both again.
  await sleep(1000);
  stop.b = true;
  await Promise.all(workers);
  await waitForCluster(a, balancedOn(["node-a", "node-b"]));
  await waitForCluster(b, balancedOn(["node-a", "node-b"]));

  // The counter: every acknowledged increment exactly once, answers all distinct.
  const finalViaA = Number((await counterVia.a.methods.Get!({ counterId: counter.key })).value);
  const finalViaB = Number((await counterVia.b.methods.Get!({ counterId: counter.key })).value);
  t.is(finalViaA, finalViaB, "both nodes read the same final value");
  const acked = increments.filter((o) => o.code === undefined);
  const inDoubt = increments.filter((o) => o.code !== undefined);
  const values = acked.map((o) => o.value!);
  t.is(new Set(values).size, values.length, "no two acknowledged increments answered the same value (no fork, no lost update)");
  t.true(finalViaA >= acked.length && finalViaA <= acked.length + inDoubt.length, `final ${finalViaA}: ${acked.length} acknowledged + at most ${inDoubt.length} in doubt`);
  t.true(Math.max(...values) <= finalViaA, "no acknowledged value beyond the final one");
  t.log(`counter: ${acked.length} acknowledged, ${inDoubt.length} in doubt (${inDoubt.map((o) => `${o.via}:${o.code}`).join(",")}), final ${finalViaA}`);

  // The cart: each acknowledged item once with quantity 1, in-doubt ones at most once, nothing else.
  const lines = (await cartVia.b.methods.GetCart!({ userId: cart.key })).items as Array<{ productId: string; quantity: number }>;
  const inCart = new Map(lines.map((l) => [l.productId, l.quantity]));
  t.is(inCart.size, lines.length, "no product twice in the cart");
  t.deepEqual(lines.filter((l) => l.quantity !== 1), [], "no item added twice");
  const ackedItems = items.filter((o) => o.code === undefined).map((o) => o.product!);
  t.deepEqual(ackedItems.filter((p) => !inCart.has(p)), [], "every acknowledged item is in the cart");
  const sent = new Set(items.map((o) => o.product!));
  t.deepEqual([...inCart.keys()].filter((p) => !sent.has(p)), [], "nothing in the cart that was not sent");

  // Redis, read directly: the journal is gapless and holds exactly the cart's items; the value is the counter's.
  const layout = new RedisLayout(cluster, view.shardCount);
  const direct = new Redis(redis.url, { maxRetriesPerRequest: 0 });
  t.teardown(() => direct.disconnect());
  const cartKeys = layout.entityKeys({ persistenceId: CART_PID, key: cart.key });
  const journal = (await direct.xrangeBuffer(cartKeys.journal, "-", "+")) as Array<[Buffer, Buffer[]]>;
  t.deepEqual(journal.map(([id]) => id.toString()), journal.map((_, i) => `${i + 1}-0`), "journal seqs are 1..N without a gap");
  const journaled = journal.map(([, fields]) => {
    const p = fields[fields.findIndex((f) => f.toString() === "p") + 1]!;
    return (domain.added.decode(p) as unknown as { item: { productId: string } }).item.productId;
  });
  t.deepEqual(journaled.slice().sort(), [...inCart.keys()].sort(), "the journal holds each cart item exactly once");
  const counterKeys = layout.entityKeys({ persistenceId: COUNTER_PID, key: counter.key });
  const [bytes, version] = await direct.hmgetBuffer(counterKeys.value, "d", "n");
  t.is(Number((domain.state.decode(bytes!) as unknown as { value: unknown }).value), finalViaA, "the stored value is the value read");
  t.true(Number(version) >= 1 && Number(version) <= finalViaA, `version ${version}: one per write, each write at least one increment`);

  // MONITOR: every stored write ran under the live lease and its epoch; versions and seqs grow by one.
  await monitor.flush();
  const history = monitor.history();
  const stored = history.stored.filter((w) => w.shard === counter.shard || w.shard === cart.shard);
  t.deepEqual(history.stored.filter((w) => w.epoch !== String(w.lease.epoch) || w.lease.owner === "" || w.lease.until < w.timeMs), [], "no write stored outside the writer's live lease");
  const versions = stored.flatMap((w) => w.writes).filter((c) => c[1] === counterKeys.value && c[0]!.toLowerCase() === "hset").map((c) => Number(fieldOf(c, "n")));
  t.deepEqual(versions, versions.map((_, i) => i + 1), "value versions written 1, 2, 3, ... in order");
  t.is(versions.at(-1), Number(version));
  const seqs = stored.flatMap((w) => w.writes).filter((c) => c[1] === cartKeys.journal && c[0]!.toLowerCase() === "xadd").map((c) => c[2]);
  t.deepEqual(seqs, journal.map(([id]) => id.toString()), "journal entries appended in seq order, each once");

  // A's epoch on each shard ended when it was frozen: nothing stored under it after B acquired, or after A logged the loss.
  for (const { shard } of [counter, cart]) {
    const owners = history.epochOwner.get(shard)!;
    const epochA = lostAt.get(shard)!.epoch!;
    t.is(owners.get(epochA), "node-a", `A lost the epoch it had acquired (shard ${shard})`);
    const acquiredByB = history.acquisitions.find((x) => x.shard === shard && x.owner === "node-b" && x.epoch > epochA)!;
    t.truthy(acquiredByB, `B acquired shard ${shard} after A`);
    t.true(acquiredByB.previousUntil < acquiredByB.timeMs, `B acquired shard ${shard} only once A's lease had run out`);
    const late = stored.filter((w) => w.shard === shard && w.epoch === String(epochA) && (w.timeMs >= acquiredByB.timeMs || w.timeMs > lostAt.get(shard)!.time));
    t.deepEqual(late, [], `nothing stored under A's epoch ${epochA} of shard ${shard} once it was lost`);
    t.true(stored.some((w) => w.shard === shard && w.epoch === String(acquiredByB.epoch)), `B wrote shard ${shard} under its own epoch`);
  }

  // A's metrics agree with what happened: renewals refused = losses for that reason; fencing refusals only where Redis refused.
  const metrics = (await scrapeMetrics(a.adminUrl)).samples;
  const refusedRenewals = losses.filter((e) => e.reason === "renewal refused").length;
  t.is(metrics.get('keystate_cluster_lease_renewals_total{result="lost"}') ?? 0, refusedRenewals, "renewals lost = `renewal refused` losses");
  const fencedA = history.fenced.filter((f) => history.epochOwner.get(f.shard)?.get(Number(f.epoch)) === "node-a").length;
  t.true((metrics.get("keystate_cluster_fencing_refusals_total") ?? 0) <= fencedA, `fencing refusals counted by A (${metrics.get("keystate_cluster_fencing_refusals_total")}) <= refusals Redis made (${fencedA})`);
  const reasons: Record<string, number> = {};
  for (const loss of losses) reasons[loss.reason!] = (reasons[loss.reason!] ?? 0) + 1;
  t.log(`A's losses: ${JSON.stringify(reasons)}; Redis refused ${fencedA} writes of A, A counted ${metrics.get("keystate_cluster_fencing_refusals_total")}; items: ${ackedItems.length} acknowledged, ${items.length - ackedItems.length} in doubt (${items.filter((o) => o.code !== undefined).map((o) => `${o.via}:${o.code}`).join(",")})`);
  t.is((await clusterView(a)).self, "node-a");
});
