// The event feeds both stores keep with every journal append (host/journal/event-feeds.ts):
// one entry per append that wrote events, atomically with it, in order per persistence id
// and shard; subscription offsets and parked entities. Embedded (LMDB) and a real redis-server.
import test, { type ExecutionContext } from "ava";
import { randomUUID } from "node:crypto";
import { EmbeddedStore } from "../../host/journal/embedded-store.js";
import { RedisLayout } from "../../host/journal/redis-keys.js";
import { RedisStore } from "../../host/journal/redis-store.js";
import { shardOf } from "../../host/journal/shards.js";
import type { Store } from "../../host/journal/types.js";
import { monitorCluster } from "../helpers/redis-monitor.js";
import { startRedis, type RunningRedis } from "../helpers/redis-server.js";
import { eventsNumbered } from "../helpers/store-contract.js";
import { tempDirFor } from "../helpers/temp-dir.js";

let redis: RunningRedis | undefined;
test.before(async () => {
  redis = await startRedis();
});
test.after.always(async () => {
  await redis?.stop();
});

interface Backend {
  readonly name: string;
  open(t: ExecutionContext): Promise<Store>;
  /** The shard an entity's feed entries go to. */
  shardOf(persistenceId: string, key: string): number;
}

/** Redis with a cluster layout of 4 shards, so a test sees entries split by shard; each test its own cluster name. */
const SHARDS = 4;
const backends: Backend[] = [
  {
    name: "embedded",
    open: async (t) => {
      const store = await EmbeddedStore.open(await tempDirFor(t, "feeds"));
      t.teardown(() => store.close());
      return store;
    },
    shardOf: () => 0,
  },
  {
    name: "redis",
    open: async (t) => {
      const store = await RedisStore.open(redis!.url);
      store.useCluster(new RedisLayout(`feeds-${randomUUID().slice(0, 8)}`, SHARDS), undefined);
      t.teardown(() => store.close());
      return store;
    },
    shardOf: (pid, key) => shardOf(pid, key, SHARDS),
  },
];

