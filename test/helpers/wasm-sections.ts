// Splits a Wasm binary into its top-level sections and puts it back together, so tests
// can drop or replace custom sections of a real module.
export interface Section {
  readonly id: number;
  /** For custom sections (id 0), the section's name. */
  readonly name?: string;
  /** The section's content after its size (for custom sections, after the name too). */
  readonly payload: Uint8Array;
}

/** The unsigned LEB128 at `pos`, and the position after it. */
export function readLeb(bytes: Uint8Array, pos: number): [number, number] {
  let value = 0;
  let shift = 0;
  for (;;) {
    const byte = bytes[pos++]!;
    value += (byte & 0x7f) * 2 ** shift;
    if (byte < 0x80) return [value, pos];
    shift += 7;
  }
}

/** Unsigned LEB128, which is also a protobuf varint of a non-negative number. */
export function writeLeb(value: number): number[] {
  const out: number[] = [];
  do {
    let byte = value & 0x7f;
    value = Math.floor(value / 128);
    if (value !== 0) byte |= 0x80;
    out.push(byte);
  } while (value !== 0);
  return out;
}

export function parseSections(module: Uint8Array): Section[] {
  const sections: Section[] = [];
  let pos = 8;
  while (pos < module.length) {
    const id = module[pos++]!;
    const [size, start] = readLeb(module, pos);
    const end = start + size;
    if (id === 0) {
      const [nameLength, nameStart] = readLeb(module, start);
      const name = Buffer.from(module.subarray(nameStart, nameStart + nameLength)).toString("utf8");
      sections.push({ id, name, payload: module.subarray(nameStart + nameLength, end) });
    } else {
      sections.push({ id, payload: module.subarray(start, end) });
    }
    pos = end;
  }
  return sections;
}

export function assembleModule(sections: readonly Section[]): Uint8Array {
  const parts: Uint8Array[] = [Uint8Array.from([0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00])];
  for (const section of sections) {
    const nameBytes = section.id === 0 ? Buffer.from(section.name ?? "", "utf8") : Buffer.alloc(0);
    const header = section.id === 0 ? [...writeLeb(nameBytes.length), ...nameBytes] : [];
    parts.push(Uint8Array.from([section.id, ...writeLeb(header.length + section.payload.length), ...header]), section.payload);
  }
  return Buffer.concat(parts);
}

/** The module with custom section `name` replaced by `payload` (or removed when undefined). */
export function withCustomSection(module: Uint8Array, name: string, payload: Uint8Array | undefined): Uint8Array {
  const sections = parseSections(module).filter((s) => s.name !== name);
  if (payload) sections.push({ id: 0, name, payload });
  return assembleModule(sections);
}
