// Deploy-time instrumentation: fuel metering, memory caps, what must survive unchanged,
// and trap classification. Fixtures are WAT (through binaryen) with one behaviour each,
// plus the AssemblyScript metering fixture for the allocator and start-function paths.
import test from "ava";
import binaryen from "binaryen";
import { fileURLToPath } from "node:url";
import { compileAssemblyScript } from "../../host/build/asc-compile.js";
import { isKeystateError } from "../../host/errors.js";
import { DEFAULT_START_FUEL, FUEL_EXPORT, MAX_FUEL, readFuel, setFuel } from "../../host/runtime/fuel.js";
import { instrumentModule, type InstrumentOptions } from "../../host/runtime/instrument.js";
import { classifyTrap } from "../../host/runtime/trap.js";

const F = binaryen.Features;
// What Node 20's V8 compiles without flags.
const NODE_FEATURES = F.MutableGlobals | F.NontrappingFPToInt | F.SIMD128 | F.BulkMemory | F.BulkMemoryOpt |
  F.SignExt | F.ExceptionHandling | F.TailCall | F.ReferenceTypes | F.Multivalue | F.Atomics | F.CallIndirectOverlong;
// Proposals V8 20 lacks, for scanner coverage only (binaryen validates the output instead).
const LATER_FEATURES = NODE_FEATURES | F.GC | F.MultiMemory | F.RelaxedSIMD;

// Copies land in an ArrayBuffer-backed array, the type the WebAssembly APIs take.
function wat(text: string, features = NODE_FEATURES): Uint8Array<ArrayBuffer> {
  const m = binaryen.parseText(text);
  try {
    m.setFeatures(features);
    if (!m.validate()) throw new Error("fixture does not validate");
    return new Uint8Array(m.emitBinary());
  } finally {
    m.dispose();
  }
}

const METERED: InstrumentOptions = { maxMemoryPages: 16, meterFuel: true };

function instantiate(bytes: Uint8Array<ArrayBuffer>, imports: WebAssembly.Imports = {}): WebAssembly.Instance {
  return new WebAssembly.Instance(new WebAssembly.Module(bytes), imports);
}

// `count(n)` passes its loop header n times: n + 1 fuel with the entry. `calls()` makes 3 calls.
const LOOPS = wat(`(module
  (func $leaf)
  (func (export "count") (param $n i32) (result i32) (local $i i32)
    (loop $l (local.set $i (i32.add (local.get $i) (i32.const 1))) (br_if $l (i32.lt_u (local.get $i) (local.get $n))))
    (local.get $i))
  (func (export "calls") (call $leaf) (call $leaf) (call $leaf))
  (func (export "spin") (loop $l (br $l)))
  (func $rec (export "rec") (param $n i32) (result i32) (i32.add (call $rec (i32.add (local.get $n) (i32.const 1))) (i32.const 1)))
  (func $fib (export "fib") (param $n i32) (result i32)
    (if (result i32) (i32.lt_u (local.get $n) (i32.const 2)) (then (local.get $n))
      (else (i32.add (call $fib (i32.sub (local.get $n) (i32.const 1))) (call $fib (i32.sub (local.get $n) (i32.const 2)))))))
  (func (export "div") (param i32) (result i32) (i32.div_u (i32.const 1) (local.get 0))))`);

interface LoopExports {
  count(n: number): number;
  calls(): void;
  spin(): void;
  rec(n: number): number;
  fib(n: number): number;
  div(n: number): number;
}

function metered(): { instance: WebAssembly.Instance; exports: LoopExports } {
  const instance = instantiate(instrumentModule(LOOPS, METERED).bytes);
  return { instance, exports: instance.exports as unknown as LoopExports };
}

test("an infinite loop traps with fuel exhausted under a small budget, quickly", (t) => {
  const { instance, exports } = metered();
  setFuel(instance, 1_000_000);
  const started = performance.now();
  const err = t.throws(() => exports.spin(), { instanceOf: WebAssembly.RuntimeError });
  t.true(performance.now() - started < 250);
  t.is(readFuel(instance), 0);
  t.is(classifyTrap(err, instance, 16), "fuel");
});

