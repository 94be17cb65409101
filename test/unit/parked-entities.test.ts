// The columns of parked (idle, compact) entities (host/entities/parked-entities.ts):
// checked against a Map under random parks, removals and lookups that grow the columns and
// shrink them again; the sweep and the eviction look go round every row; what fits.
import test from "ava";
import fc from "fast-check";
import { MAX_PARKED_STATE_BYTES, NO_ROW, ParkedEntities } from "../../host/entities/parked-entities.js";

interface Row {
  state: string | number | undefined;
  version: number;
  lastUsed: number;
  table: string;
}

type Op = { kind: "add" | "remove" | "find"; key: string; state: string | number | undefined; version: number; lastUsed: number; table: string };

const keys = fc.oneof(fc.integer({ min: 0, max: 3000 }).map(String), fc.string({ maxLength: 6 }), fc.string({ unit: "grapheme", maxLength: 4 }));
const ops = fc.array(
  fc.record({
    kind: fc.constantFrom<Op["kind"]>("add", "add", "remove", "find"),
    key: keys,
    // A packed state, none, or a state's bytes as resident-bytes.ts keeps them (one byte per character).
    state: fc.oneof(fc.integer({ min: 0, max: 0x03ffffff }), fc.constant(undefined), fc.string({ unit: fc.nat({ max: 255 }).map((code) => String.fromCharCode(code)), maxLength: 40 })),
    version: fc.integer({ min: 0, max: 0x7fffffff }),
    lastUsed: fc.integer({ min: -(2 ** 30), max: 2 ** 30 - 1 }),
    table: fc.constantFrom("v1", "v2", "v3"),
  }),
  { maxLength: 3000 },
);

function rowOf(parked: ParkedEntities<string>, row: number): Row {
  return { state: parked.stateOf(row), version: parked.seqOf(row), lastUsed: parked.lastUsedOf(row), table: parked.tableOf(row) };
}

test("behaves as a Map of key -> (state, version, last use, table) under random parks, removals and lookups", (t) => {
  fc.assert(
    fc.property(ops, (sequence) => {
      const parked = new ParkedEntities<string>();
      const model = new Map<string, Row>();
      for (const { kind, key, ...row } of sequence) {
        if (kind === "add") {
          if (model.has(key)) continue; // the manager parks only a key that is not parked
          // Keys are kept one byte per character: one with a character above 255 is refused (it stays a record).
          const fits = key.split("").every((unit) => unit.charCodeAt(0) < 256);
          const at = parked.add(key, row.state, row.version, row.lastUsed, row.table);
          if ((at !== NO_ROW) !== fits || (fits && parked.find(key) !== at)) return false;
          if (fits) model.set(key, row);
        } else if (kind === "remove") {
          const at = parked.find(key);
          if ((at !== NO_ROW) !== model.has(key)) return false;
          if (at !== NO_ROW) parked.remove(at);
          model.delete(key);
        } else {
          const at = parked.find(key);
          const expected = model.get(key);
          if (expected === undefined ? at !== NO_ROW : at === NO_ROW || parked.keyOf(at) !== key || parked.keyLengthOf(at) !== key.length) return false;
          if (expected !== undefined) t.deepEqual(rowOf(parked, at), expected);
        }
        if (parked.size !== model.size) return false;
      }
      const listed = parked.keys();
      return listed.length === model.size && listed.every((key) => model.has(key));
    }),
  );
  t.pass();
});

test("grows to many rows and, emptied, shrinks and still finds what is left", (t) => {
  const parked = new ParkedEntities<string>();
  for (let i = 0; i < 20_000; i++) t.not(parked.add(`k${i}`, i & 0xffff, i, i, "v1"), NO_ROW);
  for (let i = 0; i < 20_000; i++) if (i % 100 !== 0) parked.remove(parked.find(`k${i}`));
  t.is(parked.size, 200);
  for (let i = 0; i < 20_000; i += 100) {
    const row = parked.find(`k${i}`);
    t.not(row, NO_ROW);
    t.is(parked.keyOf(row), `k${i}`);
    t.deepEqual(rowOf(parked, row), { state: i & 0xffff, version: i, lastUsed: i, table: "v1" });
  }
  t.is(parked.find("k1"), NO_ROW);
});

