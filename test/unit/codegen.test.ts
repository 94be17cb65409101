// The message pipeline end to end: .proto --buf--> FileDescriptorSet --generateMessages-->
// AssemblyScript classes --asc--> wasm, checked for wire compatibility with protobufjs
// and for never trapping on malformed bytes.
import test from "ava";
import fc from "fast-check";
import protobuf from "protobufjs";
import descriptor, { type IFileDescriptorSet } from "protobufjs/ext/descriptor.js";
import assert from "node:assert/strict";
import { createRequire } from "node:module";
import { mkdir, writeFile } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { compileProtos } from "../../host/build/buf.js";
import { generateMessages, type GeneratedMessages } from "../../host/build/codegen-messages.js";
import { message as arbitraryMessage } from "../fixtures/codegen/pbjs-arbitrary.js";
import { bumpExpected, canonical } from "../fixtures/codegen/pbjs-expect.js";
import { compileHarness, instantiate, Kind } from "../fixtures/codegen/wasm-harness.js";

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const FIXTURE = join(REPO, "test/fixtures/codegen");
const ROOTS = [join(FIXTURE, "proto"), join(REPO, "proto")];
const OWN_FILE = "codegen/fixture.proto";
// Relative to assembly/generated/, where the generated file is written.
const SDK_IMPORT = "../../../../../guest-sdk/assembly/proto/index";

interface Fixture {
  set: IFileDescriptorSet;
  generated: GeneratedMessages;
  module: WebAssembly.Module;
  root: protobuf.Root;
}

let fixture: Fixture;

// Compiled once for the whole file: buf, codegen and asc take a few seconds together.
test.before(async () => {
  const bytes = await compileProtos({ roots: ROOTS, files: [OWN_FILE] });
  const set = descriptor.FileDescriptorSet.decode(bytes) as unknown as IFileDescriptorSet;
  const generated = generateMessages(set, { files: [OWN_FILE], sdkImport: SDK_IMPORT });
  await mkdir(join(FIXTURE, "assembly/generated"), { recursive: true });
  await writeFile(join(FIXTURE, "assembly/generated/messages.ts"), generated.source);
  const module = await compileHarness(join(FIXTURE, "assembly/harness.ts"));
  fixture = { set, generated, module, root: loadWithProtobufjs() };
});

// protobufjs parses the same .proto files itself, so the two sides share no parser.
function loadWithProtobufjs(): protobuf.Root {
  const protobufjsDir = dirname(createRequire(import.meta.url).resolve("protobufjs/package.json"));
  const root = new protobuf.Root();
  root.resolvePath = (_origin, target) => {
    if (target in protobuf.common) return target;
    if (target.startsWith("google/protobuf/")) return join(protobufjsDir, target);
    return target.startsWith("keystate/") ? join(REPO, "proto", target) : join(FIXTURE, "proto", target);
  };
  root.loadSync(OWN_FILE);
  root.resolveAll();
  return root;
}

const type = (name: string) => fixture.root.lookupType(name);
const OBJECT_OPTIONS: protobuf.IConversionOptions = { longs: String, bytes: String, defaults: true, arrays: true, objects: true };

const decodeToObject = (t: protobuf.Type, bytes: Uint8Array) => canonical(t.toObject(t.decode(bytes), OBJECT_OPTIONS));
const hex = (bytes: Uint8Array | null) => (bytes ? Buffer.from(bytes).toString("hex") : null);
const bytesOf = (h: string) => new Uint8Array(Buffer.from(h.replace(/\s+/g, ""), "hex"));

test("compileProtos returns the module's files with all their imports and no source info", (t) => {
  const names = fixture.set.file.map((f) => f.name);
  for (const expected of [
    OWN_FILE,
    "codegen/other/other.proto",
    "codegen/legacy.proto",
    "google/protobuf/empty.proto",
    "keystate/options.proto",
    "google/protobuf/descriptor.proto",
  ]) {
    t.true(names.includes(expected), `${expected} missing from ${names.join(", ")}`);
  }
  t.false(names.includes("keystate/abi.proto"), "files nobody imports stay out");
  t.true(fixture.set.file.every((f) => f.sourceCodeInfo == null));
});

