// V8 caches compiled Wasm by the bytes' hash, so compiling the same bytes twice measures
// a cache hit. Appending a custom section with a counter makes every copy unique (and
// still valid: custom sections may come last and do not change what the module does).
import { appendCustomSections } from "../../host/build/custom-sections.js";

let counter = 0;

export function uniqueCopy(bytes: Uint8Array): Uint8Array {
  const payload = new TextEncoder().encode(`${process.pid}-${Date.now()}-${counter++}`);
  return appendCustomSections(bytes, [{ name: "keystate-bench-nonce", payload }]);
}
