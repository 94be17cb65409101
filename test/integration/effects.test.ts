// Forwards and side effects across two modules, over gRPC against a real `keystate
// serve` on a real redis-server. test/fixtures/effects-orders (an event-sourced Orders
// entity and an OrderDesk action) forwards to and side-effects into
// test/fixtures/effects-ledger (a Ledger value entity per account).
import test, { type ExecutionContext } from "ava";
import { join } from "node:path";
import { status } from "@grpc/grpc-js";
import { contractClient, statusOf, type ContractClient } from "../helpers/grpc-client.js";
import { REPO_ROOT, clusterNameFor, type NodeProcess } from "../helpers/node-process.js";
import { buildBeforeAll, serveWith } from "../helpers/built-module.js";
import { deploy } from "../helpers/deployed-node.js";
import { startRedis, type RunningRedis } from "../helpers/redis-server.js";
import { Redis } from "ioredis";
import { REDELIVER_AFTER_MS } from "../../host/entities/effect-runner.js";
import { encodeOutboxEntry } from "../../host/journal/outbox-codec.js";
import { RedisLayout } from "../../host/journal/redis-keys.js";
import { shardOf } from "../../host/journal/shards.js";
import protobuf from "protobufjs";

const FIXTURES = join(REPO_ROOT, "test", "fixtures");
const ORDERS = "keystate.test.orders.Orders";
const DESK = "keystate.test.orders.OrderDesk";
const LEDGER = "keystate.test.ledger.Ledger";
const NOWHERE = "keystate.test.nowhere.Nowhere";

const wasm = { orders: buildBeforeAll(test, join(FIXTURES, "effects-orders")), ledger: buildBeforeAll(test, join(FIXTURES, "effects-ledger")) };
let redis: RunningRedis | undefined;
/** The ledger's Entry message (ledger_types.proto: account = 1, amount = 2, reference = 3), to write an outbox entry by hand. */
const ledgerEntry = new protobuf.Type("Entry")
  .add(new protobuf.Field("account", 1, "string"))
  .add(new protobuf.Field("amount", 2, "int64"))
  .add(new protobuf.Field("reference", 3, "string"));

test.before(async () => {
  redis = await startRedis();
});

test.after.always(async () => {
  await redis?.stop();
});

/** A node on database `db` of the shared Redis (SELECT n in the URL): each test gets its own. */
function serve(t: ExecutionContext, db: number, dataDir?: string): Promise<NodeProcess & { dataDir: string }> {
  return serveWith(t, undefined, `${redis!.url}/${db}`, dataDir);
}

interface Clients {
  orders: ContractClient;
  desk: ContractClient;
  ledger: ContractClient;
}

function clients(t: ExecutionContext, node: NodeProcess): Clients {
  const orders = join(FIXTURES, "effects-orders", "proto");
  const made = {
    orders: contractClient(orders, "orders.proto", ORDERS, node.grpcPort),
    desk: contractClient(orders, "orders.proto", DESK, node.grpcPort),
    ledger: contractClient(join(FIXTURES, "effects-ledger", "proto"), "ledger.proto", LEDGER, node.grpcPort),
  };
  t.teardown(() => Object.values(made).forEach((c) => c.close()));
  return made;
}

const balance = async (c: Clients, account: string) => (await c.ledger.methods.Get!({ account })) as { balance: string; entries: string; lastReference: string };
const order = async (c: Clients, orderId: string) => (await c.orders.methods.Get!({ orderId })) as { placed: string; total: string };

