// Redis unreachable from one node (../shared/CLUSTER.md, "Redis unreachable on one node"):
// node A reaches Redis through a TCP proxy, node B directly. The proxy blackholes A's
// connections (bytes held, nothing delivered). A must stop serving its shards at its safety
// deadline, before its leases can have expired: calls to A for those keys get UNAVAILABLE
// (never a stale value, never a hang past their deadline), and A logs `shard lost` ("not
// renewed in time"). B may acquire each shard only after A's lease ran out, so for every
// shard A's `shard lost` comes before B's `shard acquired`. The partition then heals with
// the held bytes delivered late (TCP rode it out): A's writes sent into the partition reach
// Redis after B took over, and the lease fencing must refuse them (checked on what Redis
// executed, via MONITOR). A rejoins, the shards spread over both nodes, every acknowledged
// write is intact.
import test from "ava";
import { status, type ServiceError } from "@grpc/grpc-js";
import { leaseTimings } from "../../host/cluster/cluster-node.js";
import { RedisLayout } from "../../host/journal/redis-keys.js";
import { shardOf } from "../../host/journal/shards.js";
import {
  balancedOn,
  cartClient,
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
  type LogEntry,
} from "../helpers/cluster-nodes.js";
import type { ContractClient } from "../helpers/grpc-client.js";
import { monitorCluster } from "../helpers/redis-monitor.js";
import { startRedis } from "../helpers/redis-server.js";
import { startTcpProxy } from "../helpers/tcp-proxy.js";

const LEASE_MS = 3000;
const { safetyMs: SAFETY_MS } = leaseTimings(LEASE_MS);
const COUNTER_PID = "counter";
const CART_PID = "shopping-cart";
/** Deadline of the calls made during the partition (longer than A's wait for an owner, 2 leases + 1 s). */
const CALL_DEADLINE_MS = 10_000;