test("fuel counts one unit per function entry and per loop iteration, and traps when it reaches 0", (t) => {
  const { instance, exports } = metered();
  setFuel(instance, 1000);
  t.is(exports.count(10), 10);
  t.is(readFuel(instance), 1000 - 11);
  setFuel(instance, 1000);
  exports.calls();
  t.is(readFuel(instance), 1000 - 4);
  // count(10) needs 11 units and the fuel must stay at 1 or above: 12 passes, 11 traps.
  setFuel(instance, 12);
  t.is(exports.count(10), 10);
  t.is(readFuel(instance), 1);
  setFuel(instance, 11);
  const err = t.throws(() => exports.count(10));
  t.is(classifyTrap(err, instance, 16), "fuel");
});

test("infinite recursion is contained: fuel under a small budget, stack overflow under a huge one", (t) => {
  const small = metered();
  setFuel(small.instance, 1000);
  t.is(classifyTrap(t.throws(() => small.exports.rec(0)), small.instance, 16), "fuel");

  const huge = metered();
  setFuel(huge.instance, MAX_FUEL);
  const err = t.throws(() => huge.exports.rec(0), { instanceOf: RangeError });
  t.true(readFuel(huge.instance) > 0);
  t.is(classifyTrap(err, huge.instance, 16), "stack");
});

test("a normal function gives the same result instrumented and not", (t) => {
  const plain = instantiate(LOOPS).exports as unknown as LoopExports;
  const { instance, exports } = metered();
  for (const n of [0, 1, 10, 20]) {
    setFuel(instance, MAX_FUEL);
    t.is(exports.fib(n), plain.fib(n));
  }
  t.is(exports.fib(20), 6765);
});

test("fuel is set per call; an instance that ran out is replaced by a fresh one from the same module", (t) => {
  const module = new WebAssembly.Module(instrumentModule(LOOPS, METERED).bytes);
  const first = new WebAssembly.Instance(module);
  const exports = first.exports as unknown as LoopExports;
  for (let call = 0; call < 3; call++) {
    setFuel(first, 100);
    t.is(exports.count(50), 50);
    t.is(readFuel(first), 49); // same cost each call: nothing carries over
  }
  setFuel(first, 100);
  t.throws(() => exports.spin());
  // Discarded; a fresh instance runs normally.
  const fresh = new WebAssembly.Instance(module);
  setFuel(fresh, 100);
  t.is((fresh.exports as unknown as LoopExports).count(50), 50);
});

test("setFuel refuses a budget that is not a positive i32", (t) => {
  const { instance } = metered();
  for (const bad of [0, -1, 1.5, MAX_FUEL + 1]) t.throws(() => setFuel(instance, bad), { instanceOf: RangeError });
  t.throws(() => setFuel(instantiate(LOOPS), 10), { instanceOf: TypeError });
});

const START = (body: string): Uint8Array<ArrayBuffer> => wat(`(module
  (global $ran (mut i32) (i32.const 0))
  (func $start ${body} (global.set $ran (i32.const 1)))
  (start $start)
  (func (export "ran") (result i32) (global.get $ran)))`);

test("the start function runs on the initial fuel, which instrumentModule sets", (t) => {
  const finite = START("(local $i i32) (loop $l (local.set $i (i32.add (local.get $i) (i32.const 1))) (br_if $l (i32.lt_u (local.get $i) (i32.const 100))))");
  const instance = instantiate(instrumentModule(finite, { ...METERED, startFuel: 500 }).bytes);
  t.is((instance.exports["ran"] as () => number)(), 1);
  t.is(readFuel(instance), 500 - 1 - 100 - 1); // start: entry + 100 loop passes; ran(): entry
  t.is(readFuel(instantiate(instrumentModule(finite, METERED).bytes)), DEFAULT_START_FUEL - 101);

  const endless = instrumentModule(START("(loop $l (br $l))"), { ...METERED, startFuel: 10_000 }).bytes;
  t.throws(() => instantiate(endless), { instanceOf: WebAssembly.RuntimeError });
  // A module with neither globals nor exports gets both sections, in the right order.
  const bare = instrumentModule(wat("(module (func $s (loop $l (br $l))) (start $s))"), { ...METERED, startFuel: 10 }).bytes;
  t.throws(() => instantiate(bare), { instanceOf: WebAssembly.RuntimeError });
  t.deepEqual(WebAssembly.Module.exports(new WebAssembly.Module(bare)), [{ name: FUEL_EXPORT, kind: "global" }]);
});

