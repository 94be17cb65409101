// What each type's value means, on small hand-made scenarios: counters, add-wins sets,
// last-writer-wins with its clocks and tie-break, flags, votes, and how deltas behave.
import test from "ava";
import { asText, syncBoth, utf8 } from "../helpers/crdt-arbitraries.js";
import { createCrdt, LWWRegister, type GCounter, type Vote } from "../../host/crdt/index.js";

const bytes = utf8;

test("GCounter: the value is the sum over replicas, and merging again never double-counts", (t) => {
  const [a, b, c] = ["a", "b", "c"].map((id) => createCrdt("GCounter", id)) as [GCounter, GCounter, GCounter];
  a.increment(2);
  a.increment(3);
  b.increment(10n);
  c.increment(0);
  syncBoth(a, b);
  syncBoth(a, b);
  c.merge(a);
  c.merge(b);
  t.is(a.value(), 15n);
  t.is(c.value(), 15n);
  t.false(c.hasDelta(), "increment(0) and merges make no local delta");
});

test("PNCounter: the value is increments minus decrements across replicas, and may go negative", (t) => {
  const a = createCrdt("PNCounter", "a");
  const b = createCrdt("PNCounter", "b");
  a.increment(10);
  b.decrement(3);
  a.decrement(4);
  t.is(a.value(), 6n);
  syncBoth(a, b);
  t.is(a.value(), 3n);
  t.is(b.value(), 3n);
  b.decrement(5);
  a.merge(b);
  t.is(a.value(), -2n);
});

test("GSet: elements are compared by their bytes, not by object identity", (t) => {
  const set = createCrdt("GSet", "a");
  set.add(Uint8Array.of(1, 2));
  set.add(Uint8Array.of(1, 2));
  set.add(Uint8Array.of(1));
  t.is(set.size, 2);
  t.true(set.has(new Uint8Array([1, 2])));
  t.deepEqual(set.value(), [Uint8Array.of(1), Uint8Array.of(1, 2)]);
});

test("stored elements are private copies: reusing the caller's buffer changes nothing", (t) => {
  const set = createCrdt("ORSet", "a");
  const buffer = Uint8Array.of(7);
  set.add(buffer);
  buffer[0] = 8;
  t.deepEqual(set.value(), [Uint8Array.of(7)]);
  set.value()[0]![0] = 9;
  t.deepEqual(set.value(), [Uint8Array.of(7)]);
});

test("ORSet: an add concurrent with a remove wins", (t) => {
  const a = createCrdt("ORSet", "a");
  const b = createCrdt("ORSet", "b");
  a.add(bytes("x"));
  syncBoth(a, b);
  a.remove(bytes("x")); // a removes the x it saw ...
  b.add(bytes("x")); // ... while b adds x again, concurrently
  syncBoth(a, b);
  t.deepEqual(asText(a.value()), ["x"]);
  t.deepEqual(asText(b.value()), ["x"]);
});

test("ORSet: a remove that saw every add removes the element everywhere", (t) => {
  const a = createCrdt("ORSet", "a");
  const b = createCrdt("ORSet", "b");
  a.add(bytes("x"));
  b.add(bytes("x"));
  b.add(bytes("y"));
  syncBoth(a, b);
  b.remove(bytes("x"));
  syncBoth(a, b);
  t.deepEqual(asText(a.value()), ["y"]);
  a.clear();
  a.add(bytes("z"));
  syncBoth(a, b);
  t.deepEqual(asText(b.value()), ["z"]);
});

test("ORSet: clear removes only what this replica had seen", (t) => {
  const a = createCrdt("ORSet", "a");
  const b = createCrdt("ORSet", "b");
  a.add(bytes("x"));
  syncBoth(a, b);
  b.add(bytes("y")); // not yet seen by a
  a.clear();
  syncBoth(a, b);
  t.deepEqual(asText(a.value()), ["y"]);
});