interface Outcome {
  readonly via: "a" | "b";
  readonly method: string;
  readonly key: string;
  readonly sentAt: number;
  readonly doneAt: number;
  readonly value?: number;
  readonly code?: number;
  readonly details?: string;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function outcomeOf(via: "a" | "b", method: string, key: string, call: () => Promise<any>): Promise<Outcome> {
  const sentAt = Date.now();
  try {
    const reply = await call();
    return { via, method, key, sentAt, doneAt: Date.now(), value: reply?.value === undefined ? undefined : Number(reply.value) };
  } catch (err) {
    const e = err as ServiceError;
    return { via, method, key, sentAt, doneAt: Date.now(), code: e.code ?? -1, details: e.details ?? String(err) };
  }
}

test("Redis unreachable from one node: it stops serving before its leases expire, calls get UNAVAILABLE, the other node takes over only after; late writes are fenced", async (t) => {
  const redis = await startRedis();
  t.teardown(() => redis.stop());
  const cluster = `lost-redis-${process.pid}`;
  const monitor = await monitorCluster(redis.url, cluster);
  t.teardown(() => monitor.close());
  const proxy = await startTcpProxy(redis.port);
  t.teardown(() => proxy.close());
  const nodes: ClusterNodeProcess[] = [];
  t.teardown(() => stopAll(nodes));
  nodes.push(await startClusterNode({ redisUrl: proxy.url, cluster, nodeId: "node-a", leaseMs: LEASE_MS }));
  nodes.push(await startClusterNode({ redisUrl: redis.url, cluster, nodeId: "node-b", leaseMs: LEASE_MS }));
  const [a, b] = nodes as [ClusterNodeProcess, ClusterNodeProcess];
  const counterVia = { a: counterClient(a), b: counterClient(b) };
  const cartVia = { a: cartClient(a), b: cartClient(b) };
  const clients: ContractClient[] = [counterVia.a, counterVia.b, cartVia.a, cartVia.b];
  t.teardown(() => clients.forEach((c) => c.close()));

  const view = await waitForCluster(b, balancedOn(["node-a", "node-b"]));
  await waitForCluster(a, balancedOn(["node-a", "node-b"]));
  await deployExamples(b);
  await waitForServices([a, b]);
  const owners = shardOwners(view);
  const shardsOfA = view.nodes.find((n) => n.id === "node-a")!.shards;
  const counterShard = (key: string) => shardOf(COUNTER_PID, key, view.shardCount);

  // Acknowledged state on both nodes' shards: counter i incremented 1 + i % 3 times, cart i with 2 items.
  const counters = Array.from({ length: 40 }, (_, i) => `lost-counter-${i}`);
  const carts = Array.from({ length: 16 }, (_, i) => `lost-cart-${i}`);
  const times = (i: number) => 1 + (i % 3);
  await Promise.all([
    ...counters.map(async (key, i) => {
      for (let n = 1; n <= times(i); n++) {
        const reply = await counterVia[n % 2 === 0 ? "a" : "b"].methods.Increase!({ counterId: key, value: 1 });
        t.is(Number(reply.value), n);
      }
    }),
    ...carts.map(async (key, i) => {
      await cartVia.a.methods.AddItem!({ userId: key, productId: `x-${i}`, name: "x", quantity: 1 });
      await cartVia.b.methods.AddItem!({ userId: key, productId: `y-${i}`, name: "y", quantity: 2 });
    }),
  ]);
  const onA = counters.filter((key) => owners.get(counterShard(key)) === "node-a");
  t.true(onA.length >= 6, `A owns some of the counters (${onA.length})`);
  // `hot` is incremented through both nodes during the partition; `still` only read (its value is known);
  // `late` is incremented once at A just after the cut (its write is held in the partition).
  const [hot, still, late] = [onA[0]!, onA[1]!, onA[2]!];
  const stillValue = times(counters.indexOf(still));
  // Resident on A: a stale owner could answer `still` from memory, and writes `late` without reading it first.
  await counterVia.a.methods.Get!({ counterId: still });
  await counterVia.a.methods.Get!({ counterId: late });

  // Workers from now on: increments of `hot` through A and through B, reads of `hot` and `still` at A.
  const outcomes: Outcome[] = [];
  let stopWorkers = false;
  t.teardown(() => (stopWorkers = true));
  const loop = async (via: "a" | "b", method: "Increase" | "Get", key: string) => {
    while (!stopWorkers) {
      const request = method === "Increase" ? { counterId: key, value: 1 } : { counterId: key };
      const outcome = await outcomeOf(via, method, key, () => counterVia[via].methods[method]!(request, { deadlineMs: CALL_DEADLINE_MS }));
      outcomes.push(outcome);
      if (outcome.code !== undefined) await sleep(50); // (and never a loop without a pause, whatever the failure)
    }
  };
  const workers = [loop("a", "Increase", hot), loop("b", "Increase", hot), loop("a", "Get", hot), loop("a", "Get", still)];
  await pollUntil("increments through both nodes", 10_000, () => (["a", "b"].every((via) => outcomes.some((o) => o.via === via && o.method === "Increase" && o.code === undefined)) ? true : undefined));
  t.deepEqual(outcomes.filter((o) => o.code !== undefined), [], "no call fails before the partition");

  // The partition.
  const cutAt = Date.now();
  proxy.blackhole();
  const lateCall = outcomeOf("a", "Increase", late, () => counterVia.a.methods.Increase!({ counterId: late, value: 1 }, { deadlineMs: CALL_DEADLINE_MS }));

  // A drops every shard it held at its safety deadline ("not renewed in time").
  const firstLoss = new Map<number, LogEntry>();
  await pollUntil("A to log the loss of every shard it held", LEASE_MS + 5000, () => {
    for (const e of logEntries(a)) if (e.msg === "shard lost" && e.time >= cutAt && !firstLoss.has(e.shard!)) firstLoss.set(e.shard!, e);
    return shardsOfA.every((s) => firstLoss.has(s)) ? true : undefined;
  });
  const lostAfter = Math.max(...shardsOfA.map((s) => firstLoss.get(s)!.time)) - cutAt;
  t.deepEqual(shardsOfA.filter((s) => firstLoss.get(s)!.reason !== "not renewed in time"), [], "every shard lost for lack of renewal");
  t.true(lostAfter <= LEASE_MS - SAFETY_MS + 500, `A stopped within lease - safety (${LEASE_MS - SAFETY_MS} ms) of the partition: ${lostAfter} ms`);

  // B acquires them all, and serves `hot`.
  await waitForCluster(b, (v) => {
    const o = shardOwners(v);
    return shardsOfA.every((s) => o.get(s) === "node-b");
  }, 3 * LEASE_MS);
  const takenOverAt = Date.now();
  await pollUntil("B to acknowledge increments of `hot` after the takeover", 3 * LEASE_MS, () =>
    outcomes.some((o) => o.via === "b" && o.method === "Increase" && o.code === undefined && o.sentAt > takenOverAt) ? true : undefined,
  );
  // A's calls for its former shards end in UNAVAILABLE while the partition lasts: wait for one sent after A stopped serving.
  // Each worker's call in flight at the cut may hold its full deadline (its write is stuck in the
  // partition) before the worker sends the next one, so the wait allows a deadline on top of the leases.
  const stoppedServingAt = cutAt + lostAfter;
  await pollUntil("a call at A sent after it stopped serving to finish", CALL_DEADLINE_MS + 2 * LEASE_MS + 5000, () =>
    outcomes.some((o) => o.via === "a" && o.sentAt > stoppedServingAt) ? true : undefined,
  );

  // Heal, delivering what the partition held: A's writes sent into it reach Redis now, late.
  const healedAt = Date.now();
  proxy.heal({ resumeHeld: true });
  await waitForCluster(a, balancedOn(["node-a", "node-b"]));
  await waitForCluster(b, balancedOn(["node-a", "node-b"]));
  stopWorkers = true;
  await Promise.all(workers);
  t.log(`A lost its ${shardsOfA.length} shards at most ${lostAfter} ms after the partition; B took over ${takenOverAt - cutAt} ms after it; healed after ${healedAt - cutAt} ms; ${outcomes.length} calls`);

  // Calls at A: a right value or UNAVAILABLE, each within its deadline.
  const duringCut = outcomes.filter((o) => o.sentAt >= cutAt && o.sentAt < healedAt);
  t.deepEqual(duringCut.filter((o) => o.via === "a" && o.code !== undefined && o.code !== status.UNAVAILABLE), [], "calls at A fail only with UNAVAILABLE");
  t.true(duringCut.some((o) => o.via === "a" && o.code === status.UNAVAILABLE && o.sentAt > stoppedServingAt), "A refuses its former shards during the partition");
  t.deepEqual(outcomes.filter((o) => o.doneAt - o.sentAt > CALL_DEADLINE_MS + 1000), [], "no call hangs past its deadline");
  t.deepEqual(outcomes.filter((o) => o.key === still && o.code === undefined && o.value !== stillValue), [], "`still` always reads its value");
  const ackedIncrements = outcomes.filter((o) => o.method === "Increase" && o.code === undefined);
  for (const read of outcomes.filter((o) => o.key === hot && o.method === "Get" && o.code === undefined)) {
    const before = ackedIncrements.filter((o) => o.doneAt < read.sentAt).map((o) => o.value!);
    if (before.length > 0) t.true(read.value! >= Math.max(...before), `a read of hot sent at ${read.sentAt - cutAt} ms saw ${read.value}, below an increment acknowledged before it`);
  }
  const values = ackedIncrements.map((o) => o.value!);
  t.is(new Set(values).size, values.length, "no two acknowledged increments of hot answered the same value");

  // Two owners never at once: per shard, A stopped before B acquired, and before its lease could expire.
  await monitor.flush();
  const history = monitor.history();
  const acquiredByB = new Map<number, LogEntry>();
  for (const e of logEntries(b)) if (e.msg === "shard acquired" && e.time >= cutAt && !acquiredByB.has(e.shard!)) acquiredByB.set(e.shard!, e);
  t.deepEqual(shardsOfA.filter((s) => !acquiredByB.has(s)), [], "B logged `shard acquired` for each of A's shards");
  t.deepEqual(shardsOfA.filter((s) => firstLoss.get(s)!.time >= acquiredByB.get(s)!.time), [], "A's `shard lost` precedes B's `shard acquired` on every shard");
  const takeovers = new Map<number, (typeof history.acquisitions)[number]>();
  for (const x of history.acquisitions) if (x.owner === "node-b" && x.previousOwner === "node-a" && x.timeMs >= cutAt && !takeovers.has(x.shard)) takeovers.set(x.shard, x);
  t.deepEqual(shardsOfA.filter((s) => !takeovers.has(s)), [], "Redis saw B acquire each of A's shards from A");
  t.deepEqual(shardsOfA.filter((s) => takeovers.get(s)!.previousUntil >= takeovers.get(s)!.timeMs), [], "B acquired each shard only after A's lease had run out (Redis time)");
  t.deepEqual(shardsOfA.filter((s) => firstLoss.get(s)!.time >= takeovers.get(s)!.previousUntil), [], "A stopped serving each shard before its lease expired");
  const margin = Math.min(...shardsOfA.map((s) => takeovers.get(s)!.previousUntil - firstLoss.get(s)!.time));
  t.log(`A stopped at least ${margin} ms before its leases expired`);

  // Late writes: what A sent into the partition reached Redis after the takeover and was refused.
  t.deepEqual(history.stored.filter((w) => w.epoch !== String(w.lease.epoch) || w.lease.owner === "" || w.lease.until < w.timeMs), [], "no write stored outside the writer's live lease");
  const lateOutcome = await lateCall;
  t.is(lateOutcome.code, status.UNAVAILABLE, `the increment of late sent into the partition is not acknowledged: ${JSON.stringify(lateOutcome)}`);
  const lateShard = counterShard(late);
  const lateEpochOfA = takeovers.get(lateShard)!.epoch - 1;
  t.is(history.epochOwner.get(lateShard)?.get(lateEpochOfA), "node-a");
  const lateValueKey = new RedisLayout(cluster, view.shardCount).entityKeys({ persistenceId: COUNTER_PID, key: late }).value;
  const lateFromA = history.fenced.filter((f) => f.keys[0] === lateValueKey && f.epoch === String(lateEpochOfA) && f.timeMs >= healedAt);
  t.is(lateFromA.length, 1, "A's write of late, held in the partition, reached Redis after the heal and was refused");
  t.deepEqual(history.stored.filter((w) => w.keys[0] === lateValueKey && w.timeMs >= cutAt), [], "nothing of late stored since the cut");
  const hotShard = counterShard(hot);
  const epochOfA = takeovers.get(hotShard)!.epoch - 1;
  t.is(history.epochOwner.get(hotShard)?.get(epochOfA), "node-a");
  const aCalls = duringCut.filter((o) => o.via === "a");
  t.log(`during the partition: ${aCalls.filter((o) => o.code === undefined).length} calls at A answered, ${aCalls.length} sent; Redis refused ${history.fenced.filter((f) => history.epochOwner.get(f.shard)?.get(Number(f.epoch)) === "node-a" && f.timeMs >= healedAt).length} late writes of A in all`);
  t.deepEqual(history.stored.filter((w) => w.shard === hotShard && w.epoch === String(epochOfA) && w.timeMs >= cutAt + 100), [], "nothing stored under A's epoch of hot's shard after the partition");

  // Every acknowledged write is intact, through both nodes.
  const inDoubt = outcomes.filter((o) => o.method === "Increase" && o.code !== undefined).length;
  for (const via of ["a", "b"] as const) {
    for (const [i, key] of counters.entries()) {
      const value = Number((await counterVia[via].methods.Get!({ counterId: key })).value);
      if (key === hot) t.true(value >= times(i) + ackedIncrements.length && value <= times(i) + ackedIncrements.length + inDoubt, `hot via ${via}: ${value}`);
      else t.is(value, times(i), key === late ? `late via ${via}: the increment held in the partition was not applied` : `${key} via ${via}`);
    }
    for (const [i, key] of carts.entries()) {
      const items = ((await cartVia[via].methods.GetCart!({ userId: key })).items as Array<{ productId: string; quantity: number }>).map((l) => [l.productId, l.quantity]);
      t.deepEqual(items.sort(), [[`x-${i}`, 1], [`y-${i}`, 2]], `${key} via ${via}`);
    }
  }
});