// grow(n) is memory.grow; fill() grows page by page until refused, then traps like AS's allocator.
const MEMORY = (limits: string): Uint8Array<ArrayBuffer> => wat(`(module
  (memory (export "memory") ${limits})
  (func (export "grow") (param i32) (result i32) (memory.grow (local.get 0)))
  (func (export "fill") (loop $l (br_if $l (i32.ne (memory.grow (i32.const 1)) (i32.const -1)))) (unreachable)))`);

interface MemoryExports {
  memory: WebAssembly.Memory;
  grow(pages: number): number;
  fill(): void;
}

test("a memory without a maximum gets the cap; memory.grow past it returns -1", (t) => {
  const { bytes, report } = instrumentModule(MEMORY("1"), { maxMemoryPages: 4, meterFuel: false });
  t.deepEqual(report.memories, [{ minPages: 1, maxPages: 4, shared: false, memory64: false }]);
  const exports = instantiate(bytes).exports as unknown as MemoryExports;
  t.is(exports.grow(3), 1);
  t.is(exports.grow(1), -1);
  t.is(exports.memory.buffer.byteLength, 4 * 65536);
  t.throws(() => exports.memory.grow(1), { instanceOf: RangeError });
  // Uninstrumented, the same module grows on.
  t.is((instantiate(MEMORY("1")).exports as unknown as MemoryExports).grow(4), 1);
});

test("a maximum above the cap is lowered; one below it is kept", (t) => {
  const above = instrumentModule(MEMORY("1 1000"), { maxMemoryPages: 4, meterFuel: true });
  t.is(above.report.memories[0]?.maxPages, 4);
  const aboveInstance = instantiate(above.bytes);
  setFuel(aboveInstance, 100);
  t.is((aboveInstance.exports as unknown as MemoryExports).grow(4), -1);

  const below = instrumentModule(MEMORY("1 2"), { maxMemoryPages: 4, meterFuel: false });
  t.is(below.report.memories[0]?.maxPages, 2);
  const exports = instantiate(below.bytes).exports as unknown as MemoryExports;
  t.is(exports.grow(2), -1);
  t.is(exports.grow(1), 1);
});

test("a module whose initial memory exceeds the cap, or that imports its memory, is refused", (t) => {
  const tooBig = t.throws(() => instrumentModule(MEMORY("10"), { maxMemoryPages: 4, meterFuel: true }));
  t.true(isKeystateError(tooBig, "INVALID_MODULE"));
  t.regex(tooBig!.message, /10 pages, above the cap of 4/);

  const imported = wat(`(module (import "env" "mem" (memory 1)) (func (export "f") (result i32) (memory.size)))`);
  const err = t.throws(() => instrumentModule(imported, METERED));
  t.true(isKeystateError(err, "INVALID_MODULE"));
  t.regex(err!.message, /imports a memory \(env\.mem\)/);
});

test("importMemory: the one memory becomes the import keystate.memory with the capped limits, its data lands in the memory given", (t) => {
  const source = wat(`(module
    (import "keystate" "log" (func $log (param i32 i32 i32)))
    (memory (export "memory") 2 1000)
    (data (i32.const 70000) "hello")
    (func (export "size") (result i32) (memory.size))
    (func (export "read") (param i32) (result i32) (i32.load8_u (local.get 0))))`);
  const { bytes, report } = instrumentModule(source, { maxMemoryPages: 8, meterFuel: true, importMemory: true });
  t.true(report.memoryImported);
  t.deepEqual(report.memories, [{ minPages: 2, maxPages: 8, shared: false, memory64: false }]);
  const module = new WebAssembly.Module(bytes);
  t.deepEqual(WebAssembly.Module.imports(module), [
    { module: "keystate", name: "log", kind: "function" },
    { module: "keystate", name: "memory", kind: "memory" },
  ]);
  // Without the memory it does not link; a memory with a larger maximum than declared neither.
  t.throws(() => new WebAssembly.Instance(module, { keystate: { log: () => undefined } }), { instanceOf: WebAssembly.LinkError });
  const tooLarge = new WebAssembly.Memory({ initial: 2, maximum: 9 });
  t.throws(() => new WebAssembly.Instance(module, { keystate: { log: () => undefined, memory: tooLarge } }), { instanceOf: WebAssembly.LinkError });
  // A memory already larger than the initial size is accepted, and the data segment lands in it.
  const given = new WebAssembly.Memory({ initial: 3, maximum: 8 });
  const instance = new WebAssembly.Instance(module, { keystate: { log: () => undefined, memory: given } });
  setFuel(instance, 100);
  const exports = instance.exports as unknown as { memory: WebAssembly.Memory; size(): number; read(at: number): number };
  t.is(exports.memory, given);
  t.is(exports.size(), 3);
  t.is(exports.read(70000), "h".charCodeAt(0));
  t.throws(() => given.grow(6), { instanceOf: RangeError });
});

