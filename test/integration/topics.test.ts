// Topics and topic subscriptions, over gRPC against real `keystate serve` processes on a real
// redis-server (and on the embedded store). test/fixtures/topics-shop: Shop publishes numbered
// OrderEvents to "orders" (partition key = the Shop's key); Tally (event-sourced, idempotent)
// journals each message it is handed with its CloudEvents attributes; Relay (an action)
// forwards every delivery to Deliveries, which counts repeats; Picky (maxAttempts 3) refuses
// messages marked fail.
import test, { type ExecutionContext } from "ava";
import { join } from "node:path";
import { Redis } from "ioredis";
import protobuf from "protobufjs";
import { RedisLayout } from "../../host/journal/redis-keys.js";
import { RedisTopics } from "../../host/journal/redis-topics.js";
import { buildBeforeAll, serveWith } from "../helpers/built-module.js";
import { deploy } from "../helpers/deployed-node.js";
import { contractClient, type ContractClient } from "../helpers/grpc-client.js";
import { scrapeMetrics } from "../helpers/metrics-scrape.js";
import { REPO_ROOT, clusterNameFor, type NodeProcess } from "../helpers/node-process.js";
import { startRedis, type RunningRedis } from "../helpers/redis-server.js";

const FIXTURE = join(REPO_ROOT, "test", "fixtures", "topics-shop");
const PACKAGE = "keystate.test.topics";
const TOPIC = "orders";
const SUBSCRIPTION = {
  tally: `topics-shop/${PACKAGE}.Tally/OnOrder`,
  relay: `topics-shop/${PACKAGE}.Relay/OnOrder`,
  picky: `topics-shop/${PACKAGE}.Picky/OnOrder`,
};

const wasm = buildBeforeAll(test, FIXTURE);
let redis: RunningRedis | undefined;

test.before(async () => {
  redis = await startRedis();
});

test.after.always(async () => {
  await redis?.stop();
});

/** OrderEvent as the fixture's proto has it, to publish into the stream straight from the test. */
const OrderEvent = new protobuf.Type("OrderEvent")
  .add(new protobuf.Field("partition", 1, "string"))
  .add(new protobuf.Field("sequence", 2, "int64"))
  .add(new protobuf.Field("fail", 3, "bool"));

interface Clients {
  shop: ContractClient;
  tally: ContractClient;
  deliveries: ContractClient;
  picky: ContractClient;
}

function clients(t: ExecutionContext, node: NodeProcess): Clients {
  const make = (service: string) => contractClient(join(FIXTURE, "proto"), "topics.proto", `${PACKAGE}.${service}`, node.grpcPort);
  const made = { shop: make("Shop"), tally: make("Tally"), deliveries: make("Deliveries"), picky: make("Picky") };
  t.teardown(() => Object.values(made).forEach((c) => c.close()));
  return made;
}

interface Seen {
  sequence: string;
  ceId: string;
  ceSource: string;
  ceType: string;
  ceTime: string;
  ceSubject: string;
  ceSpecversion: string;
}

const tallyOf = async (c: Clients, partition: string) => (await c.tally.methods.Get!({ partition }, { deadlineMs: 20_000 })) as { sequences: string[]; ids: string[]; last: Seen | null };
/** Tally's state, or none yet while its shard is between owners (a read refused as unavailable, which is retryable). */
const tallySoFar = (c: Clients, partition: string) => tallyOf(c, partition).catch(() => ({ sequences: [] as string[] }));
const seqs = async (client: ContractClient, partition: string) => ((await client.methods.Get!({ partition }, { deadlineMs: 20_000 })) as { sequences: string[] }).sequences.map(Number);
const oneTo = (n: number) => Array.from({ length: n }, (_, i) => i + 1);

