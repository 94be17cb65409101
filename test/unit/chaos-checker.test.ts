// The chaos checker's rules on synthetic workload records and fake readers (no cluster needed).
import test from "ava";
import { checkEntities, formatReport, violationCount, type EntityReaders } from "../helpers/chaos-checker.js";
import { entityKeys, percentile, recoveryTimes, type CartRecord, type OpEvent, type WorkloadRecord } from "../helpers/chaos-workload.js";

function record(parts: Partial<WorkloadRecord>): WorkloadRecord {
  return { startedAt: 0, endedAt: 1000, counters: {}, carts: {}, ops: [], attempts: { total: 0, ok: 0, byStatus: {} }, ...parts };
}

function cart(parts: Partial<CartRecord>): CartRecord {
  return { acked: [], inDoubt: [], failed: [], retriedAfterDoubt: [], ...parts };
}

type Items = Array<{ productId: string; quantity: number }>;

function readers(counters: Record<string, number>, carts: Record<string, Items>, journals?: Record<string, number[]>): EntityReaders {
  return {
    counterValue: async (id) => counters[id] ?? 0,
    cartItems: async (id) => carts[id] ?? [],
    ...(journals && { readJournal: async (pid: string, key: string) => (pid === "shopping-cart" ? (journals[key] ?? []) : []).map((seq) => ({ seq })) }),
  };
}

const line = (productId: string, quantity = 1) => ({ productId, quantity });

test("a counter between acked and acked + in doubt passes; above or below is a violation", async (t) => {
  const counters = { a: { acked: 5, inDoubt: 2, failed: 1 }, b: { acked: 5, inDoubt: 2, failed: 0 }, c: { acked: 5, inDoubt: 2, failed: 0 }, d: { acked: 3, inDoubt: 0, failed: 0 } };
  const report = await checkEntities(record({ counters }), readers({ a: 5, b: 7, c: 8, d: 2 }, {}));
  t.is(report.counters.checked, 4);
  t.deepEqual([report.counters.acked, report.counters.inDoubt], [18, 6]);
  t.is(report.counters.violations.length, 2);
  t.regex(report.counters.violations.find((v) => v.includes("counter c"))!, /value 8 outside \[acked 5, acked \+ in doubt 7\]/);
  t.regex(report.counters.violations.find((v) => v.includes("counter d"))!, /value 2 outside/);
  t.is(violationCount(report), 2);
});

test("a cart with every acked item once and some in-doubt items passes", async (t) => {
  const carts = { u: cart({ acked: ["p1", "p2"], inDoubt: ["p3", "p4"], failed: ["p5"] }) };
  const report = await checkEntities(record({ carts }), readers({}, { u: [line("p1"), line("p3"), line("p2")] }, { u: [1, 2, 3] }));
  t.is(report.carts.checked, 1);
  t.deepEqual(report.carts.violations, []);
  t.deepEqual(report.seqGaps, []);
  t.is(report.journalsChecked, 1);
  t.deepEqual([report.carts.acked, report.carts.inDoubt], [2, 2]);
  t.regex(formatReport(report), /RESULT: no violations/);
});

test("a missing acked item is a violation", async (t) => {
  const carts = { u: cart({ acked: ["p1", "p2"] }) };
  const report = await checkEntities(record({ carts }), readers({}, { u: [line("p1")] }));
  t.is(report.carts.violations.length, 1);
  t.regex(report.carts.violations[0]!, /acknowledged product p2 is missing/);
});

test("a duplicated item is a violation: acked twice, more often than its attempts, or two lines of one product", async (t) => {
  const carts = {
    u: cart({ acked: ["p1"] }),
    v: cart({ acked: ["q1"], retriedAfterDoubt: ["q1"] }),
    v3: cart({ acked: ["q3"], retriedAfterDoubt: ["q3"] }),
    w: cart({ inDoubt: ["r1"] }),
    x: cart({ acked: ["s1"] }),
  };
  const items = { u: [line("p1", 2)], v: [line("q1", 2)], v3: [line("q3", 3)], w: [line("r1", 3)], x: [line("s1"), line("s1")] };
  const report = await checkEntities(record({ carts }), readers({}, items));
  const about = (id: string) => report.carts.violations.filter((v) => v.startsWith(`cart ${id}:`));
  t.regex(about("u")[0]!, /acknowledged product p1 has quantity 2, not 1$/);
  // The client retried an in-doubt add: both attempts may land (AddItem is not idempotent); counted, not a violation.
  t.deepEqual(about("v"), []);
  t.is(report.carts.duplicatesAfterInDoubtRetry, 1);
  t.regex(about("v3")[0]!, /quantity 3, not 1 \(nor 2 after its in-doubt first attempt\)/);
  t.regex(about("w")[0]!, /in-doubt product r1 has quantity 3, more than its attempts/);
  t.true(about("x").some((v) => /two lines/.test(v)));
  t.true(about("x").some((v) => /quantity 2, not 1/.test(v)));
});

