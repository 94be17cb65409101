// The hand-written CommandCall encoder (the per-command hot path) must produce exactly the
// bytes of protobufjs's reflection encoder for abi.proto, which the guest decodes.
import test from "ava";
import fc from "fast-check";
import { encodeCommandCall, encodeCommandCallByReflection, type CommandCall } from "../../host/abi/abi-codec.js";
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
