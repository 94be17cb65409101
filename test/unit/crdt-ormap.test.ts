// ORMap semantics: nested values of every type, add-wins keys, removal that really resets a
// value, updates concurrent with removes, type conflicts, and delta behaviour.
import test from "ava";
import { asText, syncBoth, utf8 } from "../helpers/crdt-arbitraries.js";
import { createCrdt, replicaOfLineage, type GCounter, type GSet, type ORMap, type ORSet, type Vote } from "../../host/crdt/index.js";

const key = utf8;

function counterIn(map: ORMap, name: string): bigint | undefined {
  return (map.get(key(name)) as GCounter | undefined)?.value();
}

function setIn(map: ORMap, name: string): string[] | undefined {
  const set = map.get(key(name)) as ORSet | undefined;
  return set === undefined ? undefined : asText(set.value());
}

test("values of every type, nested maps included, read back through value(), get and keys", (t) => {
  const map = createCrdt("ORMap", "a");
  map.update(key("hits"), "GCounter", (c) => c.increment(3));
  map.update(key("tags"), "ORSet", (s) => s.add(key("red")));
  map.update(key("owner"), "LWWRegister", (r) => r.set(key("ann"), { kind: "custom", value: 1 }));
  map.update(key("done"), "Flag", (f) => f.enable());
  map.update(key("nested"), "ORMap", (inner) => inner.update(key("deep"), "PNCounter", (c) => c.decrement(2)));
  t.is(map.size, 5);
  t.true(map.has(key("tags")));
  t.deepEqual(asText(map.keys()), ["done", "hits", "nested", "owner", "tags"]);
  t.deepEqual(map.value(), [
    { key: key("done"), type: "Flag", value: true },
    { key: key("hits"), type: "GCounter", value: 3n },
    { key: key("nested"), type: "ORMap", value: [{ key: key("deep"), type: "PNCounter", value: -2n }] },
    { key: key("owner"), type: "LWWRegister", value: key("ann") },
    { key: key("tags"), type: "ORSet", value: [key("red")] },
  ]);
  t.is(map.get(key("absent")), undefined);
});

test("getOrCreate adds an empty value once; what it returns is a detached copy", (t) => {
  const map = createCrdt("ORMap", "a");
  const created = map.getOrCreate(key("n"), "GCounter");
  t.is(created.value(), 0n);
  t.true(map.has(key("n")));
  t.true(map.hasDelta(), "creating the key is a change to replicate");
  map.resetDelta();
  created.increment(5);
  t.is(counterIn(map, "n"), 0n, "changing the copy does not change the map");
  map.getOrCreate(key("n"), "GCounter");
  map.update(key("n"), "GCounter", () => {});
  t.false(map.hasDelta(), "getting an existing key, or an update that changes nothing, is no change");
});

test("a removed key starts afresh when written again, even after merging a stale replica", (t) => {
  const a = createCrdt("ORMap", "a");
  const stale = createCrdt("ORMap", "stale");
  a.update(key("n"), "GCounter", (c) => c.increment(5));
  stale.merge(a);
  a.remove(key("n"));
  t.false(a.has(key("n")));
  a.update(key("n"), "GCounter", (c) => c.increment(1));
  a.merge(stale);
  t.is(counterIn(a, "n"), 1n, "the old 5 does not come back");
  stale.merge(a);
  t.is(counterIn(stale, "n"), 1n);
});

test("an update concurrent with a remove keeps the key, with the updater's contributions", (t) => {
  const a = createCrdt("ORMap", "a");
  const b = createCrdt("ORMap", "b");
  a.update(key("n"), "GCounter", (c) => c.increment(2));
  b.update(key("n"), "GCounter", (c) => c.increment(3));
  syncBoth(a, b);
  t.is(counterIn(a, "n"), 5n);
  a.remove(key("n"));
  b.update(key("n"), "GCounter", (c) => c.increment(1)); // concurrent with a's remove
  syncBoth(a, b);
  t.is(counterIn(a, "n"), 4n, "add-wins: b's 3+1 survive; a's 2 went with the remove");
  t.is(counterIn(b, "n"), 4n);
});

test("a remove that saw every update removes the key everywhere; clear spares unseen keys", (t) => {
  const a = createCrdt("ORMap", "a");
  const b = createCrdt("ORMap", "b");
  a.update(key("x"), "Flag", (f) => f.enable());
  b.update(key("x"), "Flag", () => {});
  syncBoth(a, b);
  b.remove(key("x"));
  syncBoth(a, b);
  t.false(a.has(key("x")));
  a.update(key("y"), "GSet", (s) => s.add(key("1")));
  syncBoth(a, b);
  a.update(key("z"), "GSet", (s) => s.add(key("2"))); // not yet seen by b
  b.clear();
  syncBoth(a, b);
  t.deepEqual(asText(a.keys()), ["z"]);
  t.deepEqual(asText(b.keys()), ["z"]);
});

