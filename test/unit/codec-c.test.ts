// guest-sdk-c's generated protobuf code and its value and action models, on the wire-c fixture
// (test/fixtures/wire-c): random messages of every field shape go through a C action that
// decodes and re-encodes them and must come back equal (protobufjs on the other side); a
// value entity stores, replaces and deletes one. Needs the C toolchain (see build-c.test.ts).
import test from "ava";
import fc from "fast-check";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import protobuf from "protobufjs";
import { GuestInstance } from "../../host/abi/guest-instance.js";
import { compileModule } from "../../host/runtime/loaded-module.js";
import { DEFAULT_GUEST_LIMITS } from "../../host/runtime/guest-limits.js";
import { useBuiltFixture } from "../helpers/fixture-build.js";
import { writeLeb } from "../helpers/wasm-sections.js";

const wasmPath = useBuiltFixture(test, "wire-c");

// The fixture's proto for protobufjs, without the keystate option it does not need.
const protoText = readFileSync(join(import.meta.dirname, "..", "fixtures", "wire-c", "proto", "wire.proto"), "utf8")
  .replace('import "keystate/options.proto";', "")
  .replace(" [(keystate.entity_key) = true]", "")
  .replace(" [(keystate.entity_key) = true]", "");
const root = protobuf.parse(protoText, { keepCase: true }).root;
const Everything = root.lookupType("wiretest.Everything");
const Key = root.lookupType("wiretest.Key");
const asObject = (type: protobuf.Type, bytes: Uint8Array) =>
  type.toObject(type.decode(bytes), { longs: String, enums: Number, bytes: String, defaults: true, arrays: true, oneofs: true });

async function guest(logs: string[] = []): Promise<GuestInstance> {
  const loaded = await compileModule(readFileSync(wasmPath()), 0, { ...DEFAULT_GUEST_LIMITS });
  return new GuestInstance(loaded.compiled, (level, message) => logs.push(`${level} ${message}`), loaded.limits);
}

const int64 = fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }).map(String);
const uint64 = fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }).map(String);
const int32 = fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 });
const uint32 = fc.integer({ min: 0, max: 2 ** 32 - 1 });
const text = fc.string({ unit: "binary", maxLength: 20 });
const bytes = fc.uint8Array({ maxLength: 20 });
const double = fc.double({ noNaN: true });
const float = fc.float({ noNaN: true });
const { inner } = fc.letrec((tie) => ({
  inner: fc.record(
    { label: text, values: fc.array(int64, { maxLength: 4 }), child: fc.option(tie("inner"), { nil: undefined, depthSize: "small" }) },
    { requiredKeys: ["label", "values"] },
  ),
}));
const everything = fc.record(
  {
    key: text, d: double, f: float, i64: int64, u64: uint64, i32: int32, fx64: uint64, fx32: uint32, b: fc.boolean(), s: text, by: bytes,
    u32: uint32, colour: fc.constantFrom(0, 1, 2), sfx32: int32, sfx64: int64, si32: int32, si64: int64,
    r_i32: fc.array(int32, { maxLength: 5 }), r_d: fc.array(double, { maxLength: 3 }), r_s: fc.array(text, { maxLength: 3 }),
    r_by: fc.array(bytes, { maxLength: 3 }), inners: fc.array(inner, { maxLength: 3 }), inner, opt: int32,
    r_unpacked: fc.array(int64, { maxLength: 4 }), colours: fc.array(fc.constantFrom(0, 1, 2), { maxLength: 4 }),
    r_b: fc.array(fc.boolean(), { maxLength: 4 }), r_fx32: fc.array(uint32, { maxLength: 4 }), default: int32,
    text, number: int64, nested: inner,
  },
  { requiredKeys: [] },
).map((m) => {
  // One oneof member at most, as a real sender writes.
  const members = (["text", "number", "nested"] as const).filter((k) => k in m);
  for (const k of members.slice(1)) delete (m as Record<string, unknown>)[k];
  return m;
});

test("random messages of every field shape survive the C decode and re-encode unchanged", async (t) => {
  const g = await guest();
  fc.assert(
    fc.property(everything, (message) => {
      const request = Everything.encode(Everything.fromObject(message)).finish();
      const result = g.command({ service: "wiretest.Echo", method: "Echo", entityKey: "", sequence: 0, state: undefined, payload: request });
      if (result.failure) throw new Error(`failed: ${result.failure.message}`);
      t.deepEqual(asObject(Everything, result.reply), asObject(Everything, request));
    }),
    { numRuns: 300 },
  );
});

