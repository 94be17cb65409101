// The hand-written CommandCall encoder (the per-command hot path) must produce exactly the
// bytes of protobufjs's reflection encoder for abi.proto, which the guest decodes.
import test from "ava";
import fc from "fast-check";
import {
  decodeCommandResult,
  decodeCommandResultByReflection,
  decodeCommandResultIn,
  encodeCommandCall,
  encodeCommandCallByReflection,
  type CommandCall,
  type CommandResult,
} from "../../host/abi/abi-codec.js";
import { lookupType } from "../../host/proto/proto-root.js";

// Strings cross protobufjs's 40- and 128-character branches and include lone surrogates.
const text = fc.oneof(
  fc.string({ unit: "binary", maxLength: 200 }),
  fc.string({ unit: "grapheme", maxLength: 60 }),
  fc.string({ maxLength: 10 }),
  fc.constantFrom("", "keystate.examples.counter.Counter", "Increase", "\ud800", "a\udc00b", "x".repeat(39), "é".repeat(40), "y".repeat(128)),
);
const bytes = fc.uint8Array({ maxLength: 400 });
const plainCall: fc.Arbitrary<CommandCall> = fc.record({
  service: text,
  method: text,
  entityKey: text,
  sequence: fc.oneof(fc.nat(300), fc.maxSafeNat(), fc.integer(), fc.constantFrom(0, 2 ** 31, 2 ** 32, 2 ** 53 - 1)),
  state: fc.option(bytes, { nil: undefined }),
  payload: bytes,
});

test("encodeCommandCall equals the reflection encoder byte for byte on random non-replicated calls", (t) => {
  const details = fc.check(
    fc.property(plainCall, (call) => Buffer.from(encodeCommandCall(call)).equals(Buffer.from(encodeCommandCallByReflection(call)))),
    { numRuns: 5000 },
  );
  t.false(details.failed, fc.defaultReportMessage(details) ?? "property failed");
  t.is(details.numRuns, 5000);
});

test("the encoded CommandCall decodes to the call's fields", (t) => {
  const commandCall = lookupType("keystate.abi.CommandCall");
  const call: CommandCall = { service: "s.Svc", method: "Do", entityKey: "k-é", sequence: 2 ** 40 + 3, state: undefined, payload: new Uint8Array([1, 2, 3]) };
  const decoded = commandCall.toObject(commandCall.decode(encodeCommandCall(call)), { longs: Number, defaults: true, bytes: Array }) as Record<string, unknown>;
  t.like(decoded, { service: "s.Svc", method: "Do", entityKey: "k-é", sequence: 2 ** 40 + 3, hasState: false, state: [], payload: [1, 2, 3] });
  const withState = commandCall.toObject(commandCall.decode(encodeCommandCall({ ...call, state: new Uint8Array(0) })), { defaults: true }) as Record<string, unknown>;
  t.is(withState.hasState, true);
});

// ---- The hand-written CommandResult decoder against protobufjs's reflection decoder.

const commandResultType = lookupType("keystate.abi.CommandResult");
const int64 = fc.oneof(fc.integer({ min: -300, max: 300 }), fc.maxSafeInteger(), fc.constantFrom(0, -(2 ** 53) + 1, 2 ** 40));
const enumValue = fc.oneof(fc.nat(3), fc.integer({ min: -5, max: 20 }));
const serviceCall = fc.record({ service: text, method: text, payload: bytes }, { requiredKeys: [] });
const { crdtOp } = fc.letrec<{ crdtOp: Record<string, unknown> }>((tie) => ({
  crdtOp: fc.record(
    {
      kind: enumValue,
      amount: int64,
      element: bytes,
      vote: fc.boolean(),
      clock: enumValue,
      customClock: int64,
      key: bytes,
      valueType: text,
      ops: fc.array(tie("crdtOp"), { maxLength: 2, depthIdentifier: "ops" }),
    },
    { requiredKeys: [] },
  ),
}));
const resultObject = fc.record(
  {
    reply: bytes,
    failure: fc.record({ code: fc.nat(20), message: text }, { requiredKeys: [] }),
    events: fc.array(fc.record({ type: text, payload: bytes }, { requiredKeys: [] }), { maxLength: 4 }),
    state: bytes,
    stateAction: enumValue,
    forward: serviceCall,
    sideEffects: fc.array(fc.record({ call: serviceCall, synchronous: fc.boolean() }, { requiredKeys: [] }), { maxLength: 3 }),
    crdtOps: fc.array(crdtOp, { maxLength: 3 }),
    writeConsistency: enumValue,
    streamSend: fc.boolean(),
    endStream: fc.boolean(),
  },
  { requiredKeys: [] },
);
// A plain Uint8Array, as the guest's output is (protobufjs's Writer gives a Buffer, and both
// decoders return views of their input).
const encodedResult = resultObject.map((object) => Uint8Array.from(commandResultType.encode(commandResultType.fromObject(object)).finish()));

