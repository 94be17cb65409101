// The entity memory budget: charges, least-recently-used order, eviction of idle
// entries only, and compaction of state views on large buffers.
import test from "ava";
import { ENTITY_OVERHEAD_BYTES, MemoryBudget, type Charged } from "../../host/entities/memory-budget.js";

interface Entry extends Charged {
  readonly name: string;
  mailbox: { idle: boolean };
  entity: { residentBytes: number };
}

function entry(name: string, residentBytes = 0): Entry {
  return { name, charged: 0, older: undefined, newer: undefined, mailbox: { idle: true }, entity: { residentBytes } };
}

const names = (budget: MemoryBudget<Entry>) => [...budget.oldestFirst()].map((e) => e.name);

test("touch keeps least-recently-used order; release unlinks from anywhere", (t) => {
  const budget = new MemoryBudget<Entry>(1_000_000);
  const [a, b, c, d] = ["a", "b", "c", "d"].map((n) => entry(n));
  for (const e of [a, b, c, d]) budget.touch(e!);
  t.deepEqual(names(budget), ["a", "b", "c", "d"]);
  budget.touch(b!);
  budget.touch(a!);
  t.deepEqual(names(budget), ["c", "d", "b", "a"]);
  budget.touch(a!); // already newest: unchanged
  t.deepEqual(names(budget), ["c", "d", "b", "a"]);
  budget.release(d!);
  budget.release(c!); // the oldest
  budget.release(a!); // the newest
  t.deepEqual(names(budget), ["b"]);
  budget.release(b!);
  t.deepEqual(names(budget), []);
  budget.touch(c!);
  t.deepEqual(names(budget), ["c"]);
});

test("measure charges overhead + id + state and follows changes; release gives it back", (t) => {
  const budget = new MemoryBudget<Entry>(1_000_000);
  const a = entry("a", 10);
  budget.touch(a);
  budget.measure(a, 20);
  t.is(budget.usedBytes, ENTITY_OVERHEAD_BYTES + 30);
  a.entity.residentBytes = 100;
  budget.measure(a, 20);
  t.is(budget.usedBytes, ENTITY_OVERHEAD_BYTES + 120, "re-measuring replaces the old charge");
  budget.release(a);
  t.is(budget.usedBytes, 0);
  t.is(a.charged, 0);
});

test("evict removes idle entries, least recently used first, only while over budget; busy ones stay", (t) => {
  const each = ENTITY_OVERHEAD_BYTES;
  const budget = new MemoryBudget<Entry>(3 * each);
  const all = ["a", "b", "c", "d", "e"].map((n) => entry(n));
  for (const e of all) {
    budget.touch(e);
    budget.measure(e, 0);
  }
  all[0]!.mailbox.idle = false; // a is busy: its command is running
  const evicted: string[] = [];
  t.is(budget.evict((e) => evicted.push(e.name)), 2);
  t.deepEqual(evicted, ["b", "c"]);
  t.deepEqual(names(budget), ["a", "d", "e"]);
  t.is(budget.usedBytes, 3 * each);
  t.is(budget.evict(() => t.fail("within budget: nothing leaves")), 0);
});