test("the C codec: defaults are not written, packed and unpacked repeated scalars are both read, bad input is refused", async (t) => {
  const g = await guest();
  const echo = (payload: Uint8Array) => g.command({ service: "wiretest.Echo", method: "Echo", entityKey: "", sequence: 0, state: undefined, payload });
  // Explicit defaults in, nothing out (proto3); `optional` keeps its presence even at 0.
  t.deepEqual([...echo(Everything.encode(Everything.fromObject({ i32: 0, s: "", b: false })).finish()).reply], []);
  t.deepEqual([...echo(Everything.encode(Everything.fromObject({ opt: 0 })).finish()).reply], [...tag(24, 0), 0]);
  // r_unpacked (25) sent packed comes back unpacked; r_i32 (18) sent unpacked comes back packed.
  const mixed = Uint8Array.from([...tag(25, 2), 3, 1, 2, 3, ...tag(18, 0), 7, ...tag(18, 0), 8]);
  t.deepEqual([...echo(mixed).reply], [...tag(18, 2), 2, 7, 8, ...tag(25, 0), 1, ...tag(25, 0), 2, ...tag(25, 0), 3]);
  // Unknown fields are skipped.
  t.deepEqual([...echo(Uint8Array.from([...tag(99, 0), 5, ...tag(10, 2), 1, 0x61])).reply], [...tag(10, 2), 1, 0x61]);
  const malformed = [
    [...tag(1, 2), 5, 0x61], // a length past the end
    [...tag(4, 0), 0xff], // a truncated varint
    [...tag(2, 1), 1, 2], // a truncated fixed64
    [...tag(22, 2), 2, ...tag(1, 2), 5], // a nested message whose string overruns it
    [0x00], // field number 0
    [...tag(5, 3)], // a group
  ];
  for (const bad of malformed) t.is(echo(Uint8Array.from(bad)).failure?.code, 3, `malformed ${bad} is INVALID_ARGUMENT`);
  // Nesting: 100 levels below the request decode, more are refused (not a stack overflow).
  t.is(echo(nested(100)).failure, undefined);
  t.deepEqual(echo(nested(100)).reply, nested(100));
  t.like(echo(nested(101)).failure, { code: 3 });
  t.like(echo(nested(20_000)).failure, { code: 3 });
});

/**
 * An `Everything` whose `inner` (23) holds `depth` levels of `Inner`, each the `child` (3) of the
 * one above, the last with a `label` (1). Written outside in, after the lengths are known inside
 * out, so a deep one costs linear time (wrapping a copy per level is quadratic: ~50 s at 20,000).
 */
function nested(depth: number): Uint8Array {
  const leaf = [...tag(1, 2), 4, ...Buffer.from("leaf")];
  const lengths = [leaf.length]; // lengths[i]: the body of the level i + 1 from the bottom
  for (let i = 1; i < depth; i++) lengths.push(tag(3, 2).length + writeLeb(lengths[i - 1]).length + lengths[i - 1]);
  const out: number[] = [...tag(23, 2), ...writeLeb(lengths[depth - 1])];
  for (let i = depth - 2; i >= 0; i--) out.push(...tag(3, 2), ...writeLeb(lengths[i]));
  out.push(...leaf);
  return Uint8Array.from(out);
}

/** The varint of a field's tag. */
function tag(field: number, wireType: number): number[] {
  return writeLeb((field << 3) | wireType);
}

test("an action's failure and its log line reach the host", async (t) => {
  const logs: string[] = [];
  const g = await guest(logs);
  const payload = Everything.encode(Everything.fromObject({ i32: 9, s: "not now: ünïcode" })).finish();
  const result = g.command({ service: "wiretest.Echo", method: "Fail", entityKey: "", sequence: 0, state: undefined, payload });
  t.deepEqual(result.failure, { code: 9, message: "not now: ünïcode" });
  t.deepEqual(logs, ["2 failing with 9: not now: ünïcode"]);
});

test("a C value entity stores, replaces and deletes its value", async (t) => {
  const g = await guest();
  const call = (method: string, payload: Uint8Array, state: Uint8Array | undefined) =>
    g.command({ service: "wiretest.Store", method, entityKey: "k1", sequence: 0, state, payload });
  const first = Everything.encode(Everything.fromObject({ key: "k1", s: "one", inners: [{ label: "x", values: ["-1"] }] })).finish();
  const put = call("Put", first, undefined);
  t.is(put.failure, undefined);
  t.is(put.stateAction, 1);
  t.deepEqual(asObject(Everything, put.reply), asObject(Everything, new Uint8Array()), "the value before: the default");
  t.deepEqual(asObject(Everything, put.state), asObject(Everything, first));
  const got = call("Get", Key.encode({ key: "k1" }).finish(), put.state);
  t.is(got.stateAction, 0, "a read keeps the value");
  t.deepEqual(asObject(Everything, got.reply), asObject(Everything, first));
  const deleted = call("Delete", Key.encode({ key: "k1" }).finish(), put.state);
  t.is(deleted.stateAction, 2);
  t.deepEqual(asObject(Key, deleted.reply), { key: "k1" });
  t.is(call("Get", Uint8Array.from([0x0a, 0x09]), undefined).failure?.code, 3);
});
