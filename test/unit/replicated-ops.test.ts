// The host side of the replicated ABI: CrdtOps a guest returns, as the real protobuf
// bytes of a CommandResult, decoded and applied to host/crdt types — each type's ops,
// the refusals (the op a type does not have, bad amounts, an ORMap key of another type)
// leaving the CRDT as it was — and the value a guest reads back (CrdtValue).
import test from "ava";
import { decodeCommandResult, encodeCommandCall } from "../../host/abi/abi-codec.js";
import { CrdtOpKind, LwwClockKind, StreamEvent } from "../../host/abi/replicated-abi.js";
import { createCrdt, encodeCrdtState, type AnyCrdt, type CrdtType } from "../../host/crdt/index.js";
import { applyCrdtOps } from "../../host/entities/replicated-ops.js";
import { crdtValueToWire } from "../../host/entities/replicated-value.js";
import { lookupType } from "../../host/proto/proto-root.js";

const bytes = (s: string) => new TextEncoder().encode(s);

/** Ops as a guest sends them: encoded in a CommandResult, decoded by the host's codec. */
function ops(...list: object[]) {
  const type = lookupType("keystate.abi.CommandResult");
  return decodeCommandResult(type.encode(type.fromObject({ crdtOps: list })).finish()).replicated.ops;
}

function refusedUnchanged(t: import("ava").ExecutionContext, crdt: AnyCrdt, list: ReturnType<typeof ops>, message: RegExp): void {
  const before = encodeCrdtState(crdt);
  const working = crdt.clone();
  const err = t.throws(() => applyCrdtOps(working, list));
  t.is((err as { code?: string }).code, "INVALID_REQUEST");
  t.regex(err!.message, message);
  t.deepEqual(encodeCrdtState(crdt), before);
}

test("each type's ops change it as host/crdt defines", (t) => {
  const counter = createCrdt("PNCounter", "n1");
  applyCrdtOps(counter, ops({ kind: CrdtOpKind.INCREMENT, amount: 5 }, { kind: CrdtOpKind.INCREMENT, amount: -2 }, { kind: CrdtOpKind.DECREMENT, amount: 1 }));
  t.is(counter.value(), 2n, "a negative PNCounter increment decrements");

  const set = createCrdt("ORSet", "n1");
  applyCrdtOps(set, ops({ kind: CrdtOpKind.ADD, element: bytes("b") }, { kind: CrdtOpKind.ADD, element: bytes("a") }, { kind: CrdtOpKind.REMOVE, element: bytes("b") }));
  t.deepEqual(set.value(), [bytes("a")]);

  const register = createCrdt("LWWRegister", "n1");
  applyCrdtOps(register, ops({ kind: CrdtOpKind.SET, element: bytes("x"), clock: LwwClockKind.CUSTOM, customClock: 10 }));
  applyCrdtOps(register, ops({ kind: CrdtOpKind.SET, element: bytes("old"), clock: LwwClockKind.CUSTOM, customClock: 3 }));
  t.deepEqual(register.value(), bytes("x"), "a write with an older custom clock loses");

  const flag = createCrdt("Flag", "n1");
  applyCrdtOps(flag, ops({ kind: CrdtOpKind.ENABLE }));
  t.true(flag.value());

  const vote = createCrdt("Vote", "n1");
  applyCrdtOps(vote, ops({ kind: CrdtOpKind.VOTE, vote: true }));
  t.like(vote.value(), { selfVote: true, votesFor: 1, total: 1 });

  const map = createCrdt("ORMap", "n1");
  applyCrdtOps(map, ops(
    { kind: CrdtOpKind.UPDATE, key: bytes("k"), valueType: "GCounter", ops: [{ kind: CrdtOpKind.INCREMENT, amount: 4 }] },
    { kind: CrdtOpKind.UPDATE, key: bytes("f"), valueType: "Flag" },
  ));
  t.deepEqual(crdtValueToWire(map), {
    type: "ORMap",
    entries: [
      { key: bytes("f"), value: { type: "Flag", flag: false } },
      { key: bytes("k"), value: { type: "GCounter", counter: "4" } },
    ],
  });
});

test("ops a type does not have, bad amounts and wrong map types are refused, leaving the CRDT unchanged", (t) => {
  const cases: Array<[CrdtType, object[], RegExp]> = [
    ["GCounter", [{ kind: CrdtOpKind.INCREMENT, amount: 2 }, { kind: CrdtOpKind.REMOVE, element: bytes("x") }], /a GCounter has no remove operation/],
    ["GCounter", [{ kind: CrdtOpKind.DECREMENT, amount: 1 }], /cannot be decremented/],
    ["GCounter", [{ kind: CrdtOpKind.INCREMENT, amount: -1 }], /negative|must/i],
    ["GSet", [{ kind: CrdtOpKind.ADD, element: bytes("a") }, { kind: CrdtOpKind.REMOVE, element: bytes("a") }], /GSet/],
    ["Flag", [{ kind: CrdtOpKind.VOTE, vote: true }], /a Flag has no vote operation/],
    ["Vote", [{ kind: CrdtOpKind.ADD, element: bytes("a") }], /a Vote has no add operation/],
    ["ORSet", [{ kind: 42 }], /unknown CRDT operation 42/],
    ["ORMap", [{ kind: CrdtOpKind.UPDATE, key: bytes("k"), valueType: "Nope" }], /no valid CRDT type/],
  ];
  for (const [type, list, message] of cases) refusedUnchanged(t, createCrdt(type, "n1"), ops(...list), message);

  // An ORMap key of one type updated as another: refused, the existing value intact.
  const map = createCrdt("ORMap", "n1");
  applyCrdtOps(map, ops({ kind: CrdtOpKind.UPDATE, key: bytes("k"), valueType: "PNCounter", ops: [{ kind: CrdtOpKind.INCREMENT, amount: 1 }] }));
  refusedUnchanged(t, map, ops({ kind: CrdtOpKind.UPDATE, key: bytes("k"), valueType: "Flag", ops: [{ kind: CrdtOpKind.ENABLE }] }), /holds a PNCounter, not a Flag/);
});

test("a CommandCall for a streamed call carries the value, the previous value, the event and the stream count", (t) => {
  const vote = createCrdt("Vote", "n1");
  vote.vote(true);
  const encoded = encodeCommandCall({
    service: "s",
    method: "Monitor",
    entityKey: "k",
    sequence: 0,
    state: undefined,
    payload: new Uint8Array(0),
    replicated: { crdt: crdtValueToWire(vote), streamEvent: StreamEvent.CHANGED, previousCrdt: { type: "Vote", vote: { selfVote: false, votesFor: 0, total: 1 } }, otherStreams: 2 },
  });
  const call = lookupType("keystate.abi.CommandCall").toObject(lookupType("keystate.abi.CommandCall").decode(encoded), { defaults: false }) as any;
  t.deepEqual(call.crdt, { type: "Vote", vote: { selfVote: true, votesFor: 1, total: 1 } });
  t.deepEqual(call.previousCrdt, { type: "Vote", vote: { total: 1 } });
  t.is(call.streamEvent, StreamEvent.CHANGED);
  t.is(call.otherStreams, 2);
});