test("ORSet: a remove delta that arrives before the add it removed still wins over that add", (t) => {
  const a = createCrdt("ORSet", "a");
  a.add(bytes("x"));
  const addDelta = a.takeDelta()!;
  a.remove(bytes("x"));
  const removeDelta = a.takeDelta()!;
  const late = createCrdt("ORSet", "late");
  late.applyDelta(removeDelta);
  late.applyDelta(addDelta);
  t.deepEqual(late.value(), []);
});

test("LWWRegister: a register never written has no value", (t) => {
  t.is(createCrdt("LWWRegister", "a").value(), undefined);
});

test("LWWRegister: equal clocks are won by the greater replica id", (t) => {
  const a = createCrdt("LWWRegister", "a");
  const b = createCrdt("LWWRegister", "b");
  b.set(bytes("from b"), { kind: "custom", value: 7 });
  a.set(bytes("from a"), { kind: "custom", value: 7 });
  syncBoth(a, b);
  t.deepEqual(asText([a.value()!, b.value()!]), ["from b", "from b"]);
  t.like(a.currentWrite(), { clock: 7, writer: "b" });
});

test("LWWRegister: the greater clock wins whatever the replica ids", (t) => {
  const a = createCrdt("LWWRegister", "a");
  const b = createCrdt("LWWRegister", "b");
  a.set(bytes("from a"), { kind: "custom", value: 8 });
  b.set(bytes("from b"), { kind: "custom", value: 7 });
  syncBoth(a, b);
  t.deepEqual(asText([b.value()!]), ["from a"]);
});

test("LWWRegister: with the default clock a later local write wins even if the wall clock went back", (t) => {
  let now = 1_000;
  const register = new LWWRegister("a", undefined, { now: () => now });
  t.true(register.set(bytes("first")));
  now = 500;
  t.true(register.set(bytes("second")));
  t.deepEqual(asText([register.value()!]), ["second"]);
  t.is(register.currentWrite()?.clock, 1_001);
});

test("LWWRegister: with the reverse clock the earliest write wins", (t) => {
  let now = 1_000;
  const early = new LWWRegister("a", undefined, { now: () => now });
  now = 2_000;
  const late = new LWWRegister("b", undefined, { now: () => now });
  t.true(late.set(bytes("late"), { kind: "reverse" }));
  now = 1_000;
  t.true(early.set(bytes("early"), { kind: "reverse" }));
  syncBoth(early, late);
  t.deepEqual(asText([early.value()!, late.value()!]), ["early", "early"]);
  t.false(early.set(bytes("again"), { kind: "reverse" }), "a second write loses to the first");
  t.deepEqual(asText([early.value()!]), ["early"]);
});

test("LWWRegister: custom clocks are taken as given, auto-increment bumps past the current write", (t) => {
  const register = createCrdt("LWWRegister", "a");
  t.true(register.set(bytes("v5"), { kind: "custom", value: 5 }));
  t.false(register.set(bytes("v3"), { kind: "custom", value: 3 }), "an older custom clock loses");
  t.deepEqual(asText([register.value()!]), ["v5"]);
  t.is(register.delta()!.data.write?.clock, 5, "the losing write is not in the delta");
  t.true(register.set(bytes("bumped"), { kind: "customAutoIncrement", value: 2 }));
  t.is(register.currentWrite()?.clock, 6);
  t.true(register.set(bytes("v10"), { kind: "customAutoIncrement", value: 10 }));
  t.is(register.currentWrite()?.clock, 10);
});

test("Flag: once enabled anywhere it is enabled everywhere", (t) => {
  const a = createCrdt("Flag", "a");
  const b = createCrdt("Flag", "b");
  t.false(a.value());
  b.enable();
  a.merge(b);
  b.merge(createCrdt("Flag", "c"));
  t.true(a.value());
  t.true(b.value());
});

