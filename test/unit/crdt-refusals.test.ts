// Operations a data type does not allow are refused with KeystateError INVALID_REQUEST and a
// message saying why, and leave the state exactly as it was (no change, no delta).
import test from "ava";
import protobuf from "protobufjs";
import { fileURLToPath } from "node:url";
import { isKeystateError } from "../../host/errors.js";
import {
  createCrdt,
  decodeCrdtDelta,
  decodeCrdtState,
  encodeCrdtState,
  type AnyCrdt,
  type CrdtType,
  type LwwClock,
} from "../../host/crdt/index.js";

const bytes = (text: string) => new TextEncoder().encode(text);

/** One ordinary change per type, so that states are not empty and deltas exist. */
function change(crdt: AnyCrdt): void {
  switch (crdt.type) {
    case "GCounter":
    case "PNCounter":
      crdt.increment(3);
      break;
    case "GSet":
    case "ORSet":
      crdt.add(bytes("x"));
      break;
    case "LWWRegister":
      crdt.set(bytes("v"), { kind: "custom", value: 1 });
      break;
    case "Flag":
      crdt.enable();
      break;
    case "Vote":
      crdt.vote(true);
      break;
    case "ORMap":
      crdt.update(bytes("k"), "GCounter", (counter) => counter.increment(1));
      break;
  }
}

/** A replica with some state already (and no pending delta), so that "unchanged" means something. */
function seeded(type: CrdtType, replicaId = "r1"): AnyCrdt {
  const crdt = createCrdt(type, replicaId) as AnyCrdt;
  change(crdt);
  crdt.resetDelta();
  return crdt;
}

const otherReplicaState = (type: CrdtType) => seeded(type, "r2");
const deltaOf = (type: CrdtType) => {
  const crdt = createCrdt(type, "r9") as AnyCrdt;
  change(crdt);
  return crdt.delta()!;
};

interface Refusal {
  readonly name: string;
  readonly type: CrdtType;
  readonly act: (crdt: AnyCrdt) => unknown;
  readonly message: RegExp;
}

const unsafe = 2 ** 53;
const clock = (value: number, kind: "custom" | "customAutoIncrement" = "custom"): LwwClock => ({ kind, value });

const refusals: Refusal[] = [
  { name: "decrement on a GCounter", type: "GCounter", act: (c) => (c as any).decrement(1), message: /GCounter cannot be decremented/ },
  { name: "negative GCounter increment", type: "GCounter", act: (c) => (c as any).increment(-1), message: /must not be negative/ },
  { name: "negative bigint GCounter increment", type: "GCounter", act: (c) => (c as any).increment(-5n), message: /must not be negative/ },
  { name: "fractional GCounter increment", type: "GCounter", act: (c) => (c as any).increment(1.5), message: /whole number/ },
  { name: "NaN GCounter increment", type: "GCounter", act: (c) => (c as any).increment(Number.NaN), message: /whole number/ },
  { name: "GCounter total past 2^64-1", type: "GCounter", act: (c) => (c as any).increment(1n << 64n), message: /exceed 2\^64-1/ },
  { name: "negative PNCounter increment", type: "PNCounter", act: (c) => (c as any).increment(-2), message: /must not be negative/ },
  { name: "negative PNCounter decrement", type: "PNCounter", act: (c) => (c as any).decrement(-2), message: /must not be negative/ },
  { name: "remove on a GSet", type: "GSet", act: (c) => (c as any).remove(bytes("x")), message: /cannot remove from a GSet/ },
  { name: "clear on a GSet", type: "GSet", act: (c) => (c as any).clear(), message: /cannot clear a GSet/ },
  { name: "a string as a set element", type: "ORSet", act: (c) => (c as any).add("x"), message: /expected bytes/ },
  { name: "disable on a Flag", type: "Flag", act: (c) => (c as any).disable(), message: /cannot be disabled/ },
  { name: "fractional custom clock", type: "LWWRegister", act: (c) => (c as any).set(bytes("w"), clock(1.5)), message: /safe integer/ },
  { name: "unsafe custom clock", type: "LWWRegister", act: (c) => (c as any).set(bytes("w"), clock(unsafe)), message: /safe integer/ },
  { name: "unsafe auto-increment clock", type: "LWWRegister", act: (c) => (c as any).set(bytes("w"), clock(-unsafe, "customAutoIncrement")), message: /safe integer/ },
  { name: "unknown clock kind", type: "LWWRegister", act: (c) => (c as any).set(bytes("w"), { kind: "lamport" }), message: /unknown LWWRegister clock kind/ },
  { name: "GCounter delta applied to a PNCounter", type: "PNCounter", act: (c) => c.applyDelta(deltaOf("GCounter")), message: /cannot apply a GCounter delta to a PNCounter/ },
  { name: "ORSet delta applied to an ORMap", type: "ORMap", act: (c) => c.applyDelta(deltaOf("ORSet")), message: /cannot apply a ORSet delta to a ORMap/ },
  { name: "GSet state merged into an ORSet", type: "ORSet", act: (c) => c.merge(otherReplicaState("GSet")), message: /cannot merge a GSet state into a ORSet/ },
  { name: "Flag state merged into a Vote", type: "Vote", act: (c) => c.merge(otherReplicaState("Flag")), message: /cannot merge a Flag state into a Vote/ },
  {
    name: "ORMap update with another type than the key holds",
    type: "ORMap",
    act: (c) => (c as any).update(bytes("k"), "ORSet", () => {}),
    message: /holds a GCounter, not a ORSet/,
  },
  { name: "ORMap update with an unknown type", type: "ORMap", act: (c) => (c as any).update(bytes("n"), "Counter", () => {}), message: /unknown CRDT type "Counter"/ },
  {
    name: "ORMap update whose nested operation is refused (new key)",
    type: "ORMap",
    act: (c) => (c as any).update(bytes("n"), "GCounter", (counter: any) => counter.decrement(1)),
    message: /GCounter cannot be decremented/,
  },
  {
    name: "ORMap update whose nested operation is refused after a change",
    type: "ORMap",
    act: (c) =>
      (c as any).update(bytes("k"), "GCounter", (counter: any) => {
        counter.increment(5);
        counter.increment(-1);
      }),
    message: /must not be negative/,
  },
];