test("compileProtos turns a syntax error into an Error naming the file and line", async (t) => {
  const err = await t.throwsAsync(compileProtos({ roots: [join(FIXTURE, "broken"), join(REPO, "proto")], files: ["broken.proto"] }));
  t.regex(err!.message, /broken[/\\]broken\.proto:9:\d+:/);
});

test("compileProtos refuses a file that is not under the first root", async (t) => {
  const err = await t.throwsAsync(compileProtos({ roots: ROOTS, files: ["codegen/missing.proto"] }));
  t.regex(err!.message, /missing\.proto does not exist/);
});

test("generateMessages names classes and members as documented", (t) => {
  const { classNames, source } = fixture.generated;
  t.is(classNames.get("codegen.test.Scalars"), "Scalars");
  t.is(classNames.get("codegen.test.Outer.Inner"), "Outer_Inner");
  t.is(classNames.get("codegen.test.Outer.Inner.Kind"), "Outer_Inner_Kind");
  t.is(classNames.get("codegen.test.Item"), "CodegenTest_Item");
  t.is(classNames.get("codegen.other.Item"), "CodegenOther_Item");
  t.is(classNames.get("google.protobuf.Empty"), "Empty");
  t.is(classNames.get("codegen.legacy.Legacy"), "Legacy");
  // Imported but never referenced by a field or method: no class.
  t.false([...classNames.keys()].some((n) => n.startsWith("google.protobuf.") && n !== "google.protobuf.Empty"));
  t.false(source.includes("StringToInt32Entry"), "map entries become Map, not classes");
  t.regex(source, /static readonly TYPE: string = "codegen\.test\.Everything";/);
  t.regex(source, /typeName_: string = "";/, "a field called type_name must not hide typeName()");
  t.regex(source, /fLargeNumber: i32 = 0;/);
  t.regex(source, /count: i32 = <i32>7;\n\s+hasCount: bool = false;/, "proto2 default and presence");
});

test("random messages survive protobufjs -> AS -> protobufjs", (t) => {
  const harness = instantiate(fixture.module);
  const everything = type("codegen.test.Everything");
  fc.assert(
    fc.property(arbitraryMessage(everything, 3), (plain) => {
      const wire = everything.encode(everything.fromObject(plain)).finish();
      const back = harness.roundtrip(Kind.Everything, wire);
      assert.ok(back, "the guest refused protobufjs output");
      assert.deepStrictEqual(decodeToObject(everything, back), decodeToObject(everything, wire));
    }),
    { numRuns: 200 },
  );
  t.pass();
});

test("decoded values are the values protobufjs sent (checked by changing each one in AS)", (t) => {
  const harness = instantiate(fixture.module);
  for (const [kind, name] of [
    [Kind.Scalars, "codegen.test.Scalars"],
    [Kind.Repeated, "codegen.test.Repeated"],
  ] as const) {
    const msgType = type(name);
    fc.assert(
      fc.property(arbitraryMessage(msgType, 1), (plain) => {
        const wire = msgType.encode(msgType.fromObject(plain)).finish();
        const bumped = harness.bump(kind, wire);
        assert.ok(bumped, "the guest refused protobufjs output");
        const sent = msgType.toObject(msgType.decode(wire), OBJECT_OPTIONS);
        assert.deepStrictEqual(decodeToObject(msgType, bumped), canonical(bumpExpected(msgType, sent)));
      }),
      { numRuns: 100 },
    );
  }
  t.pass();
});

test("clearFields() leaves a decoded message as a new one: it encodes to nothing, and decoding into it again gives what a new message gets", (t) => {
  const harness = instantiate(fixture.module);
  const everything = type("codegen.test.Everything");
  fc.assert(
    fc.property(arbitraryMessage(everything, 3), (plain) => {
      const wire = everything.encode(everything.fromObject(plain)).finish();
      assert.deepStrictEqual(harness.clearedRoundtrip(Kind.Everything, wire), harness.roundtrip(Kind.Everything, wire));
    }),
    { numRuns: 100 },
  );
  // Maps, a oneof with a present zero, explicit presence, nested trees.
  for (const [kind, input] of [[Kind.Maps, "0a050a01611001"], [Kind.Choice, "2200 0800"], [Kind.Choice, "3000 3a00"], [Kind.Tree, ""]] as const) {
    const bytes = bytesOf(input);
    t.deepEqual(harness.clearedRoundtrip(kind, bytes), harness.roundtrip(kind, bytes), `kind ${kind}, ${input}`);
  }
});

