// Components carry the Keystate custom sections at their top level; the host reads them
// like a core module's, and tells the two binaries apart by their header.
import test from "ava";
import { appendCustomSections } from "../../host/build/custom-sections.js";
import { isComponentBinary, splitComponentSections } from "../../host/component/component-binary.js";
import { KeystateError } from "../../host/errors.js";
import { readSection } from "../../host/runtime/module-sections.js";

const COMPONENT_HEADER = Uint8Array.of(0x00, 0x61, 0x73, 0x6d, 0x0d, 0x00, 0x01, 0x00);
const CORE_HEADER = Uint8Array.of(0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00);

test("a component's top-level custom sections are read like a core module's", (t) => {
  // A (non-custom) core-module section of a component, then the two Keystate sections appended.
  const withModule = Buffer.concat([COMPONENT_HEADER, Uint8Array.of(0x01, 0x08, ...CORE_HEADER)]);
  const bytes = appendCustomSections(withModule, [
    { name: "keystate.descriptor", payload: Uint8Array.of(1, 2, 3) },
    { name: "keystate.manifest", payload: Uint8Array.of(4, 5) },
  ]);
  t.true(isComponentBinary(bytes));
  t.false(isComponentBinary(CORE_HEADER));
  t.deepEqual([...readSection(bytes, "keystate.descriptor")], [1, 2, 3]);
  t.deepEqual([...readSection(bytes, "keystate.manifest")], [4, 5]);
  t.deepEqual(splitComponentSections(bytes).map((s) => s.id), [1, 0, 0]);
  const missing = t.throws(() => readSection(withModule, "keystate.manifest"), { instanceOf: KeystateError });
  t.regex(missing.message, /no "keystate\.manifest" custom section; build it with `keystate build`/);
});

test("a truncated component is refused as INVALID_MODULE", (t) => {
  const err = t.throws(() => splitComponentSections(Buffer.concat([COMPONENT_HEADER, Uint8Array.of(0x00, 0x7f, 0x01)])), { instanceOf: KeystateError });
  t.is(err.code, "INVALID_MODULE");
  t.regex(err.message, /not valid: its section 0 at offset 8 overruns its end/);
});
