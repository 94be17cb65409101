// Finds a request message's `(keystate.entity_key)` fields at deploy time and reads
// their values from request bytes at call time (the only part of a user message the
// host ever reads).
import type { IDescriptorProto, IFieldDescriptorProto } from "protobufjs/ext/descriptor.js";
import { KeystateError } from "../errors.js";
import { ENTITY_KEY_OPTION } from "./descriptors.js";
import { fieldCursor, nextField, readVarint64, scanFields, WIRE_LENGTH_DELIMITED, WIRE_VARINT, WireFormatError } from "./wire-scan.js";

/** google.protobuf.FieldDescriptorProto.Type values the key reader supports. */
const KEY_FIELD_TYPES: Record<number, { name: string; wireType: number; signed: boolean; zigzag: boolean }> = {
  9: { name: "string", wireType: WIRE_LENGTH_DELIMITED, signed: false, zigzag: false },
  3: { name: "int64", wireType: WIRE_VARINT, signed: true, zigzag: false },
  4: { name: "uint64", wireType: WIRE_VARINT, signed: false, zigzag: false },
  5: { name: "int32", wireType: WIRE_VARINT, signed: true, zigzag: false },
  13: { name: "uint32", wireType: WIRE_VARINT, signed: false, zigzag: false },
  17: { name: "sint32", wireType: WIRE_VARINT, signed: true, zigzag: true },
  18: { name: "sint64", wireType: WIRE_VARINT, signed: true, zigzag: true },
};

export interface KeyField {
  readonly name: string;
  readonly number: number;
  readonly fieldType: number;
}

export interface EntityKeyReader {
  readonly fields: readonly KeyField[];
  /** The entity key of a request; throws INVALID_REQUEST when missing, empty or malformed. */
  read(request: Uint8Array): string;
}

/** The key fields of `message`, in field-number order. Throws INVALID_MODULE on unsupported types. */
export function keyFieldsOf(messageName: string, message: IDescriptorProto): KeyField[] {
  const fields = (message.field ?? []).filter(isEntityKeyField);
  for (const field of fields) {
    if (field.label === 3 || !(field.type! in KEY_FIELD_TYPES)) {
      throw new KeystateError(
        "INVALID_MODULE",
        `entity key field ${messageName}.${field.name} must be a singular string or integer field`,
      );
    }
  }
  return fields
    .map((f) => ({ name: f.name ?? "", number: f.number ?? 0, fieldType: f.type as number }))
    .sort((a, b) => a.number - b.number);
}

function isEntityKeyField(field: IFieldDescriptorProto): boolean {
  const options = field.options as Record<string, unknown> | null | undefined;
  return options?.[ENTITY_KEY_OPTION] === true;
}

const utf8 = new TextDecoder("utf-8", { fatal: true });

/** Keys this long or shorter are decoded in JS when all ASCII (cheaper than a TextDecoder call and a subarray). */
const SHORT_KEY = 32;

/** UTF-8 (fatal on malformed input) of a string key field. */
function decodeKeyString(bytes: Uint8Array, start: number, end: number): string {
  if (end - start > SHORT_KEY) return utf8.decode(bytes.subarray(start, end));
  let key = "";
  for (let i = start; i < end; i++) {
    const byte = bytes[i]!;
    if (byte > 0x7f) return utf8.decode(bytes.subarray(start, end));
    key += String.fromCharCode(byte);
  }
  return key;
}

export function entityKeyReader(messageName: string, fields: readonly KeyField[]): EntityKeyReader {
  if (fields.length === 1) return singleFieldReader(messageName, fields[0]!, fields);
  const numbers = new Set(fields.map((f) => f.number));
  const byNumber = new Map(fields.map((f) => [f.number, f]));
  return {
    fields,
    read(request: Uint8Array): string {
      const values = new Map<number, string>();
      try {
        scanFields(request, numbers, (scanned) => {
          const field = byNumber.get(scanned.number)!;
          const spec = KEY_FIELD_TYPES[field.fieldType]!;
          if (scanned.wireType !== spec.wireType) {
            throw new WireFormatError(`field ${field.name} has wire type ${scanned.wireType}, expected ${spec.wireType}`);
          }
          // Last occurrence wins, as in any protobuf parser.
          values.set(field.number, readKeyValue(request, scanned.start, scanned.end, spec));
        });
      } catch (err) {
        throw malformed(messageName, err);
      }
      const parts: string[] = [];
      for (const field of fields) {
        const value = values.get(field.number);
        if (value === undefined || value === "") {
          throw new KeystateError("INVALID_REQUEST", `${messageName}.${field.name} (the entity key) is missing or empty`);
        }
        parts.push(value);
      }
      // A composite key joins its escaped parts, so "a/b"+"c" and "a"+"b/c" differ.
      return parts.length === 1 ? parts[0]! : parts.map(encodeURIComponent).join("/");
    },
  };
}

/** The common case, one key field: one pass over the message, no map, no closure. */
function singleFieldReader(messageName: string, field: KeyField, fields: readonly KeyField[]): EntityKeyReader {
  const spec = KEY_FIELD_TYPES[field.fieldType]!;
  // One per reader, reused by every read (a read never awaits, so reads never overlap).
  const cursor = fieldCursor();
  return {
    fields,
    read(request: Uint8Array): string {
      let value: string | undefined;
      try {
        for (let pos = 0; pos < request.length; pos = cursor.end) {
          nextField(request, pos, cursor);
          if (cursor.number !== field.number) continue;
          if (cursor.wireType !== spec.wireType) {
            throw new WireFormatError(`field ${field.name} has wire type ${cursor.wireType}, expected ${spec.wireType}`);
          }
          // Last occurrence wins, as in any protobuf parser.
          value = readKeyValue(request, cursor.start, cursor.end, spec);
        }
      } catch (err) {
        throw malformed(messageName, err);
      }
      if (value === undefined || value === "") {
        throw new KeystateError("INVALID_REQUEST", `${messageName}.${field.name} (the entity key) is missing or empty`);
      }
      return value;
    },
  };
}

/** A wire-format or UTF-8 error as INVALID_REQUEST; anything else unchanged. */
function malformed(messageName: string, err: unknown): unknown {
  if (err instanceof WireFormatError || err instanceof TypeError) {
    return new KeystateError("INVALID_REQUEST", `malformed ${messageName}: ${err.message}`);
  }
  return err;
}

function readKeyValue(bytes: Uint8Array, start: number, end: number, spec: { wireType: number; signed: boolean; zigzag: boolean }): string {
  if (spec.wireType === WIRE_LENGTH_DELIMITED) return decodeKeyString(bytes, start, end);
  const raw = readVarint64(bytes, start);
  if (spec.zigzag) return ((raw >> 1n) ^ -(raw & 1n)).toString();
  return (spec.signed ? BigInt.asIntN(64, raw) : raw).toString();
}