test("extreme scalar values round-trip exactly", (t) => {
  const harness = instantiate(fixture.module);
  const scalars = type("codegen.test.Scalars");
  const plain = {
    fDouble: -0,
    fFloat: Number.NaN,
    fInt64: "-9223372036854775808",
    fUint64: "18446744073709551615",
    fInt32: -2147483648,
    fFixed64: "18446744073709551615",
    fFixed32: 4294967295,
    fBool: true,
    fString: "ü€𝄞\u0000",
    fBytes: new Uint8Array([0, 255]),
    fUint32: 4294967295,
    fEnum: -1,
    fSfixed32: -1,
    fSfixed64: "-1",
    fSint32: -2147483648,
    fSint64: "-9223372036854775808",
    fLargeNumber: 1,
  };
  const wire = scalars.encode(scalars.fromObject(plain)).finish();
  const back = harness.roundtrip(Kind.Scalars, wire);
  t.is(hex(back), hex(wire), "same field order and encodings as protobufjs");
  const obj = scalars.toObject(scalars.decode(back!), { longs: String });
  t.true(Object.is(obj.fDouble, -0), "-0.0 is not the default and is written");
  t.true(Number.isNaN(obj.fFloat));
  t.is(obj.fInt64, "-9223372036854775808");
  t.is(obj.fString, "ü€𝄞\u0000");
});

test("a message built with the generated API decodes in protobufjs", (t) => {
  const everything = type("codegen.test.Everything");
  const obj = everything.toObject(everything.decode(instantiate(fixture.module).buildSample()), {
    longs: String,
    bytes: Array,
  });
  t.like(obj.scalars, {
    fInt32: -5,
    fInt64: "-9007199254740993",
    fUint64: "18446744073709551615",
    fString: "héllo 👋",
    fEnum: -1,
    fBytes: [1, 0, 255],
  });
  t.true(Object.is(obj.scalars.fFloat, -0));
  t.deepEqual(obj.repeated.rInt32, [1, -1]);
  t.deepEqual(obj.repeated.unpackedInt32, [7]);
  t.deepEqual(obj.repeated.rString, ["a", ""]);
  t.deepEqual(Object.keys(obj.maps.stringToInt32), ["b", "a"], "entries in insertion order");
  t.deepEqual(obj.maps.uint32ToMessage, { 9: {} });
  t.is(obj.choice.text, "picked");
  t.is(obj.choice.maybeInt, 0, "a present optional is written even when zero");
  t.is(obj.choice.number, undefined);
  t.is(obj.outer.inners[0].kind, 1);
  t.is(obj.tree.children[0].label, "leaf");
  t.deepEqual(obj.tree.named, { self: {} });
  t.is(obj.otherItem.delta, "-3");
});

test("numeric repeated fields: both forms are read; proto3 writes packed unless [packed = false]", (t) => {
  const harness = instantiate(fixture.module);
  // r_int32 (5) unpacked twice, unpacked_int32 (19) packed with 1 and 2: the opposite of canonical.
  const input = bytesOf("2801 2802 9a01 02 01 02");
  t.is(hex(harness.roundtrip(Kind.Repeated, input)), "2a020102" + "980101" + "980102");
  const legacy = type("codegen.legacy.Legacy");
  const wire = legacy.encode(legacy.fromObject({ flag: false, values: [1, 2], packedValues: [-1, 1] })).finish();
  const everything = type("codegen.test.Everything");
  const outer = everything.encode(everything.fromObject({ legacy: legacy.toObject(legacy.decode(wire)) })).finish();
  const back = harness.roundtrip(Kind.Everything, outer)!;
  // Everything.legacy (11) wraps: flag (3) always, values (4) unpacked, packed_values (5) packed.
  t.is(hex(back), "5a0a" + "1800" + "2001" + "2002" + "2a020102");
});

