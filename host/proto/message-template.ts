// A JSON skeleton of a message type (proto3 JSON mapping): every field under its JSON name
// with its default value, so a person calling a method by hand (the console's Call page)
// starts from the right shape instead of the .proto file. Pure: descriptors in, JSON out.
import type { IDescriptorProto, IEnumDescriptorProto, IFieldDescriptorProto } from "protobufjs/ext/descriptor.js";
import { stripLeadingDot, type DescriptorIndex } from "./descriptors.js";

// FieldDescriptorProto.Type numbers (descriptor.proto).
const TYPE_BOOL = 8;
const TYPE_STRING = 9;
const TYPE_GROUP = 10;
const TYPE_MESSAGE = 11;
const TYPE_BYTES = 12;
const TYPE_ENUM = 14;
/** int64, uint64, fixed64, sfixed64, sint64: proto3 JSON writes them as strings. */
const SIXTY_FOUR_BIT = new Set([3, 4, 6, 16, 18]);
const LABEL_REPEATED = 3;

/** Nested messages deeper than this are left as {} (a template is a start, not a document). */
const MAX_DEPTH = 4;

/** Well-known types have their own JSON forms; these are their zero values. */
const WELL_KNOWN: Readonly<Record<string, unknown>> = {
  "google.protobuf.Timestamp": "1970-01-01T00:00:00Z",
  "google.protobuf.Duration": "0s",
  "google.protobuf.FieldMask": "",
  "google.protobuf.Empty": {},
  "google.protobuf.Struct": {},
  "google.protobuf.Value": null,
  "google.protobuf.ListValue": [],
  "google.protobuf.Any": {},
  "google.protobuf.DoubleValue": null,
  "google.protobuf.FloatValue": null,
  "google.protobuf.Int64Value": null,
  "google.protobuf.UInt64Value": null,
  "google.protobuf.Int32Value": null,
  "google.protobuf.UInt32Value": null,
  "google.protobuf.BoolValue": null,
  "google.protobuf.StringValue": null,
  "google.protobuf.BytesValue": null,
};

/** `{ <json name>: <default> }` for every field of `typeName` (nested messages filled in, cycles cut). */
export function messageTemplate(index: DescriptorIndex, typeName: string): Record<string, unknown> {
  return fill(index, typeName, 0, new Set()) as Record<string, unknown>;
}

function fill(index: DescriptorIndex, typeName: string, depth: number, open: Set<string>): unknown {
  if (typeName in WELL_KNOWN) return structuredClone(WELL_KNOWN[typeName]);
  const message = index.messages.get(typeName);
  if (!message || depth > MAX_DEPTH || open.has(typeName)) return {};
  open.add(typeName);
  const json: Record<string, unknown> = {};
  const oneofsSeen = new Set<number>();
  for (const field of message.field ?? []) {
    // Setting two members of one oneof is an error, so only its first member is shown.
    const oneof = field.proto3Optional ? undefined : field.oneofIndex;
    if (oneof !== undefined && oneof !== null) {
      if (oneofsSeen.has(oneof)) continue;
      oneofsSeen.add(oneof);
    }
    json[jsonNameOf(field)] = fieldDefault(index, field, depth, open);
  }
  open.delete(typeName);
  return json;
}

function fieldDefault(index: DescriptorIndex, field: IFieldDescriptorProto, depth: number, open: Set<string>): unknown {
  const type = field.type as number;
  const typeName = stripLeadingDot(field.typeName);
  if (type === TYPE_MESSAGE && isMapEntry(index.messages.get(typeName))) return {};
  if (field.label === LABEL_REPEATED) return [];
  if (type === TYPE_MESSAGE || type === TYPE_GROUP) return fill(index, typeName, depth + 1, open);
  if (type === TYPE_ENUM) return firstEnumValue(index, typeName) ?? 0;
  if (type === TYPE_BOOL) return false;
  if (type === TYPE_STRING || type === TYPE_BYTES) return "";
  if (SIXTY_FOUR_BIT.has(type)) return "0";
  return 0;
}

function isMapEntry(message: IDescriptorProto | undefined): boolean {
  return message?.options?.mapEntry === true;
}

/** The name protoc recorded, else lowerCamelCase of the field name (as protoc derives it). */
function jsonNameOf(field: IFieldDescriptorProto): string {
  if (field.jsonName) return field.jsonName;
  return (field.name ?? "").replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());
}

/** The enum's first value name (its zero value in proto3), or undefined when the enum is not found. */
function firstEnumValue(index: DescriptorIndex, typeName: string): string | undefined {
  for (const file of index.set.file ?? []) {
    const prefix = file.package ? `${file.package}.` : "";
    const found = findEnum(file.enumType ?? [], file.messageType ?? [], prefix, typeName);
    if (found) return found.value?.[0]?.name ?? undefined;
  }
  return undefined;
}

function findEnum(enums: IEnumDescriptorProto[], messages: IDescriptorProto[], prefix: string, wanted: string): IEnumDescriptorProto | undefined {
  if (!wanted.startsWith(prefix)) return undefined;
  for (const candidate of enums) if (prefix + (candidate.name ?? "") === wanted) return candidate;
  for (const message of messages) {
    const found = findEnum(message.enumType ?? [], message.nestedType ?? [], `${prefix}${message.name ?? ""}.`, wanted);
    if (found) return found;
  }
  return undefined;
}
