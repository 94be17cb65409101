// Tells a component binary from a core module by its header, and lists a component's
// top-level sections (to read its custom sections without parsing the rest). A component
// starts with `\0asm` and the layer/version bytes 0d 00 01 00; a core module has 01 00 00 00.
// Component sections may come in any order and repeat, so nothing but bounds is checked.
import { KeystateError } from "../errors.js";
import { readSectionHeaders, type Section } from "../runtime/instrument.js";

export const COMPONENT_VERSION = Uint8Array.of(0x0d, 0x00, 0x01, 0x00);

/** The bytes start with the `\0asm` magic and the component layer's version. */
export function isComponentBinary(bytes: Uint8Array): boolean {
  return bytes.length >= 8 && bytes[0] === 0x00 && bytes[1] === 0x61 && bytes[2] === 0x73 && bytes[3] === 0x6d
    && bytes[4] === 0x0d && bytes[5] === 0x00 && bytes[6] === 0x01 && bytes[7] === 0x00;
}

/** A component's top-level sections (custom sections are id 0, as in a core module). */
export function splitComponentSections(bytes: Uint8Array): Section[] {
  if (!isComponentBinary(bytes)) throw new KeystateError("INVALID_MODULE", "not a WebAssembly component (no component header)");
  // Component sections may come in any order and repeat: only their bounds are checked.
  return readSectionHeaders(bytes, () => {}, (id, headerStart) =>
    new KeystateError("INVALID_MODULE", `the component is not valid: its section ${id} at offset ${headerStart} overruns its end`));
}