test("importMemory leaves a module without a memory, or with a shared one, as it would be without it", (t) => {
  const noMemory = instrumentModule(wat(`(module (func (export "f")))`), { maxMemoryPages: 8, meterFuel: true, importMemory: true });
  t.false(noMemory.report.memoryImported);
  t.deepEqual(WebAssembly.Module.imports(new WebAssembly.Module(noMemory.bytes)), []);
  const shared = instrumentModule(wat(`(module (memory (export "memory") 1 4 shared))`), { maxMemoryPages: 8, meterFuel: true, importMemory: true });
  t.false(shared.report.memoryImported);
  t.deepEqual(WebAssembly.Module.imports(new WebAssembly.Module(shared.bytes)), []);
});

test("classifyTrap: an allocator-style unreachable at the memory maximum is 'memory', below it 'trap'", (t) => {
  const atMax = instantiate(instrumentModule(MEMORY("1"), { maxMemoryPages: 3, meterFuel: true }).bytes);
  setFuel(atMax, 1000);
  const err = t.throws(() => (atMax.exports as unknown as MemoryExports).fill());
  t.is(classifyTrap(err, atMax, 3), "memory");
  t.is(classifyTrap(err, atMax, 4), "trap"); // the same trap with headroom left is a plain trap

  const { instance, exports } = metered();
  setFuel(instance, 1000);
  t.is(classifyTrap(t.throws(() => exports.div(0)), instance, 16), "trap");
  t.is(classifyTrap(new RangeError("WebAssembly.Memory.grow(): Maximum memory size exceeded"), instance, 16), "memory");
  t.is(classifyTrap(new Error("Allocation too large (~lib/rt/itcms.ts:261:31)"), instance, 16), "memory");
  t.is(classifyTrap(new Error("abort: bad input"), instance, 16), "trap");
});

// Raw custom section bytes: id 0, size, name, payload; `padded` writes the size as a 5-byte LEB.
function customSection(name: string, payload: Uint8Array, padded = false): Uint8Array {
  const nameBytes = new TextEncoder().encode(name);
  const size = 1 + nameBytes.length + payload.length;
  if (size >= 128) throw new Error("keep fixture sections small");
  const sizeBytes = padded ? [size | 0x80, 0x80, 0x80, 0x80, 0x00] : [size];
  return Uint8Array.from([0, ...sizeBytes, nameBytes.length, ...nameBytes, ...payload]);
}

function indexOfBytes(haystack: Uint8Array, needle: Uint8Array): number {
  outer: for (let i = 0; i + needle.length <= haystack.length; i++) {
    for (let k = 0; k < needle.length; k++) if (haystack[i + k] !== needle[k]) continue outer;
    return i;
  }
  return -1;
}

test("custom sections survive byte-for-byte, in place, even with a non-minimal size encoding", (t) => {
  const descriptor = customSection("keystate.descriptor", Uint8Array.from([0x0a, 0x05, 1, 2, 3, 0xff, 0x00]));
  const manifest = customSection("keystate.manifest", Uint8Array.from([0x12, 0x03, 0x61, 0x62, 0x63]), true);
  const other = customSection("producers", Uint8Array.from([0]));
  const base = MEMORY("1");
  // One custom section before the first known section, two at the end.
  const bytes = Uint8Array.from([...base.subarray(0, 8), ...other, ...base.subarray(8), ...descriptor, ...manifest]);
  const out = instrumentModule(bytes, METERED).bytes;
  for (const section of [other, descriptor, manifest]) t.not(indexOfBytes(out, section), -1);
  t.true(indexOfBytes(out, other) < 16); // still right after the header
  t.true(indexOfBytes(out, descriptor) < indexOfBytes(out, manifest));
  const before = new WebAssembly.Module(bytes);
  const after = new WebAssembly.Module(out);
  for (const name of ["keystate.descriptor", "keystate.manifest", "producers"]) {
    t.deepEqual(WebAssembly.Module.customSections(after, name).map((b) => new Uint8Array(b)),
      WebAssembly.Module.customSections(before, name).map((b) => new Uint8Array(b)));
  }
});

