// The Redis store on a real 3-master Redis Cluster (ioredis Cluster client): the shared
// store contract, plus what only a cluster can show: every key of an entity and its shard's
// lease live in one slot (so one Lua script checks the lease and writes atomically), entities
// of different shards spread over the masters, fencing refuses a stale or expired epoch
// there exactly as on one redis-server, and a write cut off after it was sent is never
// resent by the Cluster client (its outcome stays unknown instead of running twice).
import { randomUUID } from "node:crypto";
import test, { type ExecutionContext } from "ava";
import { Cluster, Redis } from "ioredis";
import { isKeystateError } from "../../host/errors.js";
import { RedisLayout } from "../../host/journal/redis-keys.js";
import { RedisStore } from "../../host/journal/redis-store.js";
import type { EntityId, ShardFencing } from "../../host/journal/types.js";
import { startRedisCluster, type RunningRedisCluster } from "../helpers/redis-cluster.js";
import { eventsNumbered, newEntity, registerStoreContract } from "../helpers/store-contract.js";

let cluster: RunningRedisCluster | undefined;
test.before(async () => {
  cluster = await startRedisCluster();
});
test.after.always(async () => {
  await cluster?.stop();
});

const openOnCluster = () => RedisStore.open({ urls: cluster!.urls, cluster: true });

registerStoreContract("redis-cluster", openOnCluster);

async function storeFor(t: ExecutionContext): Promise<RedisStore> {
  const store = await openOnCluster();
  t.teardown(() => store.close());
  return store;
}

/** A plain ioredis Cluster client of the test's own (to inspect what the store wrote). */
async function inspector(t: ExecutionContext): Promise<Cluster> {
  const client = new Cluster([...cluster!.seeds], { lazyConnect: true });
  client.on("error", () => {});
  t.teardown(() => client.disconnect());
  await client.connect();
  return client;
}

/** One direct (non-cluster) connection per master, in start order. */
async function masters(t: ExecutionContext): Promise<Redis[]> {
  const clients = cluster!.seeds.map((seed) => new Redis({ host: seed.host, port: seed.port, lazyConnect: true }));
  t.teardown(() => clients.forEach((c) => c.disconnect()));
  await Promise.all(clients.map((c) => c.connect()));
  return clients;
}

/** Slot -> port of the master serving it, from CLUSTER SLOTS. */
async function slotOwners(client: Redis): Promise<Map<number, number>> {
  const ranges = (await client.call("CLUSTER", "SLOTS")) as Array<[number, number, [string, number, ...unknown[]], ...unknown[]]>;
  const owners = new Map<number, number>();
  for (const [start, end, [, port]] of ranges) for (let slot = start; slot <= end; slot++) owners.set(slot, Number(port));
  return owners;
}

/** Every key matching `pattern` stored on this one node (SCAN never redirects). */
async function localKeys(client: Redis, pattern: string): Promise<string[]> {
  const keys: string[] = [];
  let cursor = "0";
  do {
    const [next, batch] = await client.scan(cursor, "MATCH", pattern, "COUNT", 1000);
    keys.push(...batch);
    cursor = next;
  } while (cursor !== "0");
  return keys;
}