test("a value written again after a remove cannot be killed by what a concurrent writer saw of the old one", (t) => {
  // The scenario writer lineages exist for: without them a's new "y" would reuse the dot of its
  // removed "x", and c's concurrent removal of "x" would wrongly remove "y" as well.
  const a = createCrdt("ORMap", "a");
  const b = createCrdt("ORMap", "b");
  const c = createCrdt("ORMap", "c");
  a.update(key("k"), "ORSet", (s) => s.add(key("x")));
  b.merge(a);
  c.merge(a);
  c.update(key("k"), "ORSet", (s) => s.remove(key("x"))); // c saw x; not yet seen by anyone
  b.remove(key("k"));
  a.merge(b);
  t.false(a.has(key("k")));
  a.update(key("k"), "ORSet", (s) => s.add(key("y")));
  a.merge(c);
  b.merge(a);
  b.merge(c);
  t.deepEqual(setIn(a, "k"), ["y"]);
  t.deepEqual(setIn(b, "k"), ["y"]);
});

test("keys created concurrently with different types show the same type everywhere", (t) => {
  const a = createCrdt("ORMap", "a");
  const b = createCrdt("ORMap", "b");
  a.update(key("k"), "GCounter", (c) => c.increment(1));
  b.update(key("k"), "ORSet", (s) => s.add(key("m")));
  syncBoth(a, b);
  const shown = a.get(key("k"))!.type;
  t.is(b.get(key("k"))!.type, shown);
  t.is(shown, "ORSet", "the version with the greatest dot (replica b > a) decides");
  t.deepEqual(setIn(a, "k"), ["m"]);
  t.throws(() => a.update(key("k"), "GCounter", (c) => c.increment(1)), { message: /holds a ORSet, not a GCounter/ });
  a.update(key("k"), "ORSet", (s) => s.add(key("n")));
  syncBoth(a, b);
  t.deepEqual(setIn(b, "k"), ["m", "n"]);
});

test("nested maps: removing an inner key works like at the top level", (t) => {
  const a = createCrdt("ORMap", "a");
  const b = createCrdt("ORMap", "b");
  a.update(key("outer"), "ORMap", (inner) => {
    inner.update(key("i1"), "GCounter", (c) => c.increment(1));
    inner.update(key("i2"), "GCounter", (c) => c.increment(2));
  });
  syncBoth(a, b);
  b.update(key("outer"), "ORMap", (inner) => inner.remove(key("i1")));
  a.update(key("outer"), "ORMap", (inner) => inner.update(key("i2"), "GCounter", (c) => c.increment(10)));
  syncBoth(a, b);
  const inner = a.get(key("outer")) as ORMap;
  t.deepEqual(asText(inner.keys()), ["i2"]);
  t.is(counterIn(inner, "i2"), 12n);
  t.deepEqual(b.value(), a.value());
});

test("nested votes count each replica once, and selfVote is the reader's own", (t) => {
  const a = createCrdt("ORMap", "a");
  const b = createCrdt("ORMap", "b");
  a.update(key("poll"), "Vote", (v) => v.vote(true));
  b.update(key("poll"), "Vote", (v) => v.vote(false));
  syncBoth(a, b);
  a.update(key("poll"), "Vote", (v) => v.vote(false));
  a.update(key("poll"), "Vote", (v) => v.vote(true));
  syncBoth(a, b);
  t.like(a.value()[0]!.value, { selfVote: true, votesFor: 1, total: 2 });
  t.like(b.value()[0]!.value, { selfVote: false, votesFor: 1, total: 2 });
});

test("nested votes of a replica that is gone are retired through update, on every replica", (t) => {
  const a = createCrdt("ORMap", "node-a~1");
  const b = createCrdt("ORMap", "node-b~1");
  a.update(key("poll"), "Vote", (v) => v.vote(true));
  b.update(key("poll"), "Vote", (v) => v.vote(true));
  syncBoth(a, b);
  const voters = (a.get(key("poll")) as Vote).voters();
  t.deepEqual(voters.map(replicaOfLineage).sort(), ["node-a~1", "node-b~1"], "voters inside a map are lineage ids of their replica");
  const ofB = voters.filter((voter) => replicaOfLineage(voter) === "node-b~1");
  a.update(key("poll"), "Vote", (v) => void v.retire(ofB));
  syncBoth(a, b);
  t.like(a.value()[0]!.value, { votesFor: 1, total: 1 });
  t.like(b.value()[0]!.value, { selfVote: false, votesFor: 1, total: 1 }, "b sees its own vote retired too");
});

test("a remove delta delivered before the update it removed still removes it", (t) => {
  const a = createCrdt("ORMap", "a");
  a.update(key("k"), "LWWRegister", (r) => r.set(key("v"), { kind: "custom", value: 1 }));
  const update = a.takeDelta()!;
  a.remove(key("k"));
  const removal = a.takeDelta()!;
  const late = createCrdt("ORMap", "late");
  late.applyDelta(removal);
  late.applyDelta(update);
  late.applyDelta(removal);
  t.is(late.size, 0);
});

test("each update's delta carries the writer's contribution, not the whole value", (t) => {
  const a = createCrdt("ORMap", "a");
  const b = createCrdt("ORMap", "b");
  b.update(key("s"), "GSet", (s) => {
    for (let i = 0; i < 50; i++) s.add(Uint8Array.of(i));
  });
  a.merge(b);
  a.update(key("s"), "GSet", (s) => s.add(key("mine")));
  const delta = a.takeDelta()!;
  const viewer = createCrdt("ORMap", "viewer");
  viewer.applyDelta(delta);
  t.deepEqual(asText((viewer.get(key("s")) as GSet).value()), ["mine"]);
});
