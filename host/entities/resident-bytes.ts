// State bytes kept between commands, in the smallest form V8 offers. Up to 3 bytes (a
// counter's `value: n` for n < 16384) fit in a small integer together with their length,
// stored inside the entity's record at no cost; longer ones become a one-byte (latin1)
// string, ~16 bytes + their length, where a Uint8Array of their own costs a typed array,
// an ArrayBuffer and an off-heap backing store (~250 B more per entity, most of a small
// entity's footprint). Each char is one byte (0..255), so the round trip is exact.
import { bufferOf } from "../buffer-of.js";

/** undefined: no state. */
export type ResidentBytes = string | number | undefined;

/** Below this length a plain loop beats a trip through Buffer. */
const SHORT = 32;
/** Longest state packed into a number: length in bits 24-25, the bytes below. */
const PACKED = 3;

export function toResident(bytes: Uint8Array | undefined): ResidentBytes {
  if (bytes === undefined) return undefined;
  const length = bytes.length;
  if (length <= PACKED) {
    let packed = length << 24;
    for (let i = 0; i < length; i++) packed |= bytes[i]! << (16 - 8 * i);
    return packed;
  }
  if (length <= SHORT) return String.fromCharCode.apply(null, bytes as unknown as number[]);
  return bufferOf(bytes).toString("latin1");
}

export function fromResident(resident: ResidentBytes): Uint8Array | undefined {
  if (resident === undefined) return undefined;
  if (typeof resident === "number") {
    const length = resident >>> 24;
    const bytes = new Uint8Array(length);
    for (let i = 0; i < length; i++) bytes[i] = (resident >>> (16 - 8 * i)) & 0xff;
    return bytes;
  }
  const length = resident.length;
  if (length > SHORT) return Buffer.from(resident, "latin1");
  const bytes = new Uint8Array(length);
  for (let i = 0; i < length; i++) bytes[i] = resident.charCodeAt(i);
  return bytes;
}

/** What the resident form costs on the heap besides the record's field: a string's header and chars, word-aligned. */
export function residentSize(resident: ResidentBytes): number {
  return typeof resident === "string" ? stringBytes(resident) : 0;
}

/** Heap bytes of a one-byte string (Node 20 x64: a 16-byte header, chars rounded up to 8). */
export function stringBytes(text: string): number {
  return 16 + ((text.length + 7) & ~7);
}
