// Appends Wasm custom sections (id 0: a name, then opaque bytes) to a module. Custom
// sections may appear anywhere after the header; appending keeps the code untouched.
function leb128(value: number): number[] {
  const out: number[] = [];
  do {
    let byte = value & 0x7f;
    value >>>= 7;
    if (value !== 0) byte |= 0x80;
    out.push(byte);
  } while (value !== 0);
  return out;
}

/** One custom section's bytes: its id, size and name, then `payload`. */
export function customSection(name: string, payload: Uint8Array): Uint8Array {
  const nameBytes = Buffer.from(name, "utf8");
  const body = [...leb128(nameBytes.length), ...nameBytes];
  return Buffer.concat([Uint8Array.from([0, ...leb128(body.length + payload.length), ...body]), payload]);
}

export function appendCustomSections(module: Uint8Array, sections: ReadonlyArray<{ name: string; payload: Uint8Array }>): Uint8Array {
  return Buffer.concat([module, ...sections.map(({ name, payload }) => customSection(name, payload))]);
}