test("imports are unchanged and the only new export is the fuel global", (t) => {
  const bytes = wat(`(module
    (import "keystate" "log" (func $log (param i32 i32 i32)))
    (import "env" "abort" (func (param i32 i32 i32 i32)))
    (import "env" "seed" (global $seed i32))
    (global $own (mut i32) (global.get $seed))
    (memory (export "memory") 1)
    (func (export "run") (result i32) (global.get $own)))`);
  const before = new WebAssembly.Module(bytes);
  const { bytes: out, report } = instrumentModule(bytes, METERED);
  const after = new WebAssembly.Module(out);
  t.deepEqual(WebAssembly.Module.imports(after), WebAssembly.Module.imports(before));
  t.deepEqual(WebAssembly.Module.exports(after), [...WebAssembly.Module.exports(before), { name: FUEL_EXPORT, kind: "global" }]);
  t.is(report.fuelExport, FUEL_EXPORT);
  // The fuel global went after the imported and defined globals: existing indices still work.
  const noop = (): void => {};
  const instance = new WebAssembly.Instance(after, { keystate: { log: noop }, env: { abort: noop, seed: 42 } });
  setFuel(instance, 10);
  t.is((instance.exports["run"] as () => number)(), 42);
  t.is(readFuel(instance), 9);
});

test("without meterFuel only the memory limits change", (t) => {
  const bytes = MEMORY("1");
  const { bytes: out, report } = instrumentModule(bytes, { maxMemoryPages: 4, meterFuel: false });
  t.is(report.fuelExport, null);
  t.is(report.fuelSites, 0);
  t.deepEqual(WebAssembly.Module.exports(new WebAssembly.Module(out)), WebAssembly.Module.exports(new WebAssembly.Module(bytes)));
  t.is(out.length, bytes.length + 1); // the memory limits gained a maximum: one byte
});

test("instrumenting is deterministic, and refuses an already instrumented module", (t) => {
  const a = instrumentModule(LOOPS, METERED).bytes;
  const b = instrumentModule(LOOPS, METERED).bytes;
  t.deepEqual(a, b);
  t.notDeepEqual(a, LOOPS);
  const err = t.throws(() => instrumentModule(a, METERED));
  t.true(isKeystateError(err, "INVALID_MODULE"));
  t.regex(err!.message, /already exports "keystate_fuel"/);
});

test("malformed or unsupported input fails with INVALID_MODULE, not a crash", (t) => {
  const cases: Uint8Array[] = [
    Uint8Array.from([1, 2, 3]),
    LOOPS.subarray(0, LOOPS.length - 3), // truncated inside the code section
    Uint8Array.from([0, 0x61, 0x73, 0x6d, 0x0d, 0, 1, 0]), // a component
    // type () -> (), one function whose body is the unassigned opcode 0xff
    Uint8Array.from([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0, 1, 4, 1, 0x60, 0, 0, 3, 2, 1, 0, 10, 5, 1, 3, 0, 0xff, 0x0b]),
  ];
  for (const bytes of cases) t.true(isKeystateError(t.throws(() => instrumentModule(bytes, METERED)), "INVALID_MODULE"));
  t.throws(() => instrumentModule(LOOPS, { maxMemoryPages: -1, meterFuel: true }), { instanceOf: RangeError });
});

