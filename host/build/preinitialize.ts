// Pre-initialisation at build time, as Wizer does it: the module's start function is run once
// here, and the module is rewritten to begin where it left off: linear memory as the start
// function left it (as data segments), every mutable global at the value it left, and no start
// function. AssemblyScript's start function sets up the runtime and the SDK's static objects
// (the input buffer, the reused readers and results, the handler registry); every instance
// used to run it again. Without it an instance of the counter is made in ~7 us instead of
// ~10 us, and a cold start does not compile the functions it called.
//
// Only a start function whose whole effect is memory and globals can be replaced by its
// result, so the module is left as it is when the start function calls an import, or when any
// code could have changed what the snapshot cannot see or restore (tables, passive data
// segments), or when a global is of a type other than a number.
import binaryenModule from "binaryen";
import { WASM_PAGE_BYTES } from "../runtime/guest-limits.js";
import { MAX_GAP } from "./merge-data-segments.js";
import { recordedAbort } from "../abi/guest-strings.js";

const binaryen = binaryenModule;

/** Instructions that change tables or data segments: with any of them present, no snapshot is taken. */
const UNSNAPSHOTTABLE = /\b(table\.(set|grow|fill|copy|init)|elem\.drop|data\.drop|memory\.init)\b/;

/** How `skipped` begins when the start function trapped: the module could never start, so `keystate build` stops there. */
export const START_FAILED = "the start function failed";

export interface PreinitResult {
  readonly code: Uint8Array;
  /** Why the module was left as it was; undefined when it was pre-initialised. */
  readonly skipped?: string;
}

/** What binaryen.js 132 has for data segments (its index.d.ts still names them memory segments). */
interface DataSegments {
  getNumDataSegments(): number;
  getDataSegmentByIndex(index: number): number;
  getDataSegmentInfo(segment: number): { readonly passive: boolean };
}

interface GlobalSnapshot {
  readonly name: string;
  readonly type: number;
  readonly value: number | bigint;
}

/** asc's output uses bulk memory and more; validation needs to know the features are allowed. */
function read(code: Uint8Array): binaryenModule.Module {
  const module = binaryen.readBinary(code);
  module.setFeatures(binaryen.Features.All);
  return module;
}

export interface PreinitOptions {
  /** Emit the module's function and global names (its name section), as `keystate build --names` asks. */
  readonly keepNames?: boolean;
}

export function preinitialize(code: Uint8Array, options: PreinitOptions = {}): PreinitResult {
  const module = read(code);
  try {
    const refusal = whyNot(module);
    if (refusal) return { code, skipped: refusal };
    const snapshot = runStart(module);
    if (typeof snapshot === "string") return { code, skipped: snapshot };
    rewrite(module, snapshot.memory, snapshot.globals);
    if (!module.validate()) return { code, skipped: "the rewritten module did not validate" };
    return { code: options.keepNames ? emitWithNames(module) : module.emitBinary() };
  } finally {
    module.dispose();
  }
}

/** binaryen writes the name section only with its process-wide debug-info option on: on for this emit alone. */
function emitWithNames(module: binaryenModule.Module): Uint8Array {
  const before = binaryen.getDebugInfo();
  binaryen.setDebugInfo(true);
  try {
    return module.emitBinary();
  } finally {
    binaryen.setDebugInfo(before);
  }
}

function whyNot(module: binaryenModule.Module): string | undefined {
  if (module.getStart() === 0) return "no start function";
  if (!module.hasMemory() || module.getMemoryInfo().module !== "") return "no memory of its own";
  const data = module as unknown as DataSegments;
  for (let i = 0; i < data.getNumDataSegments(); i++) {
    if (data.getDataSegmentInfo(data.getDataSegmentByIndex(i)).passive) return "a passive data segment";
  }
  for (let i = 0; i < module.getNumGlobals(); i++) {
    const global = binaryen.getGlobalInfo(module.getGlobalByIndex(i));
    if (global.module !== "") return "an imported global";
    if (![binaryen.i32, binaryen.i64, binaryen.f32, binaryen.f64].includes(global.type)) return `global ${global.name} is not a number`;
  }
  if (UNSNAPSHOTTABLE.test(module.emitText())) return "code that changes tables or data segments";
  return undefined;
}

/**
 * Instantiates a copy that exports every global and runs the start function as an export (so
 * that after a trap the instance is there to read an abort record from); what it left, or why
 * it cannot be used.
 */