test("an item never sent, or one whose every attempt was refused, is a violation", async (t) => {
  const carts = { u: cart({ acked: ["p1"], failed: ["p2"] }) };
  const report = await checkEntities(record({ carts }), readers({}, { u: [line("p1"), line("p2"), line("zz")] }));
  t.is(report.carts.violations.length, 2);
  t.true(report.carts.violations.some((v) => /p2 is present \(quantity 1\) though every attempt to add it was refused/.test(v)));
  t.true(report.carts.violations.some((v) => /zz was never sent/.test(v)));
});

test("journal seqs must be 1..n without a gap, n the number of items added", async (t) => {
  const carts = { gap: cart({ acked: ["a", "b", "c"] }), short: cart({ acked: ["a", "b"] }), ok: cart({ acked: ["a"] }) };
  const items = { gap: [line("a"), line("b"), line("c")], short: [line("a"), line("b")], ok: [line("a")] };
  const report = await checkEntities(record({ carts }), readers({}, items, { gap: [1, 2, 4], short: [1], ok: [1] }));
  t.deepEqual(report.carts.violations, []);
  t.is(report.journalsChecked, 3);
  t.is(report.seqGaps.length, 2);
  t.regex(report.seqGaps.find((v) => v.startsWith("cart gap"))!, /seqs 1,2,4 are not 1\.\.3 \(entry 3 has seq 4\)/);
  t.regex(report.seqGaps.find((v) => v.startsWith("cart short"))!, /journal has 1 events, the cart shows 2 items added/);
});

test("an entity that cannot be read is a violation, not a pass", async (t) => {
  const failing: EntityReaders = { counterValue: async () => Promise.reject(new Error("UNAVAILABLE")), cartItems: async () => [] };
  const report = await checkEntities(record({ counters: { a: { acked: 1, inDoubt: 0, failed: 0 } } }), failing);
  t.is(report.counters.checked, 0);
  t.regex(report.counters.violations[0]!, /counter a: could not be read: UNAVAILABLE/);
});

test("nearest-rank percentiles", (t) => {
  const hundred = Array.from({ length: 100 }, (_, i) => i + 1);
  t.is(percentile(hundred, 50), 50);
  t.is(percentile(hundred, 99), 99);
  t.is(percentile(hundred, 100), 100);
  t.is(percentile([7], 50), 7);
  t.is(percentile([7], 99), 7);
  t.is(percentile([1, 2, 3], 50), 2);
  t.is(percentile([1, 2, 3, 4], 50), 2);
  t.is(percentile([1, 2, 3, 4], 99), 4);
  t.is(percentile([], 50), null);
});

test("recovery: per kill, per key that failed after it, kill to that key's first success after the failure", (t) => {
  const op = (key: string, start: number, end: number, ok: boolean): OpEvent => ({ key, start, end, ok });
  const ops = [
    op("a", 90, 110, true), // before the kill at 100 in flight: not a failure, not a recovery
    op("a", 100, 150, false),
    op("a", 120, 400, true), // started before the failure ended: not proof of recovery
    op("a", 160, 300, true), // first success started after the failure: 300 - 100 = 200
    op("b", 105, 130, false),
    op("b", 140, 600, true), // 600 - 100 = 500
    op("c", 50, 80, false), // before any kill: ignored
    op("c", 110, 120, true), // c never failed after the kill: no sample
    op("d", 1000, 1010, false), // after the second kill (at 1000)
    op("d", 1020, 1050, true), // 1050 - 1000 = 50
    op("e", 1100, 1200, false), // never recovers
  ];
  const result = recoveryTimes(ops, [{ at: 1000 }, { at: 100 }]);
  t.deepEqual(result.samples, [50, 200, 500]);
  t.is(result.p50, 200);
  t.is(result.p99, 500);
  t.is(result.unrecovered, 1);
  t.deepEqual(recoveryTimes(ops, []), { samples: [], p50: null, p99: null, unrecovered: 0 });
});

test("recovery percentiles and availability flow into the report", async (t) => {
  const ops: OpEvent[] = [];
  for (let i = 0; i < 100; i++) ops.push({ key: `k${i}`, start: 0, end: 10, ok: false }, { key: `k${i}`, start: 20, end: 20 + (i + 1) * 10, ok: true });
  const report = await checkEntities(record({ ops }), readers({}, {}), { kills: [{ at: 0 }] });
  t.deepEqual(report.availability, { ok: 100, total: 200, ratio: 0.5 });
  t.is(report.recovery.samples.length, 100);
  t.is(report.recovery.p50, 520);
  t.is(report.recovery.p99, 1010);
  t.is(report.recovery.kills, 1);
  t.regex(formatReport(report), /p50 520 ms, p99 1010 ms over 100 keys/);
});

test("the key space is split between counters and carts", (t) => {
  const keys = entityKeys(5);
  t.deepEqual(keys, ["chaos-c-0", "chaos-c-1", "chaos-c-2", "chaos-u-0", "chaos-u-1"]);
  t.is(new Set(entityKeys(10_000)).size, 10_000);
});