async function eventually<T>(probe: () => Promise<T>, done: (value: T) => boolean, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (done(value) || Date.now() > deadline) return value;
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** The JSON log lines of `node` with message `msg`. */
function logLines(node: NodeProcess, msg: string): Array<Record<string, unknown>> {
  return node.output
    .join("")
    .split("\n")
    .filter((line) => line.startsWith("{") && line.includes(msg))
    .map((line) => JSON.parse(line) as Record<string, unknown>)
    .filter((entry) => entry.msg === msg);
}

test.serial("a forward answers with the other module's reply; sync side effects land before the reply, async ones after", async (t) => {
  const node = await serve(t, 1);
  await deploy(node, wasm.orders());
  await deploy(node, wasm.ledger());
  const c = clients(t, node);

  // Event-sourced entity -> value entity in another module: the caller gets the Ledger's Balance.
  t.like(await c.orders.methods.PlaceAndForward!({ orderId: "o1", account: "alice", amount: 5 }), { account: "alice", balance: "5", entries: "1", lastReference: "o1" });
  t.like(await order(c, "o1"), { placed: "1", total: "5" }, "the forwarding command's own event was persisted");

  // Action -> event-sourced -> value entity: two hops, still one reply.
  t.like(await c.desk.methods.Submit!({ orderId: "o2", account: "alice", amount: 10 }), { balance: "15", entries: "2", lastReference: "o2" });
  t.like(await order(c, "o2"), { placed: "1", total: "10" });

  // Synchronous side effect: done by the time the caller has its (own) reply.
  t.like(await c.orders.methods.PlaceWithSyncEffect!({ orderId: "o3", account: "alice", amount: 7 }), { orderId: "o3", placed: "1", total: "7" });
  t.like(await balance(c, "alice"), { balance: "22", entries: "3", lastReference: "o3" });

  // A synchronous side effect the target refuses: the caller gets that refusal; its own
  // state change was persisted before the side effect ran and stays (documented choice).
  const refused = await statusOf(c.orders.methods.PlaceWithSyncEffect!({ orderId: "o4", account: "alice", amount: -1 }));
  t.deepEqual(refused, { code: status.OUT_OF_RANGE, details: "the ledger refuses a negative amount for alice" });
  t.like(await order(c, "o4"), { placed: "1", total: "-1" });
  t.like(await balance(c, "alice"), { balance: "22", entries: "3" }, "the refused side effect changed nothing in the ledger");

  // Asynchronous side effect: the caller's reply does not wait for it; it lands shortly after.
  t.like(await c.orders.methods.PlaceWithAsyncEffect!({ orderId: "o5", account: "bob", amount: 3 }), { orderId: "o5", placed: "1", total: "3" });
  t.like(await eventually(() => balance(c, "bob"), (b) => b.balance === "3", 5_000), { balance: "3", entries: "1", lastReference: "o5" });
  // Exactly once when nothing failed: no retry ran.
  await new Promise((r) => setTimeout(r, 300));
  t.like(await balance(c, "bob"), { entries: "1" });
  t.is(logLines(node, "asynchronous side effect failed; retrying").length, 0);

  // A command that forwards to itself forever is cut off with a clear status.
  const loop = await statusOf(c.orders.methods.Bounce!({ orderId: "loop" }));
  t.is(loop.code, status.RESOURCE_EXHAUSTED);
  t.regex(loop.details, /chain of 17 forwards and side effects \(the limit is 16; a loop\?\)/);

  // All of it survives a restart (kill -9): the state is in Redis.
  await node.kill("SIGKILL");
  const again = clients(t, await serve(t, 1, node.dataDir));
  t.like(await balance(again, "alice"), { balance: "22", entries: "3" });
  t.like(await order(again, "o4"), { placed: "1", total: "-1" });
});

test.serial("a forward or sync side effect to a service that is not deployed fails with UNIMPLEMENTED and persists nothing", async (t) => {
  const node = await serve(t, 2);
  await deploy(node, wasm.orders());
  await deploy(node, wasm.ledger());
  const c = clients(t, node);

  const forward = await statusOf(c.orders.methods.PlaceAndForward!({ orderId: "f1", account: "alice", amount: 5, ledgerService: NOWHERE }));
  t.is(forward.code, status.UNIMPLEMENTED);
  t.is(forward.details, `the command calls ${NOWHERE}/Record, which is not deployed`);
  const sync = await statusOf(c.orders.methods.PlaceWithSyncEffect!({ orderId: "f1", account: "alice", amount: 5, ledgerService: NOWHERE }));
  t.is(sync.code, status.UNIMPLEMENTED);
  // A deployed service that has no such method: refused the same way.
  const noMethod = await statusOf(c.orders.methods.PlaceAndForward!({ orderId: "f1", account: "alice", amount: 5, ledgerService: ORDERS }));
  t.deepEqual(noMethod, { code: status.UNIMPLEMENTED, details: `the command calls ${ORDERS}/Record, which is not deployed` });
  // A forward to a method that replies with another type than the caller's method.
  const wrongType = await statusOf(c.orders.methods.PlaceAndForward!({ orderId: "f1", account: "alice", amount: 5, ledgerService: DESK }));
  t.deepEqual(wrongType, {
    code: status.UNIMPLEMENTED,
    details: `the command forwards to ${DESK}/Record, which replies with keystate.test.orders.OrderState, not keystate.test.ledger.Balance`,
  });

  // Commands queued together with the refused ones are unaffected.
  const [bad, good] = await Promise.allSettled([
    c.orders.methods.PlaceAndForward!({ orderId: "f2", account: "carol", amount: 1, ledgerService: NOWHERE }),
    c.orders.methods.PlaceAndForward!({ orderId: "f2", account: "carol", amount: 2 }),
  ]);
  t.is(bad.status === "rejected" && (bad.reason as { code: number }).code, status.UNIMPLEMENTED);
  t.like(good.status === "fulfilled" ? good.value : {}, { balance: "2", entries: "1" });

  t.like(await order(c, "f1"), { placed: "0", total: "0" }, "no event of the refused commands is in the resident state");
  t.like(await order(c, "f2"), { placed: "1", total: "2" });
  t.like(await balance(c, "alice"), { balance: "0", entries: "0" });

  // Nor in the journal: a fresh process replays Redis and finds the same.
  await node.kill("SIGKILL");
  const again = clients(t, await serve(t, 2, node.dataDir));
  t.like(await order(again, "f1"), { placed: "0", total: "0" });
  t.like(await order(again, "f2"), { placed: "1", total: "2" });
});

test.serial("an async side effect to a service not yet deployed is retried and logged, the caller has its reply, and it lands once the target is deployed", async (t) => {
  const node = await serve(t, 3);
  await deploy(node, wasm.orders());
  const c = clients(t, node);

  t.like(await c.orders.methods.PlaceWithAsyncEffect!({ orderId: "a1", account: "dave", amount: 4 }), { orderId: "a1", placed: "1", total: "4" });
  t.like(await order(c, "a1"), { placed: "1", total: "4" });

  // Retries are logged with who issued the side effect and what it calls.
  const retries = await eventually(async () => logLines(node, "asynchronous side effect failed; retrying"), (lines) => lines.length >= 2, 5_000);
  t.true(retries.length >= 2, "at least two failed attempts were logged");
  t.like(retries[0], { module: "effects-orders", service: ORDERS, method: "PlaceWithAsyncEffect", entityKey: "a1", target: `${LEDGER}/Record`, attempt: 1 });
  t.like(retries[1], { attempt: 2 });
  t.like(retries[0]!.err as object, { code: "UNKNOWN_METHOD", message: `no method ${LEDGER}/Record is deployed` });

  // The node kept serving; once the ledger is deployed, a later retry lands the entry.
  t.like(await order(c, "a1"), { placed: "1" });
  await deploy(node, wasm.ledger());
  const landed = await eventually(() => balance(c, "dave"), (b) => b.balance === "4", 10_000);
  t.like(landed, { balance: "4", entries: "1", lastReference: "a1" });
});

test.serial("an async side effect is stored with its command: a node killed with SIGKILL right after the reply delivers it after restart, once, and its outbox empties", async (t) => {
  const db = 4;
  const node = await serve(t, db);
  await deploy(node, wasm.orders());
  const c = clients(t, node);
  // The ledger is not deployed yet, so the effect cannot be delivered before the kill.
  t.like(await c.orders.methods.PlaceWithAsyncEffect!({ orderId: "k1", account: "erin", amount: 6 }), { placed: "1", total: "6" });
  await node.kill("SIGKILL");

  const again = await serve(t, db, node.dataDir);
  await deploy(again, wasm.ledger());
  const d = clients(t, again);
  const landed = await eventually(() => balance(d, "erin"), (b) => b.balance === "6", 30_000);
  t.like(landed, { balance: "6", entries: "1", lastReference: "k1" }, "the restarted node delivered the stored side effect");
  // Log lines travel on another pipe than replies: wait for it.
  t.truthy(await again.waitForOutput("stored asynchronous side effects and timers picked up", 5_000), "by redelivery from the outbox");
  const outbox = await eventually(() => outboxSize(db), (size) => size === 0, 5_000);
  t.is(outbox, 0, "delivered entries leave the outbox");
  // Later redelivery passes find nothing: still one entry.
  await new Promise((resolve) => setTimeout(resolve, REDELIVER_AFTER_MS + 1_000));
  t.like(await balance(d, "erin"), { balance: "6", entries: "1" });
});

/** Entries left in every shard outbox of database `db`. */
async function outboxSize(db: number): Promise<number> {
  const client = new Redis(`${redis!.url}/${db}`);
  try {
    let total = 0;
    for (const key of await client.keys("ks:*:ob")) total += await client.hlen(key);
    return total;
  } finally {
    client.disconnect();
  }
}

test.serial("an idempotency key answers a command once, also after a SIGKILL restart; a stored side effect delivered twice is applied once", async (t) => {
  const db = 5;
  const node = await serve(t, db);
  await deploy(node, wasm.orders());
  await deploy(node, wasm.ledger());
  const c = clients(t, node);
  const record = (amount: number, key: string) => c.ledger.methods.Record!({ account: "fay", amount, reference: key }, { metadata: { "idempotency-key": key } });

  const first = await record(5, "pay-1");
  t.like(first, { balance: "5", entries: "1" });
  t.deepEqual(await record(5, "pay-1"), first, "a retry with the same key gets the stored reply");
  t.like(await balance(c, "fay"), { balance: "5", entries: "1" }, "and changes nothing");
  t.like(await record(2, "pay-2"), { balance: "7", entries: "2" }, "another key runs");
  const bad = await statusOf(c.ledger.methods.Record!({ account: "fay", amount: 1 }, { metadata: { "idempotency-key": "x".repeat(300) } }));
  t.is(bad.code, status.INVALID_ARGUMENT, `an over-long key is refused: ${bad.details}`);

  // A side effect delivered, then (as if the node died before deleting it) found in the outbox again.
  t.like(await c.orders.methods.PlaceWithAsyncEffect!({ orderId: "dup", account: "fay", amount: 10 }), { placed: "1" });
  await eventually(() => balance(c, "fay"), (b) => b.balance === "17", 5_000);
  await eventually(() => outboxSize(db), (size) => size === 0, 5_000);
  await node.kill("SIGKILL");
  const redisClient = new Redis(`${redis!.url}/${db}`);
  t.teardown(() => redisClient.disconnect());
  // The delivery's idempotency key is the entry's id: the ledger stored its reply under it.
  const [replies] = await redisClient.keys("ks:*:ledger/fay:i");
  const id = (await redisClient.hkeys(replies!)).find((field) => field.startsWith("orders/dup@"));
  t.truthy(id, "the ledger holds the reply of the delivery under the outbox entry's id");
  const payload = ledgerEntry.encode({ account: "fay", amount: 10, reference: "dup" }).finish();
  const entry = { id: id!, service: LEDGER, method: "Record", payload, hops: 1, createdAt: Date.now() - 60_000 };
  const outboxKey = new RedisLayout(clusterNameFor(t.title)).outboxKey(shardOf("orders", "dup", 256));
  await redisClient.hset(outboxKey, id!, encodeOutboxEntry(entry));

  const again = await serve(t, db, node.dataDir);
  const d = clients(t, again);
  t.like(await d.ledger.methods.Record!({ account: "fay", amount: 5, reference: "pay-1" }, { metadata: { "idempotency-key": "pay-1" } }), first, "the key outlives the process");
  await eventually(() => outboxSize(db), (size) => size === 0, 20_000);
  t.is(await outboxSize(db), 0, "the duplicate was redelivered");
  t.like(await balance(d, "fay"), { balance: "17", entries: "3" }, "and applied once: its idempotency key is the outbox entry's id");
});
