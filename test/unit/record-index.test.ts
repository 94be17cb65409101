// The entity manager's per-table index (host/entities/record-index.ts): a hash table chained
// through the records. Checked against a Map under random operations that grow and shrink it,
// and for the one mutation allowed while iterating (deleting the current record).
import test from "ava";
import fc from "fast-check";
import { RecordIndex } from "../../host/entities/record-index.js";

class Rec {
  nextInBucket: Rec | undefined = undefined;
  constructor(readonly key: string) {}
}

type Op = { kind: "add" | "delete" | "get"; key: string };

const keys = fc.oneof(fc.integer({ min: 0, max: 3000 }).map(String), fc.string({ maxLength: 6 }), fc.string({ unit: "grapheme", maxLength: 4 }));
const ops = fc.array(
  fc.record({ kind: fc.constantFrom<Op["kind"]>("add", "add", "delete", "get"), key: keys }),
  { maxLength: 3000 },
);

test("behaves as a Map of key -> record under random adds, deletes and lookups (grow and shrink included)", (t) => {
  fc.assert(
    fc.property(ops, (sequence) => {
      const index = new RecordIndex<Rec>();
      const model = new Map<string, Rec>();
      for (const { kind, key } of sequence) {
        if (kind === "add") {
          if (model.has(key)) continue; // the manager looks a key up before adding it
          const record = new Rec(key);
          index.add(record);
          model.set(key, record);
        } else if (kind === "delete") {
          if (index.delete(key) !== model.delete(key)) return false;
        } else if (index.get(key) !== model.get(key) || index.has(key) !== model.has(key)) {
          return false;
        }
        if (index.size !== model.size) return false;
      }
      const listed = [...index.values()];
      return listed.length === model.size && listed.every((record) => model.get(record.key) === record);
    }),
    { numRuns: 200 },
  );
  t.pass();
});

test("a table that grew to 50,000 and shrank back keeps every remaining record findable", (t) => {
  const index = new RecordIndex<Rec>();
  for (let i = 0; i < 50_000; i++) index.add(new Rec(`k${i}`));
  t.is(index.size, 50_000);
  for (let i = 0; i < 50_000; i++) if (i % 100 !== 0) t.true(index.delete(`k${i}`));
  // Shrinking happens on add: add one more so the bucket array can shrink.
  index.add(new Rec("late"));
  t.is(index.size, 501);
  for (let i = 0; i < 50_000; i += 100) t.is(index.get(`k${i}`)?.key, `k${i}`);
  t.is(index.get("k1"), undefined);
  t.is(index.get("late")?.key, "late");
});

test("deleting the current record while iterating visits every record once", (t) => {
  const index = new RecordIndex<Rec>();
  for (let i = 0; i < 1_000; i++) index.add(new Rec(String(i)));
  const seen = new Set<string>();
  for (const record of index.values()) {
    t.false(seen.has(record.key));
    seen.add(record.key);
    if (Number(record.key) % 3 === 0) index.delete(record.key);
  }
  t.is(seen.size, 1_000);
  t.is(index.size, 1_000 - 334);
  t.is(index.get("3"), undefined);
  t.is(index.get("4")?.key, "4");
});

test("clear empties it and unlinks the records (a cleared record can be added again)", (t) => {
  const index = new RecordIndex<Rec>();
  const records = Array.from({ length: 100 }, (_, i) => new Rec(`r${i}`));
  for (const record of records) index.add(record);
  index.clear();
  t.is(index.size, 0);
  t.deepEqual([...index.values()], []);
  t.true(records.every((record) => record.nextInBucket === undefined));
  index.add(records[7]!);
  t.is(index.get("r7"), records[7]);
  t.is(index.size, 1);
});
