// The entity manager's memory budget over its record tables: charges, eviction of the idle
// record used least recently among a sample (exact while the tables hold few records),
// busy records kept, and the walk the idle sweep goes round the tables with.
import test from "ava";
import { RecordIndex } from "../../host/entities/record-index.js";
import { EXACT_UP_TO, RELEASED, RingCursor, SAMPLE, SampledLruBudget } from "../../host/entities/sampled-lru-budget.js";

class Rec {
  lastUsed = RELEASED;
  nextInBucket: Rec | undefined = undefined;
  idle = true;
  constructor(
    readonly key: string,
    public charge = 100,
  ) {}
}

/** A budget over `tables` fresh tables, with a limit of `limit` bytes. */
function setUp(limit: number, tables = 1) {
  const budget = new SampledLruBudget<Rec>(limit);
  const indexes = Array.from({ length: tables }, () => new RecordIndex<Rec>());
  for (const index of indexes) budget.addTable(index);
  const add = (index: RecordIndex<Rec>, key: string, usedAt: number) => {
    const rec = new Rec(key);
    index.add(rec);
    budget.admit(rec, usedAt);
    return rec;
  };
  const evictInto = (index: (rec: Rec) => RecordIndex<Rec>, out: string[]) => (rec: Rec) => {
    index(rec).delete(rec.key);
    out.push(rec.key);
  };
  return { budget, indexes, add, evictInto };
}

test("admit charges, recharge follows changes while held, release gives it back once", (t) => {
  const { budget, indexes, add } = setUp(1_000_000);
  const a = add(indexes[0]!, "a", 5);
  t.is(budget.usedBytes, 100);
  t.true(budget.holds(a));
  budget.recharge(a, 40);
  t.is(budget.usedBytes, 140);
  a.charge = 140;
  budget.release(a);
  t.is(budget.usedBytes, 0);
  t.false(budget.holds(a));
  budget.release(a);
  budget.recharge(a, 40);
  t.is(budget.usedBytes, 0, "a released record is charged nothing more");
});

test("with few records, eviction is exact least-recently-used across tables, only while over budget", (t) => {
  const { budget, indexes, add, evictInto } = setUp(3 * 100, 2);
  const table = new Map<string, RecordIndex<Rec>>();
  // Use times out of key order, spread over two tables.
  const uses: [string, number][] = [["a", 50], ["b", 10], ["c", 40], ["d", 20], ["e", 30]];
  uses.forEach(([key, at], i) => {
    const index = indexes[i % 2]!;
    table.set(key, index);
    add(index, key, at);
  });
  const evicted: string[] = [];
  t.is(budget.evict(evictInto((rec) => table.get(rec.key)!, evicted)), 2);
  t.deepEqual(evicted, ["b", "d"]);
  t.is(budget.usedBytes, 300);
  t.is(indexes[0]!.size + indexes[1]!.size, 3);
});

test("busy records stay; eviction stops when nothing idle is left rather than looping", (t) => {
  const { budget, indexes, add, evictInto } = setUp(100);
  const recs = ["a", "b", "c"].map((key, i) => add(indexes[0]!, key, i));
  recs[0]!.idle = false;
  recs[1]!.idle = false;
  const evicted: string[] = [];
  t.is(budget.evict(evictInto(() => indexes[0]!, evicted)), 1);
  t.deepEqual(evicted, ["c"], "the only idle one, though it is the most recently used");
  t.is(budget.usedBytes, 200, "still over: the busy ones' commands are running");
  t.is(budget.evict(evictInto(() => indexes[0]!, evicted)), 0);
});

test("with many more records than the sample, eviction takes old records far more often than recent ones", (t) => {
  const n = 20_000;
  // Room for nine tenths of them; used in key order: the first half long ago, the second lately.
  const { budget, indexes, add, evictInto } = setUp(n * 90);
  for (let i = 0; i < n; i++) add(indexes[0]!, `k${i}`, i);
  const evicted: string[] = [];
  t.is(budget.evict(evictInto(() => indexes[0]!, evicted)), n / 10);
  const old = evicted.filter((key) => Number(key.slice(1)) < n / 2).length;
  // The oldest of SAMPLE records is from the older half unless all SAMPLE are recent: with
  // 44-50% of them old, (0.56)^8 < 1% of evictions miss. An order-blind choice would be ~50%.
  t.true(old / evicted.length > 0.97, `${old} of ${evicted.length} evicted were from the older half (sample ${SAMPLE})`);
});

test("up to EXACT_UP_TO records, every eviction takes the oldest idle one", (t) => {
  const { budget, indexes, add, evictInto } = setUp((EXACT_UP_TO - 10) * 100);
  // Use times shuffled against key (and so bucket) order.
  const times = Array.from({ length: EXACT_UP_TO }, (_, i) => (i * 37) % EXACT_UP_TO);
  times.forEach((at, i) => add(indexes[0]!, `x${i}`, at));
  const evicted: string[] = [];
  t.is(budget.evict(evictInto(() => indexes[0]!, evicted)), 10);
  const evictedTimes = evicted.map((key) => times[Number(key.slice(1))]);
  t.deepEqual(evictedTimes, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
});

test("walk visits every record once per round from where it stopped, and survives deletion of the visited record", (t) => {
  const { budget, indexes, add } = setUp(1_000_000, 3);
  const all = new Set<string>();
  for (let i = 0; i < 300; i++) {
    add(indexes[i % 3]!, `r${i}`, i);
    all.add(`r${i}`);
  }
  const cursor = new RingCursor();
  const seen: string[] = [];
  let visited = 0;
  while (visited < 300) visited += budget.walk(cursor, 50, (rec) => seen.push(rec.key));
  t.is(new Set(seen.slice(0, 300)).size, 300, "no record twice in one round");
  t.deepEqual([...new Set(seen)].sort(), [...all].sort());
  // Deleting each record as it is visited: one walk of everything empties the tables.
  budget.walk(new RingCursor(), budget.size, (rec) => {
    for (const index of indexes) index.delete(rec.key);
  });
  t.is(budget.size, 0);
  t.is(budget.walk(cursor, 10, () => t.fail("nothing to visit")), 0);
});