/**
 * The reflection path's result in the hand-written decoder's terms: its failure is a protobufjs
 * message (defaults on the prototype) and its forward a spread of one (absent strings missing).
 */
function normalised(result: CommandResult): CommandResult {
  const { failure, forward } = result;
  return {
    ...result,
    failure: failure && { code: failure.code, message: failure.message },
    forward: forward && { service: forward.service ?? "", method: forward.method ?? "", payload: forward.payload },
  };
}

/** Either decoder's outcome: the result, or that it threw. */
function outcome(decode: (bytes: Uint8Array) => CommandResult, input: Uint8Array): CommandResult | "threw" {
  try {
    return decode(input);
  } catch {
    return "threw";
  }
}

test("decodeCommandResult equals the reflection decoder on random CommandResults", (t) => {
  let decoded = 0;
  const details = fc.check(
    // Strings with lone surrogates encode as invalid UTF-8, which both decoders reject.
    fc.property(encodedResult, (input) => {
      const expected = outcome(decodeCommandResultByReflection, input);
      if (expected !== "threw") decoded++;
      return t.deepEqual(outcome(decodeCommandResult, input), expected === "threw" ? expected : normalised(expected));
    }),
    { numRuns: 3000 },
  );
  t.false(details.failed, fc.defaultReportMessage(details) ?? "property failed");
  t.true(decoded > 1000, `only ${decoded} of 3000 results were valid`);
});

const corrupted = fc
  .tuple(encodedResult, fc.array(fc.tuple(fc.nat(), fc.nat(255)), { maxLength: 3 }), fc.option(fc.nat(), { nil: undefined }))
  .map(([input, flips, cut]) => {
    const bytes = Uint8Array.from(input);
    for (const [at, value] of flips) if (bytes.length > 0) bytes[at % bytes.length] = value;
    return cut === undefined || bytes.length === 0 ? bytes : bytes.subarray(0, cut % bytes.length);
  });

test("decodeCommandResult agrees with the reflection decoder on corrupted bytes, throwing when it throws", (t) => {
  const details = fc.check(
    fc.property(corrupted, (input) => {
      const expected = outcome(decodeCommandResultByReflection, input);
      return t.deepEqual(outcome(decodeCommandResult, input), expected === "threw" ? expected : normalised(expected));
    }),
    { numRuns: 3000 },
  );
  t.false(details.failed, fc.defaultReportMessage(details) ?? "property failed");
});

test("decodeCommandResultIn reads exactly its range of a larger memory, as decodeCommandResult reads that range alone", (t) => {
  // Bytes around the range (as in guest memory) must change nothing: a truncated result stays
  // truncated even when the bytes after it would complete it.
  const placed = fc.tuple(fc.oneof(encodedResult, corrupted), bytes, bytes);
  const details = fc.check(
    fc.property(placed, ([input, before, after]) => {
      const memory = new Uint8Array(before.length + input.length + after.length);
      memory.set(before, 0);
      memory.set(input, before.length);
      memory.set(after, before.length + input.length);
      const inPlace = outcome((m) => decodeCommandResultIn(m, before.length, before.length + input.length), memory);
      return t.deepEqual(inPlace, outcome(decodeCommandResult, input));
    }),
    { numRuns: 3000 },
  );
  t.false(details.failed, fc.defaultReportMessage(details) ?? "property failed");
});

test("decodeCommandResult throws on malformed bytes", (t) => {
  // One top-level field each, so every proper prefix ends inside it.
  for (const object of [{ events: [{ type: "e.Ev", payload: [4] }] }, { failure: { code: 3, message: "no" } }, { sideEffects: [{ call: { service: "s", payload: [1] } }] }]) {
    const valid = commandResultType.encode(object).finish();
    t.notThrows(() => decodeCommandResult(valid));
    for (let cut = 1; cut < valid.length; cut++) t.throws(() => decodeCommandResult(valid.subarray(0, cut)), undefined, `cut at ${cut}`);
  }
  t.throws(() => decodeCommandResult(new Uint8Array([0x0a, 0x05, 1])), undefined, "length past the end");
  t.throws(() => decodeCommandResult(new Uint8Array([0x1a, 0x02, 0x0a, 0x05])), undefined, "sub-message overruns its length");
  t.throws(() => decodeCommandResult(new Uint8Array([0x0f])), undefined, "wire type 7");
  t.throws(() => decodeCommandResult(new Uint8Array([0x00])), undefined, "field number 0");
  t.throws(() => decodeCommandResult(new Uint8Array([0x12, 0x02, 0x12, 0x01])), undefined, "truncated string in a failure");
  t.throws(() => decodeCommandResult(new Uint8Array([0x12, 0x03, 0x12, 0x01, 0xff])), undefined, "invalid UTF-8");
  t.throws(() => decodeCommandResult(new Uint8Array([0x28, 0xff])), undefined, "truncated varint");
});
