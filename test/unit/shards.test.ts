// The shard of an entity: FNV-1a over persistenceId + "\0" + key as UTF-8, mod the count.
// Every node and the Redis key layout compute it alike, so it must never change.
import test from "ava";
import fc from "fast-check";
import { entityHash, shardOf } from "../../host/journal/shards.js";

/** The reference: FNV-1a over the UTF-8 bytes, byte by byte. */
function reference(pid: string, key: string): number {
  let h = 0x811c9dc5;
  for (const byte of Buffer.from(`${pid}\u0000${key}`, "utf8")) h = Math.imul(h ^ byte, 0x01000193);
  return h >>> 0;
}

test("equals FNV-1a of the UTF-8 bytes, for ASCII and any Unicode", (t) => {
  t.is(entityHash("counter", "c1"), reference("counter", "c1"));
  t.is(entityHash("shopping-cart", "ann"), reference("shopping-cart", "ann"));
  fc.assert(fc.property(fc.string(), fc.string({ unit: "grapheme" }), (pid, key) => entityHash(pid, key) === reference(pid, key)));
});

test("stable across releases: known values", (t) => {
  // Changing these moves every entity of every cluster to another shard (a data migration).
  t.is(entityHash("", ""), 0x050c5d1f);
  t.is(shardOf("counter", "c1", 256), reference("counter", "c1") % 256);
});

test("10,000 keys spread over 256 shards without a hot shard", (t) => {
  const per = new Array<number>(256).fill(0);
  for (let i = 0; i < 10_000; i++) per[shardOf("counter", `key-${i}`, 256)]!++;
  // Expected 39 each; a binomial's spread at 10k keys stays well inside 15..70.
  t.true(Math.min(...per) >= 15 && Math.max(...per) <= 70, `min ${Math.min(...per)} max ${Math.max(...per)}`);
});
