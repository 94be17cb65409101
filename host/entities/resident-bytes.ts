// State bytes kept between commands, held as a one-byte (latin1) string: V8 stores it in
// ~12 bytes + its length, where a Uint8Array of its own costs a typed array, an
// ArrayBuffer and an off-heap backing store (~250 B more per entity, most of a small
// entity's footprint). Each char is one byte (0..255), so the round trip is exact.

/** Below this length a plain loop beats a trip through Buffer. */
const SHORT = 32;

export function toResident(bytes: Uint8Array | undefined): string | undefined {
  if (bytes === undefined) return undefined;
  if (bytes.length <= SHORT) return String.fromCharCode.apply(null, bytes as unknown as number[]);
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("latin1");
}

export function fromResident(resident: string | undefined): Uint8Array | undefined {
  if (resident === undefined) return undefined;
  const length = resident.length;
  if (length > SHORT) return Buffer.from(resident, "latin1");
  const bytes = new Uint8Array(length);
  for (let i = 0; i < length; i++) bytes[i] = resident.charCodeAt(i);
  return bytes;
}

/** What a resident string costs on the heap: a string header plus one byte per char, word-aligned. */
export function residentSize(resident: string | undefined): number {
  return resident === undefined ? 0 : 16 + ((resident.length + 3) & ~3);
}
