import test from "ava";
import binaryen from "binaryen";
import { fileURLToPath } from "node:url";
import { compileAssemblyScript } from "../../host/build/asc-compile.js";
import { nonZeroRuns, preinitialize } from "../../host/build/preinitialize.js";

interface StateExports {
  memory: WebAssembly.Memory;
  sum(): number;
  bump(): bigint;
  nameLength(i: number): number;
  scaled(x: number): number;
  bufferAt(i: number): number;
  grow(n: number): number;
}

const fixturePath = fileURLToPath(new URL("../fixtures/preinit/state.ts", import.meta.url));
const fixture = compileAssemblyScript(fixturePath);
// With --debug the module keeps its name section, so binaryen knows its globals by their
// source names instead of by index.
const namedFixture = compileAssemblyScript(fixturePath, { flags: ["--debug"] });
const imports = { env: { abort: () => { throw new Error("abort"); } } };
const instantiate = (code: Uint8Array) => new WebAssembly.Instance(new WebAssembly.Module(code as Uint8Array<ArrayBuffer>), imports).exports as unknown as StateExports;

function hasStart(code: Uint8Array): boolean {
  const module = binaryen.readBinary(code);
  try {
    return module.getStart() !== 0;
  } finally {
    module.dispose();
  }
}

function wat(text: string): Uint8Array {
  const module = binaryen.parseText(text);
  try {
    return module.emitBinary();
  } finally {
    module.dispose();
  }
}

for (const [build, compiled] of [["", fixture], [" (a build that keeps its names)", namedFixture]] as const) {
  test(`an AssemblyScript module starts, without its start function, exactly where the start function left it${build}`, async (t) => {
    const code = await compiled;
    t.true(hasStart(code));
    const result = preinitialize(code);
    t.is(result.skipped, undefined);
    t.false(hasStart(result.code));
    const original = instantiate(code);
    const snapshot = instantiate(result.code);
    // The same bytes in memory...
    const before = new Uint8Array(original.memory.buffer);
    const after = new Uint8Array(snapshot.memory.buffer);
    t.is(after.length, before.length);
    t.true(Buffer.from(after).equals(Buffer.from(before)));
    // ...the same globals (i32, i64, f32, f64) and the same behaviour from there on, allocation included.
    for (const exports of [original, snapshot]) {
      t.is(exports.sum(), 3);
      t.is(exports.nameLength(99), "name-99".length);
      t.is(exports.scaled(2), 0.5 * 2 + 1.5);
      t.is(exports.bufferAt(7 * 30), (7 * 30) & 0xff);
    }
    t.is(snapshot.bump(), original.bump());
    t.is(snapshot.bump(), 44n);
    t.is(snapshot.grow(500), original.grow(500));
    t.true(Buffer.from(new Uint8Array(snapshot.memory.buffer)).equals(Buffer.from(new Uint8Array(original.memory.buffer))));
  });
}

test("a start function whose effect is not only memory and globals is left in place, with the reason", (t) => {
  const callsImport = wat(`(module (import "env" "log" (func $log (param i32))) (memory 1) (func $s (call $log (i32.const 1))) (start $s))`);
  t.deepEqual(preinitialize(callsImport), { code: callsImport, skipped: "the start function calls env.log" });
  const setsTable = wat(`(module (memory 1) (table 2 funcref) (func $f) (func $s (table.set (i32.const 0) (ref.func $f))) (elem declare func $f) (start $s))`);
  t.is(preinitialize(setsTable).skipped, "code that changes tables or data segments");
  const traps = wat(`(module (memory 1) (func $s (unreachable)) (start $s))`);
  t.regex(preinitialize(traps).skipped ?? "", /^the start function failed: /);
  const noStart = wat(`(module (memory 1))`);
  t.is(preinitialize(noStart).skipped, "no start function");
});

test("non-zero runs: zero gaps under 256 bytes stay inside a run, longer ones split it", (t) => {
  const memory = new Uint8Array(2000);
  memory[10] = 1;
  memory[200] = 2; // 189 zeros between: one run
  memory[700] = 3; // 499 zeros: a new run
  memory[1999] = 4;
  t.deepEqual(nonZeroRuns(memory).map((r) => [r.offset, r.bytes.length]), [[10, 191], [700, 1], [1999, 1]]);
  t.deepEqual(nonZeroRuns(new Uint8Array(10)), []);
});

test("a start function that aborts through the SDK's record (no import) is reported with the abort's message and place", (t) => {
  const aborts = wat(`(module
    (memory (export "memory") 1)
    (global $aborted (mut i32) (i32.const 0))
    (data (i32.const 196) "\\08\\00\\00\\00b\\00o\\00o\\00m\\00")
    (data (i32.const 296) "\\08\\00\\00\\00f\\00.\\00t\\00s\\00")
    (func $s
      (i32.store (i32.const 128) (i32.const 200)) (i32.store (i32.const 132) (i32.const 300))
      (i32.store (i32.const 136) (i32.const 7)) (i32.store (i32.const 140) (i32.const 3))
      (global.set $aborted (i32.const 1))
      (unreachable))
    (func (export "ks_abort") (result i32) (select (i32.const 128) (i32.const 0) (global.get $aborted)))
    (start $s))`);
  const result = preinitialize(aborts);
  t.is(result.skipped, "the start function failed: boom (f.ts:7:3)");
  t.is(result.code, aborts, "the module is left as it was");
});

test("keepNames emits the module's name section; without it the names are dropped", async (t) => {
  const code = await namedFixture;
  const nameSections = (bytes: Uint8Array) => WebAssembly.Module.customSections(new WebAssembly.Module(bytes as Uint8Array<ArrayBuffer>), "name").length;
  t.is(nameSections(code), 1);
  t.is(nameSections(preinitialize(code, { keepNames: true }).code), 1);
  t.is(nameSections(preinitialize(code).code), 0);
  // binaryen's debug-info option is process-wide: it is back as it was.
  t.false(binaryen.getDebugInfo());
});
