import test from "ava";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { compileAssemblyScript } from "../../host/build/asc-compile.js";
import { mergeDataSegments } from "../../host/build/merge-data-segments.js";
import { parseSections, readLeb } from "../helpers/wasm-sections.js";

/** The data section's segment count (section 11), read straight from the bytes. */
function dataSegmentCount(module: Uint8Array): number {
  const data = parseSections(module).find((section) => section.id === 11);
  return data ? readLeb(data.payload, 0)[0] : 0;
}

// (memory 1) with three active segments: "ab" at 16, "cd" at 20 (a 2-byte gap) and "ef" at
// 4000 (too far to join), exporting the memory.
const threeSegments = new Uint8Array([
  0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
  0x05, 0x03, 0x01, 0x00, 0x01,
  0x07, 0x07, 0x01, 0x03, 0x6d, 0x65, 0x6d, 0x02, 0x00,
  0x0b, 0x17, 0x03,
  0x00, 0x41, 0x10, 0x0b, 0x02, 0x61, 0x62,
  0x00, 0x41, 0x14, 0x0b, 0x02, 0x63, 0x64,
  0x00, 0x41, 0xa0, 0x1f, 0x0b, 0x02, 0x65, 0x66,
]);

function memoryAfterInstantiation(module: Uint8Array, imports: WebAssembly.Imports = {}): Uint8Array {
  const instance = new WebAssembly.Instance(new WebAssembly.Module(module as Uint8Array<ArrayBuffer>), imports);
  const memory = Object.values(instance.exports).find((e) => e instanceof WebAssembly.Memory) as WebAssembly.Memory;
  return new Uint8Array(memory.buffer.slice(0));
}

test("nearby segments are joined, far ones kept apart, and memory starts out byte for byte the same", (t) => {
  t.true(WebAssembly.validate(threeSegments));
  const merged = mergeDataSegments(threeSegments);
  t.is(dataSegmentCount(threeSegments), 3);
  t.is(dataSegmentCount(merged), 2);
  t.deepEqual(memoryAfterInstantiation(merged), memoryAfterInstantiation(threeSegments));
  t.is(Buffer.from(memoryAfterInstantiation(merged).subarray(16, 22)).toString("latin1"), "ab\0\0cd");
});

test("asc output keeps its behaviour: the same memory after the start function, far fewer segments", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "keystate-merge-"));
  try {
    // Static strings and arrays with zeros between them: binaryen splits such data into many segments.
    writeFileSync(join(dir, "entry.ts"), [
      'const words: string[] = ["alpha", "", "beta", "\\0\\0\\0\\0\\0\\0\\0\\0", "gamma", "delta"];',
      "const table: StaticArray<u32> = [1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3];",
      "export function size(): i32 { return words.length + table.length; }",
    ].join("\n"));
    const raw = await compileAssemblyScript(join(dir, "entry.ts"));
    const merged = mergeDataSegments(raw);
    t.true(dataSegmentCount(raw) > 3, `asc emitted ${dataSegmentCount(raw)} segments`);
    t.is(dataSegmentCount(merged), 1);
    const imports = { env: { abort() {} } };
    t.deepEqual(memoryAfterInstantiation(merged, imports), memoryAfterInstantiation(raw, imports));
    // Merging what is merged changes nothing.
    t.is(mergeDataSegments(merged), merged);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("modules it cannot merge safely are returned unchanged", (t) => {
  // A passive segment (flag 1) is addressed by index from code: left alone.
  const passive = new Uint8Array([
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
    0x05, 0x03, 0x01, 0x00, 0x01,
    0x0b, 0x0c, 0x02,
    0x00, 0x41, 0x10, 0x0b, 0x02, 0x61, 0x62,
    0x01, 0x02, 0x63, 0x64,
  ]);
  t.true(WebAssembly.validate(passive));
  t.is(mergeDataSegments(passive), passive);
  t.is(mergeDataSegments(new Uint8Array([0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00])).length, 8);
});
