// V8 caches compiled Wasm by the bytes, so compiling the same bytes twice measures a cache
// hit. A custom section with a counter makes every copy unique (and still valid: custom
// sections may come anywhere and do not change what the module does).
//
// The section goes first, right after the header. V8's cache files a module under a hash of
// its bytes before the code section and compares whole modules only within one such bucket:
// copies that differ only at their end all land in one bucket, and each compile then compared
// its ~50 KB against every earlier copy still alive (~60 us of the shopping cart's ~0.3 ms
// compile, 2026-12-07), which no real node pays for a module it has not seen.
import { customSection } from "../../host/build/custom-sections.js";

const HEADER_BYTES = 8;
let counter = 0;

export function uniqueCopy(bytes: Uint8Array): Uint8Array {
  const payload = new TextEncoder().encode(`${process.pid}-${Date.now()}-${counter++}`);
  return Buffer.concat([bytes.subarray(0, HEADER_BYTES), customSection("keystate-bench-nonce", payload), bytes.subarray(HEADER_BYTES)]);
}