test("the sweep goes round every row, a slice at a time, and may remove what it visits", (t) => {
  const parked = new ParkedEntities<string>();
  for (let i = 0; i < 1000; i++) parked.add(`k${i}`, undefined, 1, i, "v1");
  const seen = new Set<string>();
  // Slices of 300: four sweeps see all 1000 (the fourth wraps round).
  for (let sweep = 0; sweep < 4; sweep++) parked.sweep(300, (row) => seen.add(parked.keyOf(row)));
  t.is(seen.size, 1000);
  // Removing every row with an odd last use while sweeping them all (and the shrink after).
  parked.sweep(1000, (row) => {
    if (parked.lastUsedOf(row) % 2 === 1) parked.remove(row);
  });
  t.is(parked.size, 500);
  t.true(parked.keys().every((key) => Number(key.slice(1)) % 2 === 0));
  // Everything removed during one sweep: the columns shrink after it, nothing is lost twice.
  parked.sweep(10_000, (row) => parked.remove(row));
  t.is(parked.size, 0);
  t.deepEqual(parked.keys(), []);
});

test("each visits every row once, may remove the one it is given, and leaves the sweep's place alone", (t) => {
  const parked = new ParkedEntities<string>();
  for (let i = 0; i < 1000; i++) parked.add(`k${i}`, undefined, 1, i, "v1");
  const firstSweep: string[] = [];
  parked.sweep(300, (row) => firstSweep.push(parked.keyOf(row)));
  const seen = new Set<string>();
  parked.each((row) => {
    seen.add(parked.keyOf(row));
    if (parked.lastUsedOf(row) % 2 === 1) parked.remove(row);
  });
  t.is(seen.size, 1000);
  t.is(parked.size, 500);
  // The sweep goes on after the 300 rows it saw: none of those again before it wraps round.
  const next: string[] = [];
  parked.sweep(100, (row) => next.push(parked.keyOf(row)));
  t.false(next.some((key) => firstSweep.includes(key)));
});

test("the eviction look returns the least recently used of the next rows, going round", (t) => {
  const parked = new ParkedEntities<string>();
  t.is(parked.oldest(8), NO_ROW, "nothing parked");
  // Last uses 100, 99, ..., 1: the first sample of 8 holds 100..93, its oldest is 93.
  for (let i = 0; i < 100; i++) parked.add(`k${i}`, 1, 1, 100 - i, "v1");
  const first = parked.oldest(8);
  t.is(parked.lastUsedOf(first), 93);
  t.is(parked.lastUsedOf(parked.oldest(8)), 85, "the next look starts where this one ended");
  // Evicting the oldest of each look until empty removes every row once.
  let removed = 0;
  for (let row = parked.oldest(8); row !== NO_ROW; row = parked.oldest(8)) {
    parked.remove(row);
    removed++;
  }
  t.is(removed, 100);
});

test("what fits: packed states, none, states up to 64 KiB, and versions that are 31-bit integers", (t) => {
  t.true(ParkedEntities.fits(undefined, 0));
  t.true(ParkedEntities.fits(0x03ffffff, 0x7fffffff));
  t.true(ParkedEntities.fits("a longer state", 1));
  t.true(ParkedEntities.fits("s".repeat(MAX_PARKED_STATE_BYTES), 1));
  t.false(ParkedEntities.fits("s".repeat(MAX_PARKED_STATE_BYTES + 1), 1), "a larger state stays a record");
  t.false(ParkedEntities.fits(5, 2 ** 31));
  t.false(ParkedEntities.fits(5, -1));
  t.false(ParkedEntities.fits(5, 1.5));
});

test("moving the clock's epoch moves every parked entity's last use, none below the floor", (t) => {
  const parked = new ParkedEntities<string>();
  parked.add("a", 1, 1, 5_000, "v1");
  parked.add("b", 1, 1, -(2 ** 30) + 10, "v1");
  parked.shiftLastUsed(1_000, -(2 ** 30) + 1);
  t.is(parked.lastUsedOf(parked.find("a")), 4_000);
  t.is(parked.lastUsedOf(parked.find("b")), -(2 ** 30) + 1);
});