for (const backend of backends) {
  const name = backend.name;

  test(`${name}: each append that writes events adds one feed entry (key, first seq, count), in order; extras-only and refused appends add none`, async (t) => {
    const store = await backend.open(t);
    const pid = `cart-${randomUUID().slice(0, 6)}`;
    // Keys that could break a stream field, a hash tag or a separator, and non-ASCII.
    const keys = ["ann", "a/b{c}%:d", "ünï-😀", ""];
    for (const key of keys) {
      await store.journal.append({ persistenceId: pid, key }, 0, eventsNumbered(1, 2));
      await store.journal.append({ persistenceId: pid, key }, 2, eventsNumbered(3, 1));
      // An append with nothing but an idempotent reply writes no events: no feed entry.
      await store.journal.append({ persistenceId: pid, key }, 3, [], { replies: [{ key: `k-${key}`, reply: Buffer.from("r") }] });
      await t.throwsAsync(store.journal.append({ persistenceId: pid, key }, 1, eventsNumbered(9, 1)), { message: /expected seq 1/ });
    }
    // Another persistence id has a feed of its own.
    await store.journal.append({ persistenceId: `${pid}-other`, key: "ann" }, 0, eventsNumbered(1, 5));

    const seen: Array<{ key: string; firstSeq: number; count: number }> = [];
    for (let shard = 0; shard < (name === "redis" ? SHARDS : 1); shard++) {
      const entries = await store.eventFeeds.read(pid, shard, await store.eventFeeds.offset({ subscription: "s", persistenceId: pid, shard }, true), 100);
      for (const entry of entries) {
        t.is(backend.shardOf(pid, entry.key), shard, "an entry is in its entity's shard");
        t.true(Math.abs(entry.time - Date.now()) < 60_000, "the entry carries when it was written");
        seen.push({ key: entry.key, firstSeq: entry.firstSeq, count: entry.count });
      }
    }
    for (const key of keys) {
      t.deepEqual(
        seen.filter((e) => e.key === key),
        [
          { key, firstSeq: 1, count: 2 },
          { key, firstSeq: 3, count: 1 },
        ],
        `feed entries of ${JSON.stringify(key)}`,
      );
    }
    t.is(seen.length, 2 * keys.length);
  });

  test(`${name}: read after an offset pages through the feed; offsets order the entries`, async (t) => {
    const store = await backend.open(t);
    const pid = `p-${randomUUID().slice(0, 6)}`;
    const key = "one";
    const shard = backend.shardOf(pid, key);
    for (let seq = 0; seq < 7; seq++) await store.journal.append({ persistenceId: pid, key }, seq, eventsNumbered(seq + 1, 1));
    const start = await store.eventFeeds.offset({ subscription: "pager", persistenceId: pid, shard }, true);
    const first = await store.eventFeeds.read(pid, shard, start, 3);
    t.deepEqual(first.map((e) => e.firstSeq), [1, 2, 3]);
    const rest = await store.eventFeeds.read(pid, shard, first[2]!.offset, 100);
    t.deepEqual(rest.map((e) => e.firstSeq), [4, 5, 6, 7]);
    t.deepEqual(await store.eventFeeds.read(pid, shard, rest.at(-1)!.offset, 100), []);
  });

  test(`${name}: a new cursor starts at the beginning or at the newest entry, and that start is stored; commits move it`, async (t) => {
    const store = await backend.open(t);
    const pid = `p-${randomUUID().slice(0, 6)}`;
    const key = "k";
    const shard = backend.shardOf(pid, key);
    await store.journal.append({ persistenceId: pid, key }, 0, eventsNumbered(1, 2));
    await store.journal.append({ persistenceId: pid, key }, 2, eventsNumbered(3, 2));
    const beginning = { subscription: "m/pkg.Begin", persistenceId: pid, shard };
    const now = { subscription: "m/pkg.Now", persistenceId: pid, shard };
    t.is((await store.eventFeeds.read(pid, shard, await store.eventFeeds.offset(beginning, true), 10)).length, 2);
    const nowStart = await store.eventFeeds.offset(now, false);
    t.deepEqual(await store.eventFeeds.read(pid, shard, nowStart, 10), [], "'now' starts after what exists");

    await store.journal.append({ persistenceId: pid, key }, 4, eventsNumbered(5, 1));
    t.is(await store.eventFeeds.offset(now, false), nowStart, "the stored start stands: a restart does not skip the new append");
    const fresh = await store.eventFeeds.read(pid, shard, nowStart, 10);
    t.deepEqual(fresh.map((e) => e.firstSeq), [5]);

    await store.eventFeeds.commit(now, fresh[0]!.offset);
    t.is(await store.eventFeeds.offset(now, false), fresh[0]!.offset);
    t.is((await store.eventFeeds.read(pid, shard, await store.eventFeeds.offset(beginning, true), 10)).length, 3, "cursors are per subscription");
  });

  test(`${name}: parked entities are stored per subscription and persistence id`, async (t) => {
    const store = await backend.open(t);
    const cursor = { subscription: "m/pkg.P", persistenceId: "cart", shard: 0 };
    t.deepEqual(await store.eventFeeds.parked(cursor), new Map());
    await store.eventFeeds.park(cursor, "a/b", 4);
    await store.eventFeeds.park(cursor, "c", 9);
    await store.eventFeeds.park({ ...cursor, persistenceId: "cart2" }, "x", 1);
    await store.eventFeeds.park({ ...cursor, subscription: "m/pkg.Q" }, "y", 1);
    t.deepEqual(await store.eventFeeds.parked(cursor), new Map([["a/b", 4], ["c", 9]]));
    await store.eventFeeds.park(cursor, "c", 11);
    await store.eventFeeds.unpark(cursor, "a/b");
    t.deepEqual(await store.eventFeeds.parked(cursor), new Map([["c", 11]]));
    t.deepEqual(await store.eventFeeds.parked({ ...cursor, persistenceId: "cart2" }), new Map([["x", 1]]));
  });
}

test.serial("redis: the feed entry is written by the append script, in the entity's shard slot, and the lease key stays the script's last key", async (t) => {
  const store = await RedisStore.open(redis!.url);
  t.teardown(() => store.close());
  const cluster = `feeds-${randomUUID().slice(0, 8)}`;
  const layout = new RedisLayout(cluster, SHARDS);
  store.useCluster(layout, undefined);
  const id = { persistenceId: "cart", key: "ann" };
  const keys = layout.entityKeys(id);
  t.is(keys.feed, layout.feedKey(keys.shard, "cart"));
  t.true(keys.feed.startsWith(`${layout.shardTag(keys.shard)}:`), "same hash tag as the journal and the lease");

  // The script as Redis runs it (MONITOR): its keys, the lease last, and one XADD to the feed.
  const monitor = await monitorCluster(redis!.url, cluster);
  t.teardown(() => monitor.close());
  await store.journal.append(id, 0, eventsNumbered(1, 3));
  await monitor.flush();
  const [write, ...more] = monitor.history().stored;
  t.is(more.length, 0);
  t.deepEqual(write!.keys, [keys.journal, keys.outbox, keys.replies, keys.replyTimes, keys.feed, keys.lease]);
  const xadds = write!.writes.filter((args) => args[0]!.toLowerCase() === "xadd");
  t.is(xadds.filter((args) => args[1] === keys.journal).length, 3);
  t.deepEqual(
    xadds.filter((args) => args[1] === keys.feed).map((args) => args.slice(2)),
    [["*", "k", "ann", "s", "1", "n", "3"]],
    "one feed entry for the whole append",
  );
});