test("maps: entries keep insertion order; a missing key or value is the default", (t) => {
  const harness = instantiate(fixture.module);
  const input = bytesOf("0a050a016210020a050a01611001");
  t.is(hex(harness.roundtrip(Kind.Maps, input)), hex(input));
  // An entry with neither key nor value becomes "" -> 0, written out in full.
  t.is(hex(harness.roundtrip(Kind.Maps, bytesOf("0a00"))), "0a040a001000");
});

test("defaults are not written; explicit presence is", (t) => {
  const harness = instantiate(fixture.module);
  // f_int32 = 0, f_string = "", f_bool = false, f_double = 0.0, f_enum = 0, all on the wire.
  const zeros = bytesOf("2800 4a00 4000 09 0000000000000000 7000");
  t.is(hex(harness.roundtrip(Kind.Scalars, zeros)), "");
  // maybe_int = 0 (6) and maybe_text = "" (7): present, so kept.
  t.is(hex(harness.roundtrip(Kind.Choice, bytesOf("3000 3a00"))), "30003a00");
  t.is(harness.inspectChoice(bytesOf("3000")), 1 << 13);
  t.is(harness.inspectChoice(bytesOf("")), 0);
});

test("oneof: the last member read wins and clears the others", (t) => {
  const harness = instantiate(fixture.module);
  // number = 7, then text = "x": only text remains.
  t.is(harness.inspectChoice(bytesOf("0807 1201 78")), 2 | (1 << 9));
  t.is(hex(harness.roundtrip(Kind.Choice, bytesOf("0807 1201 78"))), "120178");
  // scalars {}, then flag = false, then nothing {}.
  t.is(harness.inspectChoice(bytesOf("1a00 2800 2200")), 4 | (1 << 11));
  // nothing {}, then number = 0: a present zero is still the chosen member.
  t.is(harness.inspectChoice(bytesOf("2200 0800")), 1 | (1 << 8));
  t.is(hex(harness.roundtrip(Kind.Choice, bytesOf("2200 0800"))), "0800");
});

test("unknown fields and values of the wrong wire type are skipped", (t) => {
  const harness = instantiate(fixture.module);
  // f_int32 = 1, then unknown fields 100 (varint, fixed64, bytes, fixed32), then f_int32 as a string.
  const input = bytesOf("2801 a00601 a106 0102030405060708 a20602 6869 a506 01020304 2a01 7a");
  t.is(hex(harness.roundtrip(Kind.Scalars, input)), "2801");
});

test("malformed input is refused without trapping", (t) => {
  const harness = instantiate(fixture.module);
  const cases: Record<string, string> = {
    "truncated varint": "28ff",
    "overlong varint (11 bytes)": "28 ffffffffffffffffffff 01",
    "length past the end": "4a05 6162",
    "nested message length past the end": "0a05 2801",
    "nested message overrunning its length": "0a01 28ff01",
    "wire type 7": "2f",
    "wire type 6": "2e",
    "group start (wire type 3)": "0b",
    "group end (wire type 4)": "0c",
    "field number 0": "0001",
    "truncated fixed64": "31 010203",
    "truncated fixed32": "3d 0102",
    "packed run with a truncated element": "1204 2a02 01ff",
    "tag beyond 32 bits": "f8ffffffff7f 00",
  };
  for (const [name, input] of Object.entries(cases)) {
    t.is(harness.roundtrip(Kind.Everything, bytesOf(input)), null, name);
  }
  t.not(harness.roundtrip(Kind.Everything, bytesOf("0a02 2801")), null, "the valid neighbour of these cases decodes");
});

