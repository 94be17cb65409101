// fast-check models of replicated-data histories: operations per type (as plain descriptors so
// that a shrunk counterexample reads well), a runner that plays a history on three replicas
// with full-state syncs between them, and the deltas it produced, ready to deliver in any order.
import type { ExecutionContext } from "ava";
import fc from "fast-check";
import { isKeystateError } from "../../host/errors.js";
import { createCrdt, encodeCrdtState, type AnyCrdt, type CrdtDelta, type CrdtType, type LwwClock } from "../../host/crdt/index.js";

export const REPLICAS = ["r1", "r2", "r3"] as const;

export type Op =
  | { readonly kind: "increment"; readonly by: number }
  | { readonly kind: "decrement"; readonly by: number }
  | { readonly kind: "add"; readonly element: number }
  | { readonly kind: "remove"; readonly element: number }
  | { readonly kind: "clear" }
  | { readonly kind: "set"; readonly value: number; readonly clock: LwwClock }
  | { readonly kind: "enable" }
  | { readonly kind: "vote"; readonly inFavour: boolean }
  | { readonly kind: "retire"; readonly replica: number }
  | { readonly kind: "update"; readonly key: number; readonly type: CrdtType; readonly op: Op }
  | { readonly kind: "removeKey"; readonly key: number }
  | { readonly kind: "clearMap" };

/** A small pool, so that replicas touch the same elements and keys (including the empty one). */
export function elementBytes(element: number): Uint8Array {
  return element === 0 ? new Uint8Array(0) : Uint8Array.of(element, element * 7);
}
const element = fc.integer({ min: 0, max: 4 });
const amount = fc.integer({ min: 0, max: 20 });
const smallClock = fc.integer({ min: -3, max: 3 });
const lwwClock: fc.Arbitrary<LwwClock> = fc.oneof(
  fc.constant({ kind: "default" } as const),
  fc.constant({ kind: "reverse" } as const),
  smallClock.map((value) => ({ kind: "custom", value }) as const),
  smallClock.map((value) => ({ kind: "customAutoIncrement", value }) as const),
);

const NESTABLE: CrdtType[] = ["GCounter", "PNCounter", "GSet", "ORSet", "LWWRegister", "Flag", "Vote", "ORMap"];

/** Operations valid for `type` (plus, for ORMap, updates that may name the wrong type and be refused). */
export function opFor(type: CrdtType, depth = 0): fc.Arbitrary<Op> {
  switch (type) {
    case "GCounter":
      return amount.map((by) => ({ kind: "increment", by }) as const);
    case "PNCounter":
      return fc.oneof(amount.map((by) => ({ kind: "increment", by }) as const), amount.map((by) => ({ kind: "decrement", by }) as const));
    case "GSet":
      return element.map((e) => ({ kind: "add", element: e }) as const);
    case "ORSet":
      return fc.oneof(
        { arbitrary: element.map((e) => ({ kind: "add", element: e }) as const), weight: 3 },
        { arbitrary: element.map((e) => ({ kind: "remove", element: e }) as const), weight: 2 },
        { arbitrary: fc.constant({ kind: "clear" } as const), weight: 1 },
      );
    case "LWWRegister":
      return fc.record({ kind: fc.constant("set" as const), value: element, clock: lwwClock });
    case "Flag":
      return fc.constant({ kind: "enable" } as const);
    case "Vote":
      // Retiring a replica (its node is gone) is rarer than voting; a retired replica's later votes are refused.
      return depth > 0
        ? fc.boolean().map((inFavour) => ({ kind: "vote", inFavour }) as const)
        : fc.oneof(
            { arbitrary: fc.boolean().map((inFavour) => ({ kind: "vote", inFavour }) as const), weight: 5 },
            { arbitrary: fc.integer({ min: 0, max: REPLICAS.length - 1 }).map((replica) => ({ kind: "retire", replica }) as const), weight: 1 },
          );
    case "ORMap":
      return mapOp(depth);
  }
}

function mapOp(depth: number): fc.Arbitrary<Op> {
  // Key k mostly holds type NESTABLE[k] (so nested values grow); sometimes another type, which
  // is refused locally but makes concurrent creations with different types reachable.
  const types = depth >= 1 ? NESTABLE.filter((t) => t !== "ORMap") : NESTABLE;
  const update = fc
    .tuple(fc.integer({ min: 0, max: 3 }), fc.integer({ min: 0, max: 9 }), fc.integer({ min: 0, max: types.length - 1 }))
    .chain(([key, roll, other]) => {
      const type = roll < 8 ? types[key % types.length]! : types[other]!;
      return opFor(type, depth + 1).map((op) => ({ kind: "update", key, type, op }) as const);
    });
  return fc.oneof(
    { arbitrary: update, weight: 6 },
    { arbitrary: fc.integer({ min: 0, max: 3 }).map((key) => ({ kind: "removeKey", key }) as const), weight: 2 },
    { arbitrary: fc.constant({ kind: "clearMap" } as const), weight: 1 },
  );
}