test("keys are kept one byte per character: Latin-1 ones park, others and over-long ones are refused", (t) => {
  const parked = new ParkedEntities<string>();
  t.not(parked.add("café-ÿ", 1, 1, 1, "v1"), NO_ROW, "characters up to 255");
  t.is(parked.keyOf(parked.find("café-ÿ")), "café-ÿ");
  t.is(parked.add("naïve-€", 1, 1, 1, "v1"), NO_ROW, "€ is above 255: it stays a record");
  t.is(parked.add("😀", 1, 1, 1, "v1"), NO_ROW);
  t.is(parked.find("naïve-€"), NO_ROW);
  t.is(parked.add("x".repeat(65_536), 1, 1, 1, "v1"), NO_ROW, "a key over 65,535 characters");
  const long = "y".repeat(65_535);
  t.not(parked.add(long, 1, 1, 1, "v1"), NO_ROW);
  t.is(parked.keyOf(parked.find(long)), long);
  t.is(parked.size, 2);
});

test("the bytes of removed keys are reclaimed; the keys left are still found and read back", (t) => {
  const parked = new ParkedEntities<string>();
  // Waves of adds and removes: the key bytes fill with gaps and are compacted again and again.
  for (let wave = 0; wave < 20; wave++) {
    for (let i = 0; i < 2_000; i++) parked.add(`w${wave}-key-${i}`, i, wave, i, "v1");
    for (let i = 0; i < 2_000; i++) if (i % 10 !== 0) parked.remove(parked.find(`w${wave}-key-${i}`));
  }
  t.is(parked.size, 20 * 200);
  // 4,000 keys of ~13 characters left: ~52 KB live; 40,000 were added (~520 KB without reclaiming).
  t.true(parked.bytesHeld <= 256 * 1024, `bytes held: ${parked.bytesHeld}`);
  for (let wave = 0; wave < 20; wave++) {
    for (let i = 0; i < 2_000; i += 10) {
      const row = parked.find(`w${wave}-key-${i}`);
      t.is(row === NO_ROW ? undefined : parked.keyOf(row), `w${wave}-key-${i}`);
      if (row !== NO_ROW) t.is(parked.seqOf(row), wave);
    }
  }
});

test("a state's bytes are kept after its key and read back the same, through removals and compactions", (t) => {
  const parked = new ParkedEntities<string>();
  const stateOf = (i: number) => (i % 3 === 0 ? undefined : i % 3 === 1 ? i : String.fromCharCode(...Array.from({ length: 4 + (i % 50) }, (_, j) => (i * 7 + j * 13) % 256)));
  for (let wave = 0; wave < 10; wave++) {
    for (let i = 0; i < 1_000; i++) t.not(parked.add(`s${wave}-${i}`, stateOf(i), i, i, "v1"), NO_ROW);
    for (let i = 0; i < 1_000; i++) if (i % 4 !== 0) parked.remove(parked.find(`s${wave}-${i}`));
  }
  for (let wave = 0; wave < 10; wave++) {
    for (let i = 0; i < 1_000; i += 4) {
      const row = parked.find(`s${wave}-${i}`);
      t.not(row, NO_ROW);
      t.is(parked.stateOf(row), stateOf(i));
      const state = stateOf(i);
      t.is(parked.heldBytesOf(row), `s${wave}-${i}`.length + (typeof state === "string" ? state.length : 0));
    }
  }
});

test("a table of event-sourced entities keeps each row's snapshot sequence number; a value table answers 0", (t) => {
  const events = new ParkedEntities<string>(true);
  for (let i = 0; i < 3_000; i++) t.not(events.add(`e${i}`, `state-${i}`, i + 10, i, "v1", i), NO_ROW);
  for (let i = 0; i < 3_000; i++) if (i % 3 !== 0) events.remove(events.find(`e${i}`));
  for (let i = 0; i < 3_000; i += 3) {
    const row = events.find(`e${i}`);
    t.deepEqual([events.seqOf(row), events.snapshotSeqOf(row), events.stateOf(row)], [i + 10, i, `state-${i}`]);
  }
  const values = new ParkedEntities<string>();
  values.add("v", 1, 7, 1, "v1", 5);
  t.is(values.snapshotSeqOf(values.find("v")), 0, "a value table has no snapshot column");
  t.is(values.seqOf(values.find("v")), 7);
  t.false(ParkedEntities.fits("s", 1, 2 ** 31), "every sequence number must fit");
});
