// The host reads only the entity-key fields of a request, straight from the wire bytes.
import test from "ava";
import protobuf from "protobufjs";
import { entityKeyReader, keyFieldsOf } from "../../host/proto/entity-key.js";
import { ENTITY_KEY_OPTION } from "../../host/proto/descriptors.js";
import { isKeystateError } from "../../host/errors.js";
import type { IFieldDescriptorProto } from "protobufjs/ext/descriptor.js";

const root = protobuf.parse(`
  syntax = "proto3";
  message Composite { string tenant = 3; int64 order = 1; string note = 2; sint32 shard = 4; uint64 big = 5; }
`).root;
const Composite = root.lookupType("Composite");

const field = (name: string, number: number, type: number, key = true): IFieldDescriptorProto =>
  ({ name, number, type, label: 1, options: key ? { [ENTITY_KEY_OPTION]: true } : {} }) as IFieldDescriptorProto;

test("a single string key is read as is, whatever other fields hold", (t) => {
  const fields = keyFieldsOf("Composite", { field: [field("tenant", 3, 9), field("note", 2, 9, false)] });
  const reader = entityKeyReader("Composite", fields);
  t.is(reader.read(Composite.encode({ tenant: "acme/eu", note: "x", order: 7 }).finish()), "acme/eu");
});

test("composite keys join escaped parts in field-number order, so parts cannot run together", (t) => {
  const fields = keyFieldsOf("Composite", { field: [field("tenant", 3, 9), field("order", 1, 3)] });
  t.deepEqual(fields.map((f) => f.name), ["order", "tenant"]);
  const reader = entityKeyReader("Composite", fields);
  t.is(reader.read(Composite.encode({ tenant: "a/b", order: -5 }).finish()), "-5/a%2Fb");
  t.not(
    reader.read(Composite.encode({ tenant: "b", order: 12 }).finish()),
    reader.read(Composite.encode({ tenant: "2/b", order: 1 }).finish()),
  );
});

test("integer keys: zigzag, 64-bit unsigned, and the last occurrence of a field wins", (t) => {
  const shard = entityKeyReader("Composite", keyFieldsOf("Composite", { field: [field("shard", 4, 17)] }));
  t.is(shard.read(Composite.encode({ shard: -3 }).finish()), "-3");
  const big = entityKeyReader("Composite", keyFieldsOf("Composite", { field: [field("big", 5, 4)] }));
  t.is(big.read(Composite.encode({ big: "18446744073709551615" }).finish()), "18446744073709551615");
  const tenant = entityKeyReader("Composite", keyFieldsOf("Composite", { field: [field("tenant", 3, 9)] }));
  const twice = Buffer.concat([Composite.encode({ tenant: "first" }).finish(), Composite.encode({ tenant: "second" }).finish()]);
  t.is(tenant.read(twice), "second");
});

const malformed: Array<[string, number[], RegExp]> = [
  ["missing key", [0x12, 0x01, 0x61], /tenant \(the entity key\) is missing or empty/],
  ["empty key", [0x1a, 0x00], /missing or empty/],
  ["length past the end", [0x1a, 0x05, 0x61], /runs past the end/],
  ["truncated varint", [0x08, 0xff], /truncated varint/],
  ["wire type 7", [0x0f], /wire type 7/],
  ["key with the wrong wire type", [0x18, 0x01], /wire type 0, expected 2/],
  ["invalid UTF-8 in a string key", [0x1a, 0x02, 0xc3, 0x28], /malformed Composite/],
  ["field number 0", [0x02, 0x00], /field number 0/],
];

for (const [name, bytes, message] of malformed) {
  test(`INVALID_REQUEST for ${name}`, (t) => {
    const reader = entityKeyReader("Composite", keyFieldsOf("Composite", { field: [field("tenant", 3, 9)] }));
    const error = t.throws(() => reader.read(Uint8Array.from(bytes)));
    t.true(isKeystateError(error, "INVALID_REQUEST"));
    t.regex(error!.message, message);
  });
}

test("repeated, float or message key fields are refused at deploy", (t) => {
  for (const bad of [{ ...field("tags", 1, 9), label: 3 }, field("ratio", 1, 2), field("child", 1, 11)]) {
    const error = t.throws(() => keyFieldsOf("Composite", { field: [bad] }));
    t.true(isKeystateError(error, "INVALID_MODULE"));
  }
});
