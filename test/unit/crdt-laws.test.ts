// The laws every replicated data type must obey, checked on states reached by random
// histories of three replicas (local operations interleaved with full-state syncs):
// merge is commutative, associative and idempotent, and the deltas the history produced,
// delivered in any order and some more than once, converge to the merge of the full states.
import { deepStrictEqual } from "node:assert/strict";
import test from "ava";
import fc from "fast-check";
import { CRDT_TYPES, createCrdt, encodeCrdtState, type AnyCrdt, type CrdtType, type ORMap } from "../../host/crdt/index.js";
import { checkProperty, deliveryArb, historyFor, playHistory, scheduleOf } from "../helpers/crdt-arbitraries.js";

const RUNS: Record<CrdtType, number> = {
  GCounter: 200,
  PNCounter: 200,
  GSet: 200,
  ORSet: 200,
  LWWRegister: 200,
  Flag: 100,
  Vote: 200,
  ORMap: 150,
};

/** Values are read by one fixed viewer, so that "this replica's vote" means the same everywhere. */
const VIEWER = "viewer";

function joinAll(...states: AnyCrdt[]): AnyCrdt {
  const result = states[0]!.clone(VIEWER);
  for (const state of states.slice(1)) result.merge(state);
  return result;
}

/** Equal as states: the same canonical encoding and the same value. */
function assertSameState(actual: AnyCrdt, expected: AnyCrdt, what: string): void {
  deepStrictEqual(Buffer.from(encodeCrdtState(actual)).toString("hex"), Buffer.from(encodeCrdtState(expected)).toString("hex"), `${what}: encodings differ`);
  deepStrictEqual(actual.clone(VIEWER).value(), expected.clone(VIEWER).value(), `${what}: values differ`);
}

for (const type of CRDT_TYPES) {
  test(`${type}: merge is commutative, associative and idempotent`, (t) => {
    checkProperty(
      t,
      fc.property(historyFor(type), (steps) => {
        const { replicas, refusalsThatChangedState } = playHistory(type, steps);
        const [a, b, c] = replicas as [AnyCrdt, AnyCrdt, AnyCrdt];
        deepStrictEqual(refusalsThatChangedState, [], "a refused operation changed the state");
        assertSameState(joinAll(a, b), joinAll(b, a), "a⊔b vs b⊔a");
        assertSameState(joinAll(joinAll(a, b), c), joinAll(a, joinAll(b, c)), "(a⊔b)⊔c vs a⊔(b⊔c)");
        assertSameState(joinAll(a, a), a, "a⊔a vs a");
        assertSameState(joinAll(joinAll(a, b), b), joinAll(a, b), "(a⊔b)⊔b vs a⊔b");
      }),
      RUNS[type],
    );
  });

  test(`${type}: deltas delivered in any order, repeated, converge to the merge of the full states`, (t) => {
    checkProperty(
      t,
      fc.property(historyFor(type), deliveryArb, (steps, delivery) => {
        const { replicas, deltas } = playHistory(type, steps);
        const expected = joinAll(createCrdt(type, VIEWER), ...replicas);

        const fromDeltas = createCrdt(type, VIEWER) as AnyCrdt;
        for (const delta of scheduleOf(deltas, delivery)) fromDeltas.applyDelta(delta);
        assertSameState(fromDeltas, expected, "fresh replica fed the deltas");

        // A replica that already has its own state and receives everyone's deltas.
        const own = replicas[0]!.clone();
        for (const delta of scheduleOf(deltas, delivery)) own.applyDelta(delta);
        assertSameState(own, expected, "replica r1 fed the deltas");
      }),
      RUNS[type],
    );
  });
}

test("the histories exercise what the laws are about", (t) => {
  // Guards against a generator that silently stopped producing the interesting cases.
  const samples = fc.sample(historyFor("ORMap"), { numRuns: 200, seed: 42 });
  const played = samples.map((steps) => playHistory("ORMap", steps));
  const nonEmpty = played.filter(({ replicas }) => replicas.some((r) => (r as ORMap).size > 0));
  const withDeltas = played.filter(({ deltas }) => deltas.length > 3);
  t.true(nonEmpty.length > 100, `only ${nonEmpty.length} of 200 ORMap histories end non-empty`);
  t.true(withDeltas.length > 50, `only ${withDeltas.length} of 200 ORMap histories made more than 3 deltas`);
});