/** Plays one operation. Refusals (KeystateError INVALID_REQUEST) are rethrown to the caller. */
export function applyOp(crdt: AnyCrdt, op: Op): void {
  const c = crdt as unknown as Record<string, (...args: unknown[]) => unknown>;
  switch (op.kind) {
    case "increment":
    case "decrement":
      c[op.kind]!.call(crdt, op.by);
      return;
    case "add":
    case "remove":
      c[op.kind]!.call(crdt, elementBytes(op.element));
      return;
    case "clear":
    case "enable":
      c[op.kind]!.call(crdt);
      return;
    case "set":
      c["set"]!.call(crdt, elementBytes(op.value), op.clock);
      return;
    case "vote":
      c["vote"]!.call(crdt, op.inFavour);
      return;
    case "retire":
      c["retire"]!.call(crdt, [REPLICAS[op.replica]]);
      return;
    case "update":
      c["update"]!.call(crdt, elementBytes(op.key), op.type, (value: AnyCrdt) => applyOp(value, op.op));
      return;
    case "removeKey":
      c["remove"]!.call(crdt, elementBytes(op.key));
      return;
    case "clearMap":
      c["clear"]!.call(crdt);
      return;
  }
}

export type Step =
  | { readonly kind: "op"; readonly replica: number; readonly op: Op; readonly takeDelta: boolean }
  | { readonly kind: "sync"; readonly from: number; readonly to: number };

const replicaIndex = fc.integer({ min: 0, max: REPLICAS.length - 1 });

export function historyFor(type: CrdtType, maxSteps = 30): fc.Arbitrary<Step[]> {
  const opStep = fc.record({ kind: fc.constant("op" as const), replica: replicaIndex, op: opFor(type), takeDelta: fc.boolean() });
  const syncStep = fc.record({ kind: fc.constant("sync" as const), from: replicaIndex, to: replicaIndex });
  return fc.array(fc.oneof({ arbitrary: opStep, weight: 3 }, { arbitrary: syncStep, weight: 1 }), { maxLength: maxSteps, size: "max" });
}

export interface PlayedHistory {
  readonly replicas: AnyCrdt[];
  /** Every delta taken, in the order taken (after each op with takeDelta, and at the end). */
  readonly deltas: CrdtDelta[];
  /** Operations refused whose replica's state changed anyway (must stay empty). */
  readonly refusalsThatChangedState: Op[];
}

export function playHistory(type: CrdtType, steps: readonly Step[]): PlayedHistory {
  const replicas = REPLICAS.map((id) => createCrdt(type, id) as AnyCrdt);
  const deltas: CrdtDelta[] = [];
  const refusalsThatChangedState: Op[] = [];
  const take = (replica: AnyCrdt) => {
    const delta = replica.takeDelta();
    if (delta !== undefined) deltas.push(delta as CrdtDelta);
  };
  for (const step of steps) {
    if (step.kind === "sync") {
      replicas[step.to]!.merge(replicas[step.from]!);
      continue;
    }
    const replica = replicas[step.replica]!;
    const before = encodeCrdtState(replica);
    try {
      applyOp(replica, step.op);
    } catch (err) {
      if (!isKeystateError(err, "INVALID_REQUEST")) throw err;
      if (!Buffer.from(encodeCrdtState(replica)).equals(before)) refusalsThatChangedState.push(step.op);
    }
    if (step.takeDelta) take(replica);
  }
  replicas.forEach(take);
  return { replicas, deltas, refusalsThatChangedState };
}

/**
 * A delivery schedule, drawn before it is known how many deltas a history produces: every
 * delta is delivered at least once, `repeats` name deltas delivered again, and `priorities`
 * shuffle the lot.
 */
export interface Delivery {
  readonly priorities: number[];
  readonly repeats: number[];
}

export const deliveryArb: fc.Arbitrary<Delivery> = fc.record({
  priorities: fc.array(fc.nat({ max: 1000 }), { minLength: 1, maxLength: 64 }),
  repeats: fc.array(fc.nat(), { maxLength: 10 }),
});

export function scheduleOf<T>(messages: readonly T[], delivery: Delivery): T[] {
  if (messages.length === 0) return [];
  const indices = [...messages.keys(), ...delivery.repeats.map((r) => r % messages.length)];
  const priority = (position: number) => delivery.priorities[position % delivery.priorities.length]!;
  const order = indices.map((index, position) => ({ index, key: priority(position), position }));
  order.sort((a, b) => a.key - b.key || a.position - b.position);
  return order.map(({ index }) => messages[index]!);
}

/** Full two-way sync of two replicas by merging their states. */
export function syncBoth(a: AnyCrdt, b: AnyCrdt): void {
  const aBefore = a.clone();
  a.merge(b);
  b.merge(aBefore);
}

export const utf8 = (text: string): Uint8Array => new TextEncoder().encode(text);
export const asText = (values: Uint8Array[]): string[] => values.map((value) => new TextDecoder().decode(value));

/**
 * Runs a property inside an ava test: a failure fails the test with fast-check's report (seed,
 * shrunk counterexample), and the test also checks that every run happened.
 */
export function checkProperty<Ts extends [unknown, ...unknown[]]>(t: ExecutionContext, property: fc.IProperty<Ts>, numRuns: number): void {
  const details = fc.check(property, { numRuns });
  t.false(details.failed, fc.defaultReportMessage(details) ?? "property failed");
  t.is(details.numRuns, numRuns);
}