test("redis-cluster: an entity's keys and its shard's lease share one slot; entities of different shards land on different masters", async (t) => {
  const store = await storeFor(t);
  const name = `place-${randomUUID().slice(0, 8)}`;
  const layout = new RedisLayout(name, 256);
  store.useCluster(layout, undefined);
  const direct = await masters(t);
  const slotOf = async (key: string) => Number(await direct[0]!.call("CLUSTER", "KEYSLOT", key));
  const owners = await slotOwners(direct[0]!);
  t.is(owners.size, 16384, "every slot is served");
  t.is(new Set(owners.values()).size, 3, "by three masters");

  // 48 entities (spread over dozens of shards): a journal, a snapshot and a value each.
  const ids: EntityId[] = Array.from({ length: 48 }, (_, i) => ({ persistenceId: "placement.Entity", key: `entity-${i}` }));
  await Promise.all(
    ids.map(async (id) => {
      await store.journal.append(id, 0, eventsNumbered(1, 2));
      await store.journal.saveSnapshot(id, { seq: 1, state: Buffer.from(`state of ${id.key}`) });
      await store.values.put(id, Buffer.from(`value of ${id.key}`));
    }),
  );

  // Where each key really is: SCAN on each master finds only the keys that master stores.
  const holder = new Map<string, number>();
  for (const [i, client] of direct.entries()) {
    for (const key of await localKeys(client, `ks:{s:${name}:*`)) {
      t.false(holder.has(key), `${key} is stored on one master only`);
      holder.set(key, cluster!.seeds[i]!.port);
    }
  }
  // Plus one event feed per shard the appends touched (a stream per shard and persistence id, in the shard's slot).
  const feeds = new Set(ids.map((id) => layout.entityKeys(id).feed));
  t.true([...feeds].every((feed) => holder.has(feed)), "every touched shard's event feed is stored");
  t.is(holder.size, ids.length * 3 + feeds.size, "every journal, snapshot and value key is stored somewhere, and nothing else");

  const mastersByShard = new Map<number, number>();
  for (const id of ids) {
    const keys = layout.entityKeys(id);
    const slots = await Promise.all([keys.journal, keys.snapshot, keys.value, keys.feed, keys.lease].map(slotOf));
    t.is(new Set(slots).size, 1, `${id.key}: journal, snapshot, value, event feed and lease in one slot (${slots.join(", ")})`);
    const expectedMaster = owners.get(slots[0]!)!;
    for (const key of [keys.journal, keys.snapshot, keys.value]) {
      t.is(holder.get(key), expectedMaster, `${key} is on the master CLUSTER SLOTS gives its slot`);
    }
    mastersByShard.set(keys.shard, expectedMaster);
  }
  const shards = [...mastersByShard.keys()];
  const used = new Set(mastersByShard.values());
  t.true(shards.length >= 20, `the entities fall into many shards (${shards.length})`);
  t.is(used.size, 3, `entities of different shards are stored on all three masters: ${JSON.stringify(Object.fromEntries(mastersByShard))}`);

  // And read back through the cluster client, whatever master they are on.
  for (const id of ids) {
    const recovered = await store.journal.recover(id);
    t.is(recovered.snapshot?.seq, 1);
    t.deepEqual(recovered.events.map((e) => e.seq), [2]);
    t.is(Buffer.from((await store.values.get(id))!).toString(), `value of ${id.key}`);
  }
});

test("redis-cluster: each module's meta, bytes and artifacts share a slot; modules spread over masters and list() finds them all", async (t) => {
  const store = await storeFor(t);
  const name = `mods-${randomUUID().slice(0, 8)}`;
  const layout = new RedisLayout(name, 256);
  store.useCluster(layout, undefined);
  const direct = await masters(t);
  const owners = await slotOwners(direct[0]!);
  const modules = Array.from({ length: 12 }, (_, i) => `module-${i}`);
  for (const module of modules) await store.modules.addVersion(module, Buffer.from(`wasm of ${module}`), `hash-${module}`, { activate: true });
  const listed = await store.modules.list();
  t.deepEqual(listed.map((m) => [m.name, m.activeVersion]), modules.slice().sort().map((m) => [m, 1]));
  const metaMasters = new Set<number>();
  for (const module of modules) {
    const keys = layout.moduleKeys(module);
    const slots = await Promise.all([keys.meta, keys.bytes, keys.artifacts].map(async (k) => Number(await direct[0]!.call("CLUSTER", "KEYSLOT", k))));
    t.is(new Set(slots).size, 1, `${module}: meta, bytes and artifacts in one slot`);
    metaMasters.add(owners.get(slots[0]!)!);
  }
  t.true(metaMasters.size >= 2, `modules spread over masters (${[...metaMasters].join(", ")}); list() still finds them all`);
});

/** Redis's own clock (ms), as the fencing script reads it. */
async function redisNowMs(client: Cluster): Promise<number> {
  const [seconds, micros] = await client.time();
  return Number(seconds) * 1000 + Math.floor(Number(micros) / 1000);
}