async function eventually<T>(probe: () => Promise<T>, done: (value: T) => boolean, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (done(value) || Date.now() > deadline) return value;
    await new Promise((r) => setTimeout(r, 100));
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

/** The topic's raw stream entries in database `db`: id (CloudEvents) and partition key, in stream order. */
async function streamOf(t: ExecutionContext, db: number): Promise<Array<{ id: string; partitionKey: string }>> {
  const client = new Redis(`${redis!.url}/${db}`);
  t.teardown(() => client.disconnect());
  const entries = await client.xrange(new RedisLayout(clusterNameFor(t.title)).topicKey(TOPIC), "-", "+");
  return entries.map(([, fields]) => {
    const f = new Map<string, string>();
    for (let i = 0; i < fields.length; i += 2) f.set(fields[i]!, fields[i + 1]!);
    return { id: f.get("i")!, partitionKey: f.get("k")! };
  });
}

async function deadLetters(node: NodeProcess, subscription: string): Promise<{ status: number; body: any }> {
  const res = await fetch(`${node.adminUrl}/topics/${TOPIC}/dead-letters/${encodeURIComponent(subscription)}`, { headers: { authorization: `Bearer ${node.token}` } });
  return { status: res.status, body: await res.json() };
}

test.serial("published messages reach every subscriber once each, in order per partition key, with their CloudEvents attributes", async (t) => {
  const db = 1;
  const node = await serveWith(t, wasm(), `${redis!.url}/${db}`);
  const c = clients(t, node);
  const partitions = ["p0", "p1", "p2", "p3"];
  // Four commands of five messages per partition, the partitions' commands concurrent.
  const before = Date.now();
  await Promise.all(partitions.map(async (partition) => {
    for (let i = 0; i < 4; i++) await c.shop.methods.Publish!({ partition, count: 5 });
  }));

  const stream = await eventually(() => streamOf(t, db), (s) => s.length === 80, 10_000);
  t.is(stream.length, 80, "each publication is one stream entry");
  for (const partition of partitions) {
    const tally = await eventually(() => tallyOf(c, partition), (s) => s.sequences.length >= 20, 20_000);
    t.deepEqual(tally.sequences.map(Number), oneTo(20), `${partition}: each message once, in publication order`);
    t.deepEqual(tally.ids, stream.filter((m) => m.partitionKey === partition).map((m) => m.id), `${partition}: the CloudEvents ids are the stream's, in its order`);
    t.is(new Set(tally.ids).size, 20);
    // What the handler itself read from ctx.metadata(...).
    const last = tally.last!;
    t.like(last, { sequence: "20", ceSource: `topics-shop/${partition}`, ceType: `${PACKAGE}.OrderEvent`, ceSubject: partition, ceSpecversion: "1.0", ceId: tally.ids[19] });
    t.regex(last.ceTime, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/, "RFC 3339");
    t.true(Date.parse(last.ceTime) >= before - 1000 && Date.parse(last.ceTime) <= Date.now());
    // The non-idempotent subscriber saw the same, nothing repeated (nothing failed).
    t.deepEqual(await eventually(() => seqs(c.deliveries, partition), (s) => s.length >= 20, 10_000), oneTo(20), `${partition}: Relay -> Deliveries once each, in order`);
  }
  // And nothing more arrives later (no redelivery of acknowledged messages).
  await new Promise((resolve) => setTimeout(resolve, 500));
  t.is((await tallyOf(c, "p0")).sequences.length, 20);
  t.is((await seqs(c.deliveries, "p0")).length, 20);
  const metrics = (await scrapeMetrics(node.adminUrl)).samples;
  t.is(metrics.get(`keystate_topic_messages_handled_total{subscription="${SUBSCRIPTION.tally}"}`), 80);
  t.is(metrics.get(`keystate_topic_messages_handled_total{subscription="${SUBSCRIPTION.relay}"}`), 80);

  // A redelivery is the same publication again (same CloudEvents id): appended twice here, as a
  // publisher that crashed before recording its XADD would. The entity applies it once; the
  // forwarding action, which has no idempotency of its own, passes both on.
  const client = new Redis(`${redis!.url}/${db}`);
  t.teardown(() => client.disconnect());
  const topics = new RedisTopics(client, () => new RedisLayout(clusterNameFor(t.title)));
  const twice = { id: "dup-1", source: "test/publisher", type: `${PACKAGE}.OrderEvent`, time: Date.now(), partitionKey: "dup", payload: OrderEvent.encode({ partition: "dup", sequence: 1 }).finish() };
  await topics.publish(TOPIC, twice);
  await topics.publish(TOPIC, twice);
  t.deepEqual(await eventually(() => seqs(c.deliveries, "dup"), (s) => s.length >= 2, 10_000), [1, 1], "the non-idempotent subscriber got it twice");
  await eventually(async () => (await scrapeMetrics(node.adminUrl)).samples.get(`keystate_topic_messages_handled_total{subscription="${SUBSCRIPTION.tally}"}`), (n) => n === 82, 10_000);
  t.deepEqual((await tallyOf(c, "dup")).sequences.map(Number), [1], "the event-sourced subscriber applied it once (idempotency key = its CloudEvents id)");
});

test.serial("a message its subscriber keeps refusing is dead-lettered after maxAttempts; the partition's later messages and other subscriptions go on", async (t) => {
  const node = await serveWith(t, wasm(), `${redis!.url}/2`);
  const c = clients(t, node);
  await c.shop.methods.Publish!({ partition: "dl", count: 6, failAt: 3 });

  const picky = await eventually(() => seqs(c.picky, "dl"), (s) => s.length >= 5, 15_000);
  t.deepEqual(picky, [1, 2, 4, 5, 6], "the refused message is skipped once given up; the next ones follow in order");
  t.deepEqual((await tallyOf(c, "dl")).sequences.map(Number), oneTo(6), "other subscriptions of the topic get every message");

  const { status, body } = await deadLetters(node, SUBSCRIPTION.picky);
  t.is(status, 200);
  t.is(body.deadLetters.length, 1);
  const letter = body.deadLetters[0];
  t.like(letter, { attempts: 3, reason: "picky refuses order 3 of dl" });
  t.like(letter.message, { source: "topics-shop/dl", type: `${PACKAGE}.OrderEvent`, partitionKey: "dl" });
  t.like(OrderEvent.decode(Buffer.from(letter.message.payload, "base64")).toJSON(), { partition: "dl", sequence: "3", fail: true }, "the original message is kept");
  t.deepEqual((await deadLetters(node, SUBSCRIPTION.tally)).body.deadLetters, [], "dead letters are per subscription");
  t.is((await fetch(`${node.adminUrl}/topics/${TOPIC}/dead-letters/x`)).status, 401, "the admin token is required");
  t.is((await fetch(`${node.adminUrl}/topics/no%20spaces/dead-letters/x`, { headers: { authorization: `Bearer ${node.token}` } })).status, 400);

  const logged = await eventually(async () => logLines(node, "topic message dead-lettered"), (l) => l.length > 0, 5_000);
  t.like(logged[0], { level: 40, subscription: SUBSCRIPTION.picky, topic: TOPIC, messageId: letter.message.id, attempts: 3, reason: "picky refuses order 3 of dl" });
  t.is(logLines(node, "topic message handler failed; retrying").filter((l) => l.subscription === SUBSCRIPTION.picky).length, 2, "two retries before the third and last attempt");
  const metrics = (await scrapeMetrics(node.adminUrl)).samples;
  t.is(metrics.get(`keystate_topic_messages_dead_lettered_total{subscription="${SUBSCRIPTION.picky}"}`), 1);
  t.is(metrics.get(`keystate_topic_delivery_failures_total{subscription="${SUBSCRIPTION.picky}"}`), 3);
});

test.serial("a subscriber node killed (SIGKILL) mid-stream: after restart every message is handled; the idempotent subscriber has each exactly once, the other at least once", async (t) => {
  const db = 3;
  const url = `${redis!.url}/${db}`;
  const node = await serveWith(t, wasm(), url);
  const c = clients(t, node);
  // Published straight into the stream by a process of its own (as another node's outbox
  // would), so messages keep flowing while the subscriber node is down.
  const client = new Redis(url);
  t.teardown(() => client.disconnect());
  const topics = new RedisTopics(client, () => new RedisLayout(clusterNameFor(t.title)));
  const partitions = Array.from({ length: 8 }, (_, i) => `k${i}`);
  const perPartition = 250;
  let published = 0;
  const publishing = (async () => {
    for (let sequence = 1; sequence <= perPartition; sequence++) {
      await Promise.all(partitions.map((partition) => {
        const payload = OrderEvent.encode({ partition, sequence, fail: false }).finish();
        return topics.publish(TOPIC, { id: `${partition}-${sequence}`, source: "test/publisher", type: `${PACKAGE}.OrderEvent`, time: Date.now(), partitionKey: partition, payload });
      }));
      published += partitions.length;
      await new Promise((resolve) => setTimeout(resolve, 4));
    }
  })();

  const handled = async (cl: Clients) => (await Promise.all(partitions.map((p) => tallySoFar(cl, p)))).reduce((n, s) => n + s.sequences.length, 0);
  const atKill = await eventually(() => handled(c), (n) => n >= 200, 20_000);
  await node.kill("SIGKILL");
  const publishedAtKill = published;
  t.log(`killed with ${atKill} of ${publishedAtKill} published messages handled by Tally`);
  t.true(atKill < partitions.length * perPartition, "killed mid-stream, before the last message was handled");

  const again = await serveWith(t, undefined, url, node.dataDir);
  const d = clients(t, again);
  await publishing;
  const total = partitions.length * perPartition;
  await eventually(() => handled(d), (n) => n >= total, 40_000);
  let repeats = 0;
  for (const partition of partitions) {
    const tally = await tallyOf(d, partition);
    t.deepEqual(tally.sequences.map(Number), oneTo(perPartition), `${partition}: Tally has every message exactly once, in order`);
    const relayed = await eventually(() => seqs(d.deliveries, partition), (s) => new Set(s).size >= perPartition, 20_000);
    const counts = new Map<number, number>();
    for (const s of relayed) counts.set(s, (counts.get(s) ?? 0) + 1);
    t.deepEqual([...counts.keys()].sort((a, b) => a - b), oneTo(perPartition), `${partition}: Deliveries saw every message at least once`);
    repeats += relayed.length - perPartition;
  }
  const claimed = logLines(again, "topic subscription took over unacknowledged messages");
  t.log(`after the restart: ${repeats} repeated deliveries counted by the non-idempotent subscriber; takeovers logged: ${JSON.stringify(claimed.map((l) => [l.subscription, l.claimed]))}`);
  t.true(claimed.length > 0, "the restarted node took over what the killed one had left unacknowledged");
});

/** Whether `node`'s log says it consumes `subscription` now (its last start/stop line). */
function consumes(node: NodeProcess, subscription: string): boolean {
  const lines = node.output
    .join("")
    .split("\n")
    .filter((line) => line.startsWith("{") && line.includes(subscription))
    .map((line) => JSON.parse(line) as { msg?: string; subscription?: string })
    .filter((entry) => entry.subscription === subscription && (entry.msg === "topic subscription started" || entry.msg === "topic subscription stopped"));
  return lines.at(-1)?.msg === "topic subscription started";
}

test.serial("in a cluster one node consumes a subscription; killed, its successor takes over what it left unacknowledged and the idempotent subscriber still has each message once", async (t) => {
  const url = `${redis!.url}/4`;
  const a = await serveWith(t, wasm(), url);
  const b = await serveWith(t, undefined, url);
  // b joined: shards (and the subscriptions hashed to them) spread over both; exactly one consumes Tally's.
  const owner = await eventually(async () => [a, b].filter((n) => consumes(n, SUBSCRIPTION.tally)), (o) => o.length === 1, 20_000);
  t.is(owner.length, 1, "one consumer at a time");
  const [victim, survivor] = owner[0] === a ? [a, b] : [b, a];
  const c = clients(t, survivor);

  const client = new Redis(url);
  t.teardown(() => client.disconnect());
  const topics = new RedisTopics(client, () => new RedisLayout(clusterNameFor(t.title)));
  const partitions = Array.from({ length: 8 }, (_, i) => `c${i}`);
  const perPartition = 150;
  const publishing = (async () => {
    for (let sequence = 1; sequence <= perPartition; sequence++) {
      await Promise.all(partitions.map((partition) => topics.publish(TOPIC, { id: `${partition}-${sequence}`, source: "test/publisher", type: `${PACKAGE}.OrderEvent`, time: Date.now(), partitionKey: partition, payload: OrderEvent.encode({ partition, sequence }).finish() })));
      await new Promise((resolve) => setTimeout(resolve, 4));
    }
  })();
  const handled = async () => (await Promise.all(partitions.map((p) => tallySoFar(c, p)))).reduce((n, s) => n + s.sequences.length, 0);
  const atKill = await eventually(handled, (n) => n >= 200, 20_000);
  await victim.kill("SIGKILL");
  t.log(`killed the consuming node with ${atKill} messages handled`);

  await publishing;
  await eventually(handled, (n) => n >= partitions.length * perPartition, 40_000);
  for (const partition of partitions) {
    t.deepEqual((await tallyOf(c, partition)).sequences.map(Number), oneTo(perPartition), `${partition}: every message exactly once, in order, across the takeover`);
  }
  t.true(consumes(survivor, SUBSCRIPTION.tally), "the survivor consumes the subscription now");
  const takeover = logLines(survivor, "topic subscription took over unacknowledged messages").filter((l) => l.subscription === SUBSCRIPTION.tally);
  t.log(`takeover: ${JSON.stringify(takeover.map((l) => l.claimed))} message(s) claimed from the killed node`);
});

test.serial("on the embedded store (no Redis) messages are delivered and dead-lettered too", async (t) => {
  const node = await serveWith(t, wasm());
  const c = clients(t, node);
  await c.shop.methods.Publish!({ partition: "e", count: 4, failAt: 2 });
  await c.shop.methods.Publish!({ partition: "f", count: 3 });
  t.deepEqual((await eventually(() => tallyOf(c, "e"), (s) => s.sequences.length >= 4, 10_000)).sequences.map(Number), oneTo(4));
  t.deepEqual((await eventually(() => tallyOf(c, "f"), (s) => s.sequences.length >= 3, 10_000)).sequences.map(Number), oneTo(3));
  t.deepEqual(await eventually(() => seqs(c.picky, "e"), (s) => s.length >= 3, 10_000), [1, 3, 4]);
  const letters = await eventually(() => deadLetters(node, SUBSCRIPTION.picky), (r) => r.body.deadLetters?.length === 1, 5_000);
  t.like(letters.body.deadLetters[0], { attempts: 3, reason: "picky refuses order 2 of e" });
  t.like((await tallyOf(c, "e")).last, { ceSubject: "e", ceSpecversion: "1.0", ceSource: "topics-shop/e" });
  t.deepEqual(await eventually(() => seqs(c.deliveries, "e"), (s) => s.length >= 4, 10_000), oneTo(4));

  // Pending and positions are stored: a restart on the same data re-handles nothing.
  await node.kill("SIGKILL");
  const again = await serveWith(t, undefined, undefined, node.dataDir);
  const d = clients(t, again);
  await d.shop.methods.Publish!({ partition: "f", count: 1 });
  t.deepEqual((await eventually(() => tallyOf(d, "f"), (s) => s.sequences.length >= 4, 10_000)).sequences.map(Number), oneTo(4));
  t.deepEqual(await seqs(d.deliveries, "e"), oneTo(4), "Relay -> Deliveries: nothing delivered twice across the restart");

  // Undeploying the module stops its subscriptions.
  const undeployed = await fetch(`${again.adminUrl}/modules/topics-shop`, { method: "DELETE", headers: { authorization: `Bearer ${again.token}` } });
  t.is(undeployed.status, 200);
  const stopped = await eventually(async () => logLines(again, "topic subscription stopped"), (l) => l.length >= 3, 5_000);
  t.deepEqual(stopped.map((l) => l.subscription).sort(), Object.values(SUBSCRIPTION).sort());
  t.true(Object.values(SUBSCRIPTION).every((id) => !consumes(again, id)));
});