function loopsIn(bytes: Uint8Array, features: number): { functions: number; loops: number } {
  const m = binaryen.readBinary(bytes);
  try {
    m.setFeatures(features);
    let functions = 0; // defined ones: imported functions have no body to meter
    for (let i = 0; i < m.getNumFunctions(); i++) if (!binaryen.getFunctionInfo(m.getFunctionByIndex(i)).module) functions++;
    return { functions, loops: (m.emitText().match(/\(loop/g) ?? []).length };
  } finally {
    m.dispose();
  }
}

function validByBinaryen(bytes: Uint8Array, features: number): boolean {
  const m = binaryen.readBinary(bytes);
  try {
    m.setFeatures(features);
    return Boolean(m.validate());
  } finally {
    m.dispose();
  }
}

// Every immediate kind the scanner must skip exactly. Declarations are padded so that
// indices, constants, offsets and lanes are 3 -- the `loop` opcode -- wherever possible: a
// scanner that skipped one byte too few would see a loop that is not there, and one that
// skipped too many would swallow a real one, and the counts below would disagree.
test("the scanner decodes SIMD, bulk memory, atomics, reference types, exceptions and tail calls", (t) => {
  const bytes = wat(`(module
    (type $pair (func (result i32 i64)))
    (memory $m 1 1 shared)
    (table $t0 1 funcref) (table $t1 1 funcref) (table $t2 1 funcref)
    (table $t 4 funcref)
    (tag $e0) (tag $e1) (tag $e2)
    (tag $e (param i32))
    (data $d0 "a") (data $d1 "b") (data $d2 "c")
    (data $d "hello")
    (elem $el0 func) (elem $el1 func) (elem $el2 func)
    (elem $el func $pair)
    (global $g0 i32 (i32.const 3)) (global $g1 i32 (i32.const 3)) (global $g2 i32 (i32.const 3))
    (global $g (mut i64) (i64.const -9223372036854775808))
    (func $f0) (func $f1) (func $f2)
    (func $leaf (result i32) (i32.const 7))
    (func $pair (type $pair) (i32.const 3) (i64.const 3))
    (func (export "zoo") (param $x i32) (result i32) (local $p1 i32) (local $p2 i32) (local $v v128) (local $r funcref)
      (local.set $v (v128.const i32x4 3 3 3 3))
      (local.set $v (i8x16.shuffle 3 3 3 3 3 3 3 3 3 3 3 3 3 3 3 3 (local.get $v) (local.get $v)))
      (local.set $v (i16x8.replace_lane 3 (local.get $v) (i8x16.extract_lane_s 3 (local.get $v))))
      (local.set $v (f64x2.replace_lane 1 (local.get $v) (f64.const 3)))
      (local.set $v (v128.load8_lane offset=3 3 (i32.const 3) (local.get $v)))
      (v128.store64_lane offset=3 1 (i32.const 16) (local.get $v))
      (local.set $v (v128.load32_zero offset=3 (i32.const 3)))
      (local.set $v (v128.load64_zero offset=3 (i32.const 3)))
      (local.set $v (v128.load8x8_s offset=3 (i32.const 3)))
      (v128.store offset=3 (i32.const 3) (local.get $v))
      (memory.init $d (i32.const 3) (i32.const 0) (i32.const 3))
      (data.drop $d)
      (memory.copy (i32.const 3) (i32.const 8) (i32.const 3))
      (memory.fill (i32.const 3) (i32.const 3) (i32.const 3))
      (table.init $t $el (i32.const 0) (i32.const 0) (i32.const 1))
      (elem.drop $el)
      (drop (table.grow $t (ref.null func) (i32.const 3)))
      (drop (table.size $t))
      (table.fill $t (i32.const 0) (ref.func $pair) (i32.const 1))
      (table.copy $t $t (i32.const 1) (i32.const 0) (i32.const 1))
      (local.set $r (table.get $t (i32.const 0)))
      (table.set $t (i32.const 3) (local.get $r))
      (drop (ref.is_null (ref.func $leaf)))
      (drop (i32.atomic.rmw.add offset=3 (i32.const 1) (i32.const 3))) ;; effective addresses stay aligned
      (atomic.fence)
      (drop (memory.atomic.notify offset=3 (i32.const 1) (i32.const 3)))
      (drop (i64.atomic.rmw.cmpxchg offset=3 (i32.const 5) (i64.const 3) (i64.const 3)))
      (drop (i32.trunc_sat_f64_s (f64.const 3)))
      (drop (i32.extend8_s (f32.ne (f32.const 3) (f32.const 3))))
      (global.set $g (i64.const 0x0303030303030303))
      (drop (global.get $g2))
      (drop (select (result funcref) (ref.null func) (local.get $r) (i32.const 3)))
      i32.const 0 call_indirect $t (type $pair) drop drop
      (block $out
        (block $a (block $b (br_table $a $b $out (local.get $x))))
        (loop $l (br_if $l (i32.eqz (i32.const 3)))))
      (try (do (throw $e (i32.const 3))) (catch $e (drop)) (catch_all))
      (drop (call $leaf))
      (drop (i32.load16_u offset=65533 align=1 (i32.const 0)))
      (drop (loop $outer (result i32) (loop $inner (result i32) (i32.const 3))))
      (drop (memory.size))
      (return_call $leaf)))`);
  const { bytes: out, report } = instrumentModule(bytes, METERED);
  const { functions, loops } = loopsIn(bytes, NODE_FEATURES);
  t.is(report.functions, functions);
  t.is(report.fuelSites, functions + loops);
  t.is(loops, 3);
  t.true(validByBinaryen(out, NODE_FEATURES));
  const instance = instantiate(out);
  setFuel(instance, 1000);
  t.is((instance.exports["zoo"] as (x: number) => number)(0), 7);
  t.is(readFuel(instance), 1000 - 7); // zoo, 3 loop headers, call $leaf, call_indirect $pair, return_call $leaf
});

test("the scanner also decodes GC, multi-memory, try_table and relaxed SIMD (checked by binaryen)", (t) => {
  const bytes = wat(`(module
    (type $p0 (struct (field i32))) (type $p1 (struct (field i64))) (type $p2 (struct (field f32)))
    (type $s (struct (field (mut i32)) (field i64) (field i32) (field (mut i32))))
    (type $a (array (mut i8)))
    (type $f (func (param i32) (result i32)))
    (global $k0 (ref null $p0) (ref.null none)) (global $k1 (ref null $p1) (ref.null none)) (global $k2 (ref null $p2) (ref.null none))
    (memory $m0 1 1) (memory $m1 1) (memory $m2 1)
    (memory $m3 2 3)
    (data $d0 "a") (data $d1 "b") (data $d2 "c")
    (data $d "abc")
    (tag $e (param i32))
    (func $f0) (func $f1) (func $f2)
    (func $id (type $f) (local.get 0))
    (func (export "gc") (param $x i32) (result i32) (local $sr (ref null $s)) (local $ar (ref null $a)) (local $v v128) (local $any anyref)
      (local.set $sr (struct.new $s (i32.const 3) (i64.const 3) (i32.const 3) (i32.const 3)))
      (struct.set $s 3 (local.get $sr) (i32.const 3))
      (drop (struct.get $s 3 (local.get $sr)))
      (local.set $sr (struct.new_default $s))
      (local.set $ar (array.new $a (i32.const 3) (i32.const 3)))
      (local.set $ar (array.new_default $a (i32.const 3)))
      (local.set $ar (array.new_data $a $d (i32.const 0) (i32.const 3)))
      (local.set $ar (array.new_fixed $a 3 (i32.const 3) (i32.const 3) (i32.const 3)))
      (array.set $a (local.get $ar) (i32.const 0) (i32.const 3))
      (drop (array.get_s $a (local.get $ar) (i32.const 0)))
      (drop (array.len (local.get $ar)))
      (array.fill $a (local.get $ar) (i32.const 0) (i32.const 3) (i32.const 1))
      (array.copy $a $a (local.get $ar) (i32.const 0) (local.get $ar) (i32.const 1) (i32.const 1))
      (array.init_data $a $d (local.get $ar) (i32.const 0) (i32.const 0) (i32.const 1))
      (local.set $any (ref.i31 (i32.const 3)))
      (drop (i31.get_u (ref.cast (ref i31) (local.get $any))))
      (drop (ref.test (ref null $s) (local.get $any)))
      (drop (block $b (result anyref) (br_on_cast $b anyref (ref $s) (local.get $any)) (drop) (ref.null any)))
      (drop (block $c (result anyref) (br_on_cast_fail $c anyref (ref $s) (local.get $any)) (drop) (ref.null any)))
      (drop (call_ref $f (i32.const 3) (ref.func $id)))
      (drop (select (result (ref null $s)) (local.get $sr) (struct.new_default $s) (i32.const 3)))
      (drop (block $n (result (ref $s)) (br $n (ref.as_non_null (local.get $sr)))))
      (i32.store $m3 offset=3 (i32.const 3) (i32.load8_s $m3 offset=3 (i32.const 3)))
      (local.set $v (f32x4.relaxed_madd (v128.load $m3 offset=3 (i32.const 0)) (local.get $v) (local.get $v)))
      (local.set $v (v128.load8_lane $m3 offset=3 3 (i32.const 3) (local.get $v)))
      (memory.copy $m3 $m3 (i32.const 0) (i32.const 3) (i32.const 3))
      (memory.fill $m3 (i32.const 3) (i32.const 3) (i32.const 3))
      (memory.init $m3 $d (i32.const 3) (i32.const 0) (i32.const 3))
      (drop (memory.grow $m3 (i32.const 3)))
      (drop (memory.size $m3))
      (drop (block $k (result i32) (try_table (catch $e $k) (throw $e (i32.const 3))) (i32.const 3)))
      (loop $l (br_if $l (i32.const 0)))
      (return_call_ref $f (local.get $x) (ref.func $id))))`, LATER_FEATURES);
  const { bytes: out, report } = instrumentModule(bytes, { maxMemoryPages: 2, meterFuel: true });
  const { functions, loops } = loopsIn(bytes, LATER_FEATURES);
  t.is(report.functions, functions);
  t.is(report.fuelSites, functions + loops);
  t.deepEqual(report.memories.map((m) => m.maxPages), [1, 2, 2, 2]);
  t.true(validByBinaryen(out, LATER_FEATURES));
});

// The AssemblyScript fixture: real allocator, real start function, realistic code.
const fixture = compileAssemblyScript(fileURLToPath(new URL("../fixtures/metering/handler.ts", import.meta.url)))
  .then((bytes) => new Uint8Array(bytes));

interface HandlerExports {
  memory: WebAssembly.Memory;
  inputBuffer(len: number): number;
  outputPtr(): number;
  handle(len: number): number;
  hoard(kib: number): number;
  spin(): void;
}

function asInstance(bytes: Uint8Array<ArrayBuffer>): { instance: WebAssembly.Instance; exports: HandlerExports } {
  const instance = instantiate(bytes, { env: { abort: () => { throw new Error("abort"); } } });
  return { instance, exports: instance.exports as unknown as HandlerExports };
}

function runCommand(exports: HandlerExports, before: () => void, command: Uint8Array): Uint8Array {
  before();
  const ptr = exports.inputBuffer(command.length);
  new Uint8Array(exports.memory.buffer, ptr, command.length).set(command);
  before();
  const len = exports.handle(command.length);
  return new Uint8Array(exports.memory.buffer, exports.outputPtr(), Math.max(len, 0)).slice();
}

test("an AssemblyScript module: same replies metered, every loop found, spin stopped", async (t) => {
  const bytes = await fixture;
  const { bytes: out, report } = instrumentModule(bytes, METERED);
  const { functions, loops } = loopsIn(bytes, NODE_FEATURES);
  t.is(report.functions, functions);
  t.is(report.fuelSites, functions + loops);
  t.true(loops > 5);

  const plain = asInstance(bytes);
  const meteredAs = asInstance(out);
  const refill = (): void => setFuel(meteredAs.instance, 1_000_000);
  const account = [...new TextEncoder().encode("alice")];
  for (const amount of [5, 7, 100]) {
    const command = Uint8Array.from([0x0a, account.length, ...account, 0x10, amount, 0x22, 3, 0x61, 0x2d, 0x62]);
    t.deepEqual(runCommand(meteredAs.exports, refill, command), runCommand(plain.exports, () => {}, command));
  }
  setFuel(meteredAs.instance, 100_000);
  t.is(classifyTrap(t.throws(() => meteredAs.exports.spin()), meteredAs.instance, 16), "fuel");
});

test("an AssemblyScript module that keeps allocating hits the cap and is classified 'memory'", async (t) => {
  const { bytes, report } = instrumentModule(await fixture, { maxMemoryPages: 8, meterFuel: true });
  const maxPages = report.memories[0]!.maxPages;
  t.is(maxPages, 8);
  const { instance, exports } = asInstance(bytes);
  const err = t.throws(() => {
    for (let i = 0; i < 1000; i++) {
      setFuel(instance, 1_000_000);
      exports.hoard(16);
    }
  });
  t.is(exports.memory.buffer.byteLength, maxPages * 65536);
  t.is(classifyTrap(err, instance, maxPages), "memory");
});

test("a hostile br_table count on truncated bytes is refused at once, not scanned for 2^32 targets", (t) => {
  // 30 bytes: one function whose body is `br_table` claiming 0xFFFFFFFF targets, then `end`.
  // The host validates before instrumenting; this is the instrumenter's own guard.
  const bytes = Uint8Array.from([
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
    0x01, 0x04, 0x01, 0x60, 0x00, 0x00, // type section: () -> ()
    0x03, 0x02, 0x01, 0x00, // function section: one function of type 0
    0x0a, 0x0a, 0x01, 0x08, 0x00, 0x0e, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x0b, // code: br_table 2^32-1
  ]);
  const started = performance.now();
  const error = t.throws(() => instrumentModule(bytes, { maxMemoryPages: 16, meterFuel: true }));
  t.true(isKeystateError(error, "INVALID_MODULE"));
  t.true(performance.now() - started < 1_000, "refused in well under a second");
});