test("redis-cluster: a fenced write is refused on the cluster too: stale epoch or expired lease -> FENCED, nothing written; the current epoch writes", async (t) => {
  const store = await storeFor(t);
  const client = await inspector(t);
  const layout = new RedisLayout(`fence-${randomUUID().slice(0, 8)}`, 256);
  let held: number | undefined = 6;
  const refusals: Array<[number, number]> = [];
  const fencing: ShardFencing = {
    epochFor: () => held,
    refused: (shard, epoch) => refusals.push([shard, epoch]),
  };
  store.useCluster(layout, fencing);

  const id = newEntity("fence.Entity");
  const keys = layout.entityKeys(id);
  // The lease as the control plane would leave it: epoch 7 (another node took over), live for a minute.
  await client.hset(keys.lease, "owner", "other-node", "epoch", "7", "until", String((await redisNowMs(client)) + 60_000));

  const expectFenced = async (what: string, call: () => Promise<unknown>) => {
    const err = await t.throwsAsync(call(), undefined, what);
    t.true(isKeystateError(err, "FENCED"), `${what}: ${String(err)}`);
  };
  // Stale epoch 6.
  await expectFenced("append under epoch 6", () => store.journal.append(id, 0, eventsNumbered(1, 1, " stale")));
  await expectFenced("value put under epoch 6", () => store.values.put(id, Buffer.from("stale")));
  await expectFenced("value write under epoch 6", () => store.values.write(id, Buffer.from("stale"), 0));
  await expectFenced("value delete under epoch 6", () => store.values.delete(id));
  t.deepEqual(refusals, Array.from({ length: 4 }, () => [keys.shard, 6]), "each refusal reported with the shard and the stale epoch");
  t.is(await client.exists(keys.journal, keys.value, keys.snapshot), 0, "a refused write stores nothing");

  // The current epoch 7 writes.
  held = 7;
  await store.journal.append(id, 0, eventsNumbered(1, 2));
  await store.journal.saveSnapshot(id, { seq: 2, state: Buffer.from("state@2") });
  t.is(await store.values.write(id, Buffer.from("current"), 0), 1);
  const recovered = await store.journal.recover(id);
  t.is(recovered.lastSeq, 2);
  t.is(recovered.snapshot?.seq, 2);
  t.is(Buffer.from((await store.values.get(id))!).toString(), "current");
  t.is(refusals.length, 4, "no refusal under the current epoch");

  // A snapshot under a stale epoch is refused as well, and leaves the stored one.
  held = 6;
  await expectFenced("snapshot under epoch 6", () => store.journal.saveSnapshot(id, { seq: 2, state: Buffer.from("stale") }));
  t.is(Buffer.from((await store.journal.recover(id)).snapshot!.state).toString(), "state@2");

  // The right epoch, but the lease ran out in Redis's clock: refused.
  held = 7;
  await client.hset(keys.lease, "until", String((await redisNowMs(client)) - 1));
  await expectFenced("append under an expired lease", () => store.journal.append(id, 2, eventsNumbered(3, 1, " late")));
  await expectFenced("value put under an expired lease", () => store.values.put(id, Buffer.from("late")));
  t.is((await store.journal.recover(id)).lastSeq, 2, "nothing appended after the lease expired");
  t.is(Buffer.from((await store.values.get(id))!).toString(), "current");

  // No lease held at all: NOT_OWNER before anything reaches Redis.
  held = undefined;
  const err = await t.throwsAsync(store.journal.append(id, 2, eventsNumbered(3, 1)));
  t.true(isKeystateError(err, "NOT_OWNER"), String(err));

  // Renewed: writes again from where the journal is.
  held = 7;
  await client.hset(keys.lease, "until", String((await redisNowMs(client)) + 60_000));
  await store.journal.append(id, 2, eventsNumbered(3, 1));
  t.is((await store.journal.recover(id)).lastSeq, 3);
});