test("Vote: votesFor, total, atLeastOne, majority and all", (t) => {
  const [a, b, c] = ["a", "b", "c"].map((id) => createCrdt("Vote", id)) as [Vote, Vote, Vote];
  t.deepEqual(a.value(), { selfVote: false, votesFor: 0, total: 0, atLeastOne: false, majority: false, all: false });
  a.vote(true);
  b.vote(false);
  syncBoth(a, b);
  t.deepEqual(a.value(), { selfVote: true, votesFor: 1, total: 2, atLeastOne: true, majority: false, all: false }, "1 of 2 is no majority");
  c.vote(true);
  syncBoth(a, c);
  syncBoth(b, c);
  t.deepEqual(b.value(), { selfVote: false, votesFor: 2, total: 3, atLeastOne: true, majority: true, all: false });
  b.vote(true);
  syncBoth(a, b);
  t.deepEqual(a.value(), { selfVote: true, votesFor: 3, total: 3, atLeastOne: true, majority: true, all: true });
});

test("Vote: a replica's newer vote replaces its older one everywhere, in any delivery order", (t) => {
  const a = createCrdt("Vote", "a");
  a.vote(true);
  const first = a.takeDelta()!;
  a.vote(false);
  const second = a.takeDelta()!;
  const observer = createCrdt("Vote", "o");
  observer.applyDelta(second);
  observer.applyDelta(first);
  t.like(observer.value(), { votesFor: 0, total: 1 });
});

test("Vote: a retired replica stops counting everywhere, whatever it voted before, and may not vote again", (t) => {
  const [a, b, c] = ["a", "b", "c"].map((id) => createCrdt("Vote", id)) as [Vote, Vote, Vote];
  a.vote(true);
  b.vote(true);
  c.vote(false);
  c.resetDelta();
  const aVote = a.takeDelta()!;
  const bVote = b.takeDelta()!;
  c.applyDelta(aVote);
  c.applyDelta(bVote);
  t.like(c.value(), { votesFor: 2, total: 3 });
  t.is(c.retire(["b", "nobody"]), 1, "only replicas that voted are retired");
  const retirement = c.takeDelta()!;
  t.like(c.value(), { votesFor: 1, total: 2 });
  t.deepEqual(c.voters().sort(), ["a", "c"]);
  // The retirement wins over the vote in either order, delivered twice.
  const observer = createCrdt("Vote", "o");
  observer.applyDelta(retirement);
  observer.applyDelta(bVote);
  observer.applyDelta(retirement);
  t.like(observer.value(), { votesFor: 0, total: 0 });
  b.applyDelta(retirement);
  t.like(b.value(), { selfVote: false, votesFor: 0, total: 0 });
  t.throws(() => b.vote(false), { message: /retired/ });
  t.is(c.retire(["b"]), 0, "retiring twice changes nothing");
});

test("deltas: accumulate until reset, are copies, and remote changes are not re-sent", (t) => {
  const a = createCrdt("ORSet", "a");
  t.is(a.delta(), undefined);
  a.add(bytes("x"));
  const early = a.delta()!;
  a.add(bytes("y"));
  const both = createCrdt("ORSet", "fresh");
  both.applyDelta(a.delta()!);
  t.deepEqual(asText(both.value()), ["x", "y"], "delta() holds every change since the last reset");
  const onlyX = createCrdt("ORSet", "fresh");
  onlyX.applyDelta(early);
  t.deepEqual(asText(onlyX.value()), ["x"], "an earlier delta() does not change afterwards");

  a.resetDelta();
  t.false(a.hasDelta());
  const b = createCrdt("ORSet", "b");
  b.add(bytes("z"));
  a.applyDelta(b.delta()!);
  a.merge(b);
  t.is(a.delta(), undefined, "applyDelta and merge do not make local deltas");
  a.remove(bytes("z"));
  const taken = a.takeDelta();
  t.truthy(taken);
  t.is(a.takeDelta(), undefined, "takeDelta hands a change over once");
});
