// messageTemplate (host/proto/message-template.ts): the JSON skeleton of a request message
// the console's Call page starts from, one field kind per row.
import test from "ava";
import type { IFileDescriptorSet } from "protobufjs/ext/descriptor.js";
import { indexDescriptorSet } from "../../host/proto/descriptors.js";
import { messageTemplate } from "../../host/proto/message-template.js";

// FieldDescriptorProto types and labels used below.
const [INT64, INT32, BOOL, STRING, MESSAGE, BYTES, ENUM, UINT64, DOUBLE] = [3, 5, 8, 9, 11, 12, 14, 4, 1];
const OPTIONAL = 1;
const REPEATED = 3;

const set: IFileDescriptorSet = {
  file: [
    {
      name: "shop.proto",
      package: "shop",
      enumType: [{ name: "Color", value: [{ name: "COLOR_UNSPECIFIED", number: 0 }, { name: "RED", number: 1 }] }],
      messageType: [
        {
          name: "Order",
          field: [
            { name: "order_id", number: 1, label: OPTIONAL, type: STRING, jsonName: "orderId" },
            { name: "total_cents", number: 2, label: OPTIONAL, type: INT64 },
            { name: "count", number: 3, label: OPTIONAL, type: INT32 },
            { name: "paid", number: 4, label: OPTIONAL, type: BOOL },
            { name: "receipt", number: 5, label: OPTIONAL, type: BYTES },
            { name: "color", number: 6, label: OPTIONAL, type: ENUM, typeName: ".shop.Color" },
            { name: "size", number: 7, label: OPTIONAL, type: ENUM, typeName: ".shop.Order.Size" },
            { name: "lines", number: 8, label: REPEATED, type: MESSAGE, typeName: ".shop.Line" },
            { name: "address", number: 9, label: OPTIONAL, type: MESSAGE, typeName: ".shop.Address" },
            { name: "tags", number: 10, label: REPEATED, type: MESSAGE, typeName: ".shop.Order.TagsEntry" },
            { name: "placed_at", number: 11, label: OPTIONAL, type: MESSAGE, typeName: ".google.protobuf.Timestamp" },
            { name: "by_card", number: 12, label: OPTIONAL, type: STRING, oneofIndex: 0 },
            { name: "by_cash", number: 13, label: OPTIONAL, type: BOOL, oneofIndex: 0 },
            { name: "note", number: 14, label: OPTIONAL, type: STRING, oneofIndex: 1, proto3Optional: true },
            { name: "weight", number: 15, label: OPTIONAL, type: DOUBLE },
            { name: "parent", number: 16, label: OPTIONAL, type: MESSAGE, typeName: ".shop.Order" },
            { name: "big", number: 17, label: OPTIONAL, type: UINT64 },
          ],
          nestedType: [
            { name: "TagsEntry", options: { mapEntry: true }, field: [{ name: "key", number: 1, type: STRING }, { name: "value", number: 2, type: STRING }] },
          ],
          enumType: [{ name: "Size", value: [{ name: "SMALL", number: 0 }] }],
          oneofDecl: [{ name: "payment" }, { name: "_note" }],
        },
        { name: "Line", field: [{ name: "sku", number: 1, type: STRING }] },
        { name: "Address", field: [{ name: "city", number: 1, type: STRING }, { name: "zip_code", number: 2, type: STRING }] },
      ],
    },
  ],
};

const template = messageTemplate(indexDescriptorSet(set), "shop.Order");

const rows: Array<[string, string, unknown]> = [
  ["the recorded JSON name", "orderId", ""],
  ["64-bit integers as strings (proto3 JSON)", "totalCents", "0"],
  ["unsigned 64-bit too", "big", "0"],
  ["32-bit integers as numbers", "count", 0],
  ["doubles as numbers", "weight", 0],
  ["bools", "paid", false],
  ["bytes as an empty base64 string", "receipt", ""],
  ["an enum by its first value's name", "color", "COLOR_UNSPECIFIED"],
  ["a nested enum", "size", "SMALL"],
  ["repeated fields as []", "lines", []],
  ["nested messages filled in, lowerCamelCase without a recorded name", "address", { city: "", zipCode: "" }],
  ["maps as {}", "tags", {}],
  ["well-known types in their JSON form", "placedAt", "1970-01-01T00:00:00Z"],
  ["only the first member of a oneof", "byCard", ""],
  ["proto3 optional fields (a synthetic oneof) are shown", "note", ""],
  ["a message that contains itself stops there", "parent", {}],
];

for (const [what, field, expected] of rows) {
  test(`template: ${what}`, (t) => {
    t.deepEqual(template[field], expected);
  });
}

test("template: a second member of a oneof is left out (setting two is an error)", (t) => {
  t.false("byCash" in template);
});

test("template: an unknown type is an empty object, not an error", (t) => {
  t.deepEqual(messageTemplate(indexDescriptorSet(set), "shop.Missing"), {});
});