test("nesting deeper than 100 messages is refused; 100 is fine", (t) => {
  const harness = instantiate(fixture.module);
  const nest = (depth: number) => {
    let bytes = new Uint8Array(0);
    for (let i = 0; i < depth; i++) {
      bytes = Uint8Array.from([0x12, ...encodeLength(bytes.length), ...bytes]); // Tree.children (2)
    }
    return bytes;
  };
  t.not(harness.roundtrip(Kind.Tree, nest(100)), null);
  t.is(harness.roundtrip(Kind.Tree, nest(101)), null);
  t.is(harness.roundtrip(Kind.Tree, nest(5000)), null, "no stack overflow either");
});

function encodeLength(n: number): number[] {
  const out: number[] = [];
  for (; n >= 0x80; n >>>= 7) out.push((n & 0x7f) | 0x80);
  out.push(n);
  return out;
}

test("random bytes never trap; whatever decodes re-encodes to a fixed point", (t) => {
  const harness = instantiate(fixture.module);
  const kinds = Object.values(Kind);
  fc.assert(
    fc.property(fc.constantFrom(...kinds), fc.uint8Array({ maxLength: 64 }), (kind, soup) => {
      const once = harness.roundtrip(kind, soup); // a trap would throw here
      if (once === null) return true;
      const twice = harness.roundtrip(kind, once);
      return twice !== null && hex(twice) === hex(once);
    }),
    { numRuns: 2000 },
  );
  t.pass();
});

test("generateMessages reports a file that is not in the set", (t) => {
  const err = t.throws(() => generateMessages(fixture.set, { files: ["nope.proto"], sdkImport: SDK_IMPORT }));
  t.regex(err!.message, /nope\.proto is not in the descriptor set/);
});

// Hand-written descriptors reach corners the fixture does not: clashes with the names the
// generated code relies on, and descriptors the generator must refuse.
const syntheticSet = (syntax: string, fields: IFileDescriptorSet["file"][number]["messageType"]): IFileDescriptorSet => ({
  file: [{ name: "s.proto", package: "syn.pkg", syntax, messageType: fields }],
});
const TYPE_INT32 = 5;
const TYPE_GROUP = 10;
const TYPE_MESSAGE = 11;
const LABEL_OPTIONAL = 1;

test("generateMessages steps around names the generated code needs", (t) => {
  const set = syntheticSet("proto3", [
    { name: "Map", field: [{ name: "self", number: 1, label: LABEL_OPTIONAL, type: TYPE_MESSAGE, typeName: ".syn.pkg.Map" }] },
    {
      name: "Message",
      field: [
        { name: "has_x", number: 1, label: LABEL_OPTIONAL, type: TYPE_INT32 },
        { name: "x", number: 2, label: LABEL_OPTIONAL, type: TYPE_INT32, oneofIndex: 0, proto3Optional: true },
        { name: "merge_from", number: 3, label: LABEL_OPTIONAL, type: TYPE_INT32 },
      ],
      oneofDecl: [{ name: "_x" }],
    },
  ]);
  const { source, classNames } = generateMessages(set, { files: ["s.proto"], sdkImport: "sdk" });
  t.is(classNames.get("syn.pkg.Map"), "SynPkg_Map", "a class called Map would hide the global Map");
  t.is(classNames.get("syn.pkg.Message"), "Message", "the runtime is imported as __pb, so Message is free");
  t.regex(source, /self: SynPkg_Map \| null = null;/);
  t.regex(source, /hasX: i32 = 0;/, "the field keeps its name");
  t.regex(source, /hasX_: bool = false;/, "the presence flag of x yields to the field");
  t.regex(source, /mergeFrom_: i32 = 0;/);
  t.false(/clear_?X|xCase/.test(source), "proto3 optional is not a real oneof");
});

test("generateMessages refuses groups and editions with the field or file named", (t) => {
  const group = syntheticSet("proto2", [{ name: "G", field: [{ name: "old", number: 1, label: LABEL_OPTIONAL, type: TYPE_GROUP }] }]);
  t.throws(() => generateMessages(group, { files: ["s.proto"], sdkImport: "sdk" }), { message: /syn\.pkg\.G\.old is a group/ });
  const editions = syntheticSet("editions", [{ name: "E", field: [] }]);
  t.throws(() => generateMessages(editions, { files: ["s.proto"], sdkImport: "sdk" }), { message: /s\.proto uses editions/ });
});
