// Topics in each store backend, against real storage: the embedded store (LMDB), one
// redis-server and a 3-master Redis Cluster run the same cases: positions per subscription
// ("from the beginning" or "from now"), a waiting read woken by a publish, pending messages
// redelivered with a delivery count, acknowledgements, dead letters, and (Redis) another
// consumer taking over what a gone one left unacknowledged.
import { randomUUID } from "node:crypto";
import test, { type ExecutionContext } from "ava";
import { EmbeddedStore } from "../../host/journal/embedded-store.js";
import { RedisStore } from "../../host/journal/redis-store.js";
import type { Store, TopicMessage } from "../../host/journal/types.js";
import { startRedisCluster, type RunningRedisCluster } from "../helpers/redis-cluster.js";
import { startRedis, type RunningRedis } from "../helpers/redis-server.js";
import { tempDirFor } from "../helpers/temp-dir.js";

let redis: RunningRedis | undefined;
let redisCluster: RunningRedisCluster | undefined;
test.before(async () => {
  [redis, redisCluster] = await Promise.all([startRedis(), startRedisCluster()]);
});
test.after.always(async () => {
  await Promise.all([redis?.stop(), redisCluster?.stop()]);
});

type Backend = "embedded" | "redis" | "redis-cluster";
const BACKENDS: readonly Backend[] = ["embedded", "redis", "redis-cluster"];

async function open(t: ExecutionContext, backend: Backend): Promise<Store> {
  const store =
    backend === "embedded"
      ? await EmbeddedStore.open(await tempDirFor(t, "lmdb"))
      : backend === "redis"
        ? await RedisStore.open(redis!.url)
        : await RedisStore.open({ urls: redisCluster!.urls, cluster: true });
  t.teardown(() => store.close());
  return store;
}

function message(n: number, partitionKey = "k"): Omit<TopicMessage, "offset"> {
  return { id: `m${n}-${randomUUID().slice(0, 8)}`, source: "test/source", type: "test.Msg", time: 1_700_000_000_000 + n, partitionKey, payload: Uint8Array.of(n, 0, 255) };
}

const ids = (messages: readonly { id: string }[]) => messages.map((m) => m.id);

for (const backend of BACKENDS) {
  const title = (what: string) => `${backend}: ${what}`;

  test(title("a new subscription starts at the beginning or at the next message; each has its own position"), async (t) => {
    const store = await open(t, backend);
    const topic = `orders-${randomUUID().slice(0, 8)}`;
    const before = [message(1), message(2)];
    for (const m of before) await store.topics.publish(topic, m);
    const all = await store.topics.consume(topic, "all", "c1", { fromStart: true });
    const fresh = await store.topics.consume(topic, "fresh", "c1", { fromStart: false });
    t.teardown(() => Promise.all([all.close(), fresh.close()]));
    const later = message(3, "other");
    await store.topics.publish(topic, later);

    const got = await all.next(10, 100);
    t.deepEqual(ids(got), [...ids(before), later.id]);
    t.deepEqual(ids(await fresh.next(10, 100)), [later.id]);
    // Everything a delivery carries, bytes included.
    t.like(got[2], { source: "test/source", type: "test.Msg", time: later.time, partitionKey: "other", deliveries: 1 });
    t.deepEqual([...got[2]!.payload], [3, 0, 255]);
    // Handed out once: the next read has nothing new.
    t.deepEqual(await all.next(10, 50), []);
    // Joining again does not move a position that exists.
    const again = await store.topics.consume(topic, "fresh", "c1", { fromStart: true });
    t.teardown(() => again.close());
    t.deepEqual(await again.next(10, 50), []);
  });

  test(title("a waiting read is woken by a publish; close() ends a waiting read with nothing"), async (t) => {
    const store = await open(t, backend);
    const topic = `wake-${randomUUID().slice(0, 8)}`;
    const consumer = await store.topics.consume(topic, "s", "c1", { fromStart: true });
    t.teardown(() => consumer.close());
    const started = performance.now();
    const waiting = consumer.next(10, 5000);
    await new Promise((resolve) => setTimeout(resolve, 100));
    const m = message(1);
    await store.topics.publish(topic, m);
    t.deepEqual(ids(await waiting), [m.id]);
    t.true(performance.now() - started < 2500, "woken by the publish, not by the time-out");

    const closing = consumer.next(10, 5000);
    await new Promise((resolve) => setTimeout(resolve, 100));
    const closedAt = performance.now();
    await consumer.close();
    t.deepEqual(await closing, []);
    t.true(performance.now() - closedAt < 1000, "close() wakes the read");
  });

  test(title("unacknowledged messages are pending and redelivered, counted; acknowledged and dead-lettered ones are not"), async (t) => {
    const store = await open(t, backend);
    const topic = `pending-${randomUUID().slice(0, 8)}`;
    const sent = [message(1), message(2), message(3)];
    for (const m of sent) await store.topics.publish(topic, m);
    const consumer = await store.topics.consume(topic, "s", "c1", { fromStart: true });
    t.teardown(() => consumer.close());
    const first = await consumer.next(10, 100);
    t.deepEqual(ids(first), ids(sent));

    await consumer.ack([first[0]!.offset]);
    const again = await consumer.pending(10);
    t.deepEqual(ids(again), ids(sent.slice(1)), "the unacknowledged ones, oldest first");
    t.deepEqual(again.map((m) => m.deliveries), [2, 2], "each re-read counts as a delivery");
    t.deepEqual((await consumer.pending(1)).map((m) => m.deliveries), [3]);

    await consumer.deadLetter(again[0]!, "the handler refused it", 3);
    t.deepEqual(ids(await consumer.pending(10)), [sent[2]!.id]);
    const letters = await store.topics.deadLetters(topic, "s", 10);
    t.is(letters.length, 1);
    t.like(letters[0], { reason: "the handler refused it", attempts: 3 });
    t.like(letters[0]!.message, { id: sent[1]!.id, offset: again[0]!.offset, source: "test/source", partitionKey: "k" });
    t.deepEqual([...letters[0]!.message.payload], [2, 0, 255]);
    t.deepEqual(await store.topics.deadLetters(topic, "other", 10), [], "dead letters are per subscription");

    await consumer.ack([again[1]!.offset]);
    t.deepEqual(await consumer.pending(10), []);
  });

  if (backend !== "embedded") {
    test(title("a new consumer claims what another left unacknowledged; the claim itself is not a delivery"), async (t) => {
      const store = await open(t, backend);
      const topic = `claim-${randomUUID().slice(0, 8)}`;
      const sent = [message(1), message(2)];
      for (const m of sent) await store.topics.publish(topic, m);
      const gone = await store.topics.consume(topic, "s", "node-a", { fromStart: true });
      t.deepEqual(ids(await gone.next(10, 100)), ids(sent));
      await gone.close();

      const next = await store.topics.consume(topic, "s", "node-b", { fromStart: true });
      t.teardown(() => next.close());
      t.deepEqual(await next.pending(10), [], "nothing is node-b's before it claims");
      t.is(await next.claim(60_000), 0, "not idle long enough");
      t.is(await next.claim(0), 2);
      const taken = await next.pending(10);
      t.deepEqual(ids(taken), ids(sent));
      t.deepEqual(taken.map((m) => m.deliveries), [2, 2], "delivered to node-a once, now to node-b");
      await next.ack(taken.map((m) => m.offset));
      t.deepEqual(await next.pending(10), []);
    });
  }
}