for (const refusal of refusals) {
  test(`refused: ${refusal.name}`, (t) => {
    const crdt = seeded(refusal.type);
    const before = encodeCrdtState(crdt);
    const valueBefore = crdt.value();
    const error = t.throws(() => refusal.act(crdt));
    t.true(isKeystateError(error, "INVALID_REQUEST"), `expected KeystateError INVALID_REQUEST, got ${String(error)}`);
    t.regex(error!.message, refusal.message);
    t.deepEqual(Buffer.from(encodeCrdtState(crdt)), Buffer.from(before), "state changed");
    t.deepEqual(crdt.value(), valueBefore);
    t.false(crdt.hasDelta(), "a refused operation left a delta");
  });
}

const State = protobuf
  .loadSync(fileURLToPath(new URL("../../proto/keystate/crdt.proto", import.meta.url)))
  .lookupType("keystate.crdt.CrdtState");
const encodeWire = (object: object) => State.encode(State.fromObject(object)).finish();

const constructionRefusals: Array<{ name: string; act: () => unknown; message: RegExp }> = [
  { name: "unknown CRDT type", act: () => createCrdt("Counter" as CrdtType, "r1"), message: /unknown CRDT type "Counter"/ },
  { name: "empty replica id", act: () => createCrdt("ORSet", ""), message: /replica id must be a non-empty string/ },
  { name: "garbage state bytes", act: () => decodeCrdtState(Uint8Array.of(0xff, 0xff, 0xff), "r1"), message: /cannot decode a CRDT state/ },
  { name: "state bytes with no type set", act: () => decodeCrdtState(new Uint8Array(0), "r1"), message: /no CRDT type is set/ },
  { name: "garbage delta bytes", act: () => decodeCrdtDelta(Uint8Array.of(0x0a, 0x05, 0x01)), message: /cannot decode a CRDT delta/ },
  {
    name: "ORSet state whose dot is missing from its context",
    act: () => decodeCrdtState(encodeWire({ orset: { entries: [{ element: Uint8Array.of(1), dots: [{ replicaId: "r1", counter: 3 }] }], context: {} } }), "r1"),
    message: /missing from the causal context/,
  },
  {
    name: "ORSet state with a zero dot counter",
    act: () => decodeCrdtState(encodeWire({ orset: { entries: [{ element: Uint8Array.of(1), dots: [{ replicaId: "r1", counter: 0 }] }] } }), "r1"),
    message: /dot counter must be at least 1/,
  },
  {
    name: "ORMap version without a value",
    act: () =>
      decodeCrdtState(
        encodeWire({
          ormap: {
            entries: [{ key: Uint8Array.of(1), versions: [{ dot: { replicaId: "r1", counter: 1 }, writer: "r1#1" }] }],
            context: { versionVector: [{ replicaId: "r1", count: 1 }] },
          },
        }),
        "r1",
      ),
    message: /ORMap version has no value/,
  },
  {
    name: "vote with an empty replica id",
    act: () => decodeCrdtState(encodeWire({ vote: { votes: [{ replicaId: "", vote: true, version: 1 }] } }), "r1"),
    message: /empty replica id/,
  },
  {
    name: "LWW clock beyond the safe integers",
    act: () => decodeCrdtState(encodeWire({ lwwregister: { write: { value: Uint8Array.of(1), clock: "9007199254740993", writer: "r1" } } }), "r1"),
    message: /not a safe integer/,
  },
];

for (const refusal of constructionRefusals) {
  test(`refused: ${refusal.name}`, (t) => {
    const error = t.throws(refusal.act);
    t.true(isKeystateError(error, "INVALID_REQUEST"), `expected KeystateError INVALID_REQUEST, got ${String(error)}`);
    t.regex(error!.message, refusal.message);
  });
}
