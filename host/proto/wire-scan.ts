// A minimal protobuf wire-format walker: reads only the fields the host needs (entity
// keys) and checks the top-level structure, without decoding the message.
export const WIRE_VARINT = 0;
export const WIRE_FIXED64 = 1;
export const WIRE_LENGTH_DELIMITED = 2;
export const WIRE_FIXED32 = 5;

export class WireFormatError extends Error {
  override readonly name = "WireFormatError";
}

export interface ScannedField {
  readonly number: number;
  readonly wireType: number;
  /** Offset of the value (after the tag; for length-delimited, after the length). */
  readonly start: number;
  readonly end: number;
}

/**
 * Calls `visit` for every top-level field whose number is in `wanted` and throws
 * WireFormatError on malformed input (truncated varints, lengths past the end, bad wire types).
 */
export function scanFields(bytes: Uint8Array, wanted: ReadonlySet<number>, visit: (field: ScannedField) => void): void {
  const field = fieldCursor();
  for (let pos = 0; pos < bytes.length; pos = field.end) {
    nextField(bytes, pos, field);
    if (wanted.has(field.number)) visit({ ...field });
  }
}

/** A field as nextField reads it; reuse one for a whole scan. */
export type FieldCursor = { -readonly [K in keyof ScannedField]: ScannedField[K] };

export function fieldCursor(): FieldCursor {
  return { number: 0, wireType: 0, start: 0, end: 0 };
}

/**
 * Reads the top-level field at `pos` into `field` (its end is where the next one starts);
 * throws WireFormatError as scanFields does. For a scan that allocates nothing per field.
 */
export function nextField(bytes: Uint8Array, pos: number, field: FieldCursor): void {
  const tag = varint32(bytes, pos);
  const afterTag = varintEnd;
  const number = tag >>> 3;
  const wireType = tag & 7;
  if (number === 0) throw new WireFormatError(`field number 0 at byte ${pos}`);
  let start = afterTag;
  let end: number;
  switch (wireType) {
    case WIRE_VARINT:
      end = skipVarint(bytes, afterTag);
      break;
    case WIRE_FIXED64:
      end = afterTag + 8;
      break;
    case WIRE_LENGTH_DELIMITED: {
      const length = varint32(bytes, afterTag);
      start = varintEnd;
      end = start + length;
      break;
    }
    case WIRE_FIXED32:
      end = afterTag + 4;
      break;
    default:
      throw new WireFormatError(`unsupported wire type ${wireType} for field ${number} at byte ${pos}`);
  }
  if (end > bytes.length) throw new WireFormatError(`field ${number} runs past the end of the message`);
  field.number = number;
  field.wireType = wireType;
  field.start = start;
  field.end = end;
}

/** Where the varint that varint32 read last ended (a module variable rather than a tuple per read). */
let varintEnd = 0;

/** Reads a varint that must fit 32 bits (tags and lengths); its end goes to varintEnd. */
function varint32(bytes: Uint8Array, pos: number): number {
  const first = bytes[pos];
  if (first !== undefined && first < 0x80) {
    // One byte: every tag below field 16, every length below 128.
    varintEnd = pos + 1;
    return first;
  }
  let value = 0;
  for (let shift = 0; shift < 35; shift += 7) {
    if (pos >= bytes.length) throw new WireFormatError("truncated varint");
    const byte = bytes[pos++]!;
    value += (byte & 0x7f) * 2 ** shift;
    if (byte < 0x80) {
      if (value > 0xffffffff) throw new WireFormatError("varint too large for 32 bits");
      varintEnd = pos;
      return value;
    }
  }
  throw new WireFormatError("varint too long");
}

/** Reads a varint as an unsigned 64-bit BigInt. */
export function readVarint64(bytes: Uint8Array, pos: number): bigint {
  let value = 0n;
  for (let shift = 0n; shift < 70n; shift += 7n) {
    if (pos >= bytes.length) throw new WireFormatError("truncated varint");
    const byte = bytes[pos++]!;
    value |= BigInt(byte & 0x7f) << shift;
    if (byte < 0x80) return BigInt.asUintN(64, value);
  }
  throw new WireFormatError("varint too long");
}

function skipVarint(bytes: Uint8Array, pos: number): number {
  for (let i = 0; i < 10; i++) {
    if (pos >= bytes.length) throw new WireFormatError("truncated varint");
    if (bytes[pos++]! < 0x80) return pos;
  }
  throw new WireFormatError("varint too long");
}