function runStart(module: binaryenModule.Module): { memory: Uint8Array; globals: GlobalSnapshot[] } | string {
  const probe = read(module.emitBinary());
  let instance: WebAssembly.Instance;
  const globals: Array<{ name: string; type: number; exported: string }> = [];
  try {
    // By index: the probe is the module re-read from a binary emitted without its name section,
    // so a global the module knows by its source name (a build that kept names) is `global$N`
    // there, and the rewrite must name the module's own globals.
    for (let i = 0; i < module.getNumGlobals(); i++) {
      const global = binaryen.getGlobalInfo(module.getGlobalByIndex(i));
      if (!global.mutable) continue;
      const exported = `__keystate_preinit_global_${i}`;
      probe.addGlobalExport(binaryen.getGlobalInfo(probe.getGlobalByIndex(i)).name, exported);
      globals.push({ name: global.name, type: global.type, exported });
    }
    probe.addMemoryExport("0", "__keystate_preinit_memory");
    probe.addFunctionExport(binaryen.getFunctionInfo(probe.getStart()).name, "__keystate_preinit_start");
    probe.setStart(0 as unknown as binaryenModule.FunctionRef);
    const compiled = new WebAssembly.Module(probe.emitBinary() as Uint8Array<ArrayBuffer>);
    let called: string | undefined;
    const imports: Record<string, Record<string, () => void>> = {};
    for (const entry of WebAssembly.Module.imports(compiled)) {
      if (entry.kind !== "function") return `it imports ${entry.kind} ${entry.module}.${entry.name}`;
      (imports[entry.module] ??= {})[entry.name] = () => {
        called ??= `${entry.module}.${entry.name}`;
        throw new Error("an import was called");
      };
    }
    try {
      instance = new WebAssembly.Instance(compiled, imports);
    } catch (err) {
      return `${START_FAILED}: ${(err as Error).message}`;
    }
    try {
      (instance.exports.__keystate_preinit_start as () => void)();
    } catch (err) {
      if (called) return `the start function calls ${called}`;
      const aborted = recordedAbort(instance.exports.ks_abort, instance.exports.__keystate_preinit_memory as WebAssembly.Memory);
      return `${START_FAILED}: ${aborted ?? (err as Error).message}`;
    }
  } finally {
    probe.dispose();
  }
  const memory = instance.exports.__keystate_preinit_memory as WebAssembly.Memory;
  return {
    memory: new Uint8Array(memory.buffer.slice(0)),
    globals: globals.map(({ name, type, exported }) => ({ name, type, value: (instance.exports[exported] as WebAssembly.Global).value as number | bigint })),
  };
}

function rewrite(module: binaryenModule.Module, memory: Uint8Array, globals: readonly GlobalSnapshot[]): void {
  for (const global of globals) {
    module.removeGlobal(global.name);
    module.addGlobal(global.name, global.type, true, constant(module, global.type, global.value));
  }
  const info = module.getMemoryInfo();
  const segments = nonZeroRuns(memory).map(({ offset, bytes }) => ({ offset: module.i32.const(offset), data: bytes, passive: false }));
  // The export that named the memory refers to it by its internal name, which setMemory keeps.
  module.setMemory(memory.length / WASM_PAGE_BYTES, info.max ?? -1, null, segments, info.shared, info.is64, "0");
  module.setStart(0 as unknown as binaryenModule.FunctionRef);
}

function constant(module: binaryenModule.Module, type: number, value: number | bigint): binaryenModule.ExpressionRef {
  if (type === binaryen.i32) return module.i32.const(Number(value));
  if (type === binaryen.f32) return module.f32.const(Number(value));
  if (type === binaryen.f64) return module.f64.const(Number(value));
  return module.i64.const(BigInt.asIntN(64, BigInt(value)));
}

/** The memory's non-zero bytes as segments, zero gaps shorter than MAX_GAP kept inside one. */
export function nonZeroRuns(memory: Uint8Array): Array<{ offset: number; bytes: Uint8Array }> {
  const runs: Array<{ offset: number; bytes: Uint8Array }> = [];
  let start = -1;
  let lastNonZero = -1;
  for (let i = 0; i < memory.length; i++) {
    if (memory[i] === 0) continue;
    if (start >= 0 && i - lastNonZero > MAX_GAP) {
      runs.push({ offset: start, bytes: memory.slice(start, lastNonZero + 1) });
      start = -1;
    }
    if (start < 0) start = i;
    lastNonZero = i;
  }
  if (start >= 0) runs.push({ offset: start, bytes: memory.slice(start, lastNonZero + 1) });
  return runs;
}
