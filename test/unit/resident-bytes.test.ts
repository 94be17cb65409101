import test from "ava";
import fc from "fast-check";
import { fromResident, residentSize, toResident } from "../../host/entities/resident-bytes.js";

test("any state survives the resident form byte for byte, at every length", (t) => {
  const lengths = fc.oneof(fc.integer({ min: 0, max: 4 }), fc.integer({ min: 5, max: 40 }), fc.integer({ min: 41, max: 5000 }));
  fc.assert(
    fc.property(lengths.chain((n) => fc.uint8Array({ minLength: n, maxLength: n })), (bytes) => {
      const back = fromResident(toResident(bytes));
      return back !== undefined && back.length === bytes.length && Buffer.from(back).equals(Buffer.from(bytes));
    }),
    { numRuns: 2000 },
  );
  t.pass();
});

test("a view into a larger buffer keeps only its own bytes", (t) => {
  const big = Uint8Array.from({ length: 300 }, (_, i) => i & 0xff);
  for (const [start, end] of [[10, 12], [100, 120], [7, 290]] as const) {
    t.deepEqual([...fromResident(toResident(big.subarray(start, end)))!], [...big.subarray(start, end)]);
  }
});

test("no state, an empty state and up to three bytes are told apart and cost no heap beyond the record", (t) => {
  t.is(toResident(undefined), undefined);
  t.is(fromResident(undefined), undefined);
  const empty = toResident(new Uint8Array(0));
  t.is(typeof empty, "number");
  t.deepEqual(fromResident(empty), new Uint8Array(0));
  for (const bytes of [[0], [0, 0], [0, 0, 0], [255, 255, 255], [1, 2, 3]]) {
    const resident = toResident(Uint8Array.from(bytes));
    t.is(typeof resident, "number", `${bytes} packed into a number`);
    t.deepEqual([...fromResident(resident)!], bytes);
    t.is(residentSize(resident), 0);
  }
  // [0] and [0, 0] must not collide: the length is part of the packed number.
  t.not(toResident(Uint8Array.from([0])), toResident(Uint8Array.from([0, 0])));
  t.true(residentSize(toResident(new Uint8Array(4))) > 0);
});
