// Serialization: every state and every delta survives bytes and back, exactly (canonical
// bytes), and a restored replica carries on as the original would. The bytes follow
// proto/keystate/crdt.proto, read here with a protobufjs root of its own.
import { deepStrictEqual } from "node:assert/strict";
import { fileURLToPath } from "node:url";
import test from "ava";
import fc from "fast-check";
import protobuf from "protobufjs";
import {
  CRDT_TYPES,
  createCrdt,
  decodeCrdtDelta,
  decodeCrdtState,
  encodeCrdtDelta,
  encodeCrdtState,
  type AnyCrdt,
} from "../../host/crdt/index.js";
import { applyOp, checkProperty, elementBytes, historyFor, opFor, playHistory } from "../helpers/crdt-arbitraries.js";

const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString("hex");
/** Wall-clock stamps differ between two calls, so only clock-free operations replay identically. */
const replaysIdentically = (op: unknown) => !/"(default|reverse)"/.test(JSON.stringify(op));

for (const type of CRDT_TYPES) {
  test(`${type}: states round-trip, and a restored replica carries on like the original`, (t) => {
    checkProperty(
      t,
      fc.property(historyFor(type), fc.array(opFor(type), { maxLength: 5 }), (steps, nextOps) => {
        for (const original of playHistory(type, steps).replicas) {
          const restored = decodeCrdtState(encodeCrdtState(original), original.replicaId);
          deepStrictEqual(restored.type, type);
          deepStrictEqual(hex(encodeCrdtState(restored)), hex(encodeCrdtState(original)));
          deepStrictEqual(restored.value(), original.value());
          for (const op of nextOps.filter(replaysIdentically)) {
            const outcomes = [original, restored].map((crdt) => {
              try {
                applyOp(crdt, op);
                return "applied";
              } catch {
                return "refused";
              }
            });
            deepStrictEqual(outcomes[0], outcomes[1]);
          }
          deepStrictEqual(hex(encodeCrdtState(restored)), hex(encodeCrdtState(original)), "diverged after more operations");
        }
      }),
      100,
    );
  });

  test(`${type}: deltas round-trip and apply exactly like the originals`, (t) => {
    checkProperty(
      t,
      fc.property(historyFor(type), (steps) => {
        const direct = createCrdt(type, "viewer") as AnyCrdt;
        const viaBytes = createCrdt(type, "viewer") as AnyCrdt;
        for (const delta of playHistory(type, steps).deltas) {
          const bytes = encodeCrdtDelta(delta);
          const decoded = decodeCrdtDelta(bytes);
          deepStrictEqual(decoded.type, type);
          deepStrictEqual(hex(encodeCrdtDelta(decoded)), hex(bytes));
          direct.applyDelta(delta);
          viaBytes.applyDelta(decoded);
        }
        deepStrictEqual(hex(encodeCrdtState(viaBytes)), hex(encodeCrdtState(direct)));
      }),
      100,
    );
  });
}

test("a decoded state belongs to the replica it is decoded for", (t) => {
  const vote = createCrdt("Vote", "a");
  vote.vote(true);
  const asB = decodeCrdtState(encodeCrdtState(vote), "b");
  t.is(asB.replicaId, "b");
  t.like(asB.value(), { selfVote: false, votesFor: 1, total: 1 });
});

test("extreme values survive: 2^64-1 totals, negative clocks, empty bytes", (t) => {
  const counter = createCrdt("GCounter", "a");
  counter.increment((1n << 64n) - 1n);
  t.is(decodeCrdtState(encodeCrdtState(counter), "a").value(), (1n << 64n) - 1n);

  const pn = createCrdt("PNCounter", "a");
  pn.decrement((1n << 64n) - 1n);
  t.is(decodeCrdtState(encodeCrdtState(pn), "a").value(), -((1n << 64n) - 1n));

  const register = createCrdt("LWWRegister", "a");
  register.set(new Uint8Array(0), { kind: "custom", value: -(2 ** 53 - 1) });
  const restored = decodeCrdtState(encodeCrdtState(register), "a");
  t.deepEqual(restored.value(), new Uint8Array(0));
  t.is((restored as typeof register).currentWrite()?.clock, -(2 ** 53 - 1));

  const set = createCrdt("ORSet", "a");
  set.add(new Uint8Array(0));
  t.deepEqual(decodeCrdtState(encodeCrdtState(set), "a").value(), [new Uint8Array(0)]);
});

test("the bytes are the messages of proto/keystate/crdt.proto, listed canonically", (t) => {
  const root = protobuf.loadSync(fileURLToPath(new URL("../../proto/keystate/crdt.proto", import.meta.url)));
  const State = root.lookupType("keystate.crdt.CrdtState");
  const Delta = root.lookupType("keystate.crdt.CrdtDelta");
  const options = { longs: String, arrays: true, oneofs: true, bytes: String };

  const counter = createCrdt("GCounter", "zed");
  counter.increment(2);
  const amy = createCrdt("GCounter", "amy");
  amy.increment(5);
  counter.merge(amy);
  t.deepEqual(State.toObject(State.decode(encodeCrdtState(counter)), options), {
    state: "gcounter",
    gcounter: { totals: [{ replicaId: "amy", count: "5" }, { replicaId: "zed", count: "2" }] },
  });

  const set = createCrdt("ORSet", "r1");
  set.add(elementBytes(2));
  set.add(elementBytes(1));
  set.remove(elementBytes(2));
  t.deepEqual(Delta.toObject(Delta.decode(encodeCrdtDelta(set.delta()!)), options), {
    delta: "orset",
    orset: {
      entries: [{ element: Buffer.from(elementBytes(1)).toString("base64"), dots: [{ replicaId: "r1", counter: "2" }] }],
      context: { versionVector: [{ replicaId: "r1", count: "2" }], cloud: [] },
    },
  });
});