test("redis-cluster: a fenced write on another shard (other master) is judged by that shard's lease only", async (t) => {
  const store = await storeFor(t);
  const client = await inspector(t);
  const direct = await masters(t);
  const owners = await slotOwners(direct[0]!);
  const layout = new RedisLayout(`fence2-${randomUUID().slice(0, 8)}`, 256);
  // Two entities whose shards are on different masters.
  const masterOf = async (id: EntityId) => owners.get(Number(await direct[0]!.call("CLUSTER", "KEYSLOT", layout.entityKeys(id).lease)))!;
  const first: EntityId = { persistenceId: "fence.Entity", key: "a-0" };
  let second: EntityId | undefined;
  for (let i = 0; i < 64 && second === undefined; i++) {
    const candidate: EntityId = { persistenceId: "fence.Entity", key: `b-${i}` };
    if ((await masterOf(candidate)) !== (await masterOf(first))) second = candidate;
  }
  t.truthy(second, "found an entity on another master");
  const [k1, k2] = [layout.entityKeys(first), layout.entityKeys(second!)];
  const epochs = new Map<number, number>([[k1.shard, 3], [k2.shard, 5]]);
  store.useCluster(layout, { epochFor: (shard) => epochs.get(shard), refused: () => {} });
  const until = String((await redisNowMs(client)) + 60_000);
  await client.hset(k1.lease, "owner", "me", "epoch", "3", "until", until);
  await client.hset(k2.lease, "owner", "someone-else", "epoch", "6", "until", until);

  await store.values.put(first, Buffer.from("mine"));
  const err = await t.throwsAsync(store.values.put(second!, Buffer.from("not mine")));
  t.true(isKeystateError(err, "FENCED"), String(err));
  t.is(Buffer.from((await store.values.get(first))!).toString(), "mine");
  t.is(await store.values.get(second!), undefined);
});

/**
 * Destroys the socket of the store's Redis Cluster connection right after it writes a
 * request containing `marker`: the request reaches Redis and runs, its reply never comes
 * back (a network cut at the worst moment). Reaches into the store's private client: the
 * only way to cut exactly there.
 */
function cutAfterSending(store: RedisStore, marker: string): { cuts: number } {
  const client = (store as unknown as { redis: Cluster }).redis;
  const state = { cuts: 0 };
  for (const node of client.nodes("all")) {
    const stream = (node as unknown as { stream?: { write: (...args: unknown[]) => boolean; destroy(): void } }).stream;
    if (!stream) continue;
    const write = stream.write.bind(stream);
    stream.write = (chunk: unknown, ...rest: unknown[]) => {
      const result = write(chunk, ...rest);
      const text = Buffer.isBuffer(chunk) ? chunk.toString("latin1") : String(chunk);
      if (state.cuts === 0 && text.includes(marker)) {
        state.cuts++;
        stream.destroy();
      }
      return result;
    };
  }
  return state;
}

test("redis-cluster: a write whose connection drops after it was sent is not resent: STORAGE_UNAVAILABLE (outcome unknown), never a false SEQUENCE_CONFLICT or a second execution", async (t) => {
  const store = await storeFor(t);
  const client = await inspector(t);
  const id = newEntity("cut.Entity");
  const keys = store.layout.entityKeys(id);
  await store.journal.append(id, 0, eventsNumbered(1, 1));
  await store.values.put(id, Buffer.from("v1"));

  // An append: with a resend its second run finds its own event and says SEQUENCE_CONFLICT,
  // so an entity reloads and runs the same commands again (an increment applied twice).
  let cut = cutAfterSending(store, "event 2 cut");
  let err = await t.throwsAsync(store.journal.append(id, 1, eventsNumbered(2, 1, " cut")));
  t.is(cut.cuts, 1);
  t.true(isKeystateError(err, "STORAGE_UNAVAILABLE"), `append: ${String(err)}`);
  // The truth is in Redis: it ran once.
  t.deepEqual((await store.journal.recover(id)).events.map((e) => Buffer.from(e.payload).toString()), ["event 1", "event 2 cut"]);

  // A conditional value write: the same.
  await store.values.get(id);
  cut = cutAfterSending(store, "value two");
  err = await t.throwsAsync(store.values.write(id, Buffer.from("value two"), 1));
  t.is(cut.cuts, 1);
  t.true(isKeystateError(err, "STORAGE_UNAVAILABLE"), `value write: ${String(err)}`);
  t.is(await client.hget(keys.value, "n"), "2", "the write ran once");

  // An unconditional put runs once too (a resend would bump the version twice).
  await store.values.get(id); // a connection to its master again, so the put really goes out before the cut
  cut = cutAfterSending(store, "value three");
  err = await t.throwsAsync(store.values.put(id, Buffer.from("value three")));
  t.is(cut.cuts, 1);
  t.true(isKeystateError(err, "STORAGE_UNAVAILABLE"), `value put: ${String(err)}`);
  t.is(await client.hget(keys.value, "n"), "3", "the put ran once");

  // And the store works again at once.
  t.is(await store.values.write(id, Buffer.from("value four"), 3), 4);
  await store.journal.append(id, 2, eventsNumbered(3, 1));
  t.is((await store.journal.recover(id)).lastSeq, 3);
});
