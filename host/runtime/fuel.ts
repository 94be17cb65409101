// Fuel: a deterministic CPU budget per call. Every function entry and every loop header
// gets, inline,
//     global.get $fuel  i32.const 1  i32.sub  global.set $fuel
//     global.get $fuel  i32.const 1  i32.lt_s  if  unreachable  end
// so one unit of fuel = one function call or one loop iteration, and a call traps the
// moment its fuel reaches 0. Only `loop` branches backwards and only calls recurse, so no
// code runs unboundedly between two checks. The sequence is stack-neutral, needs no new
// local (no function's local indices or types change) and, measured with V8 TurboFan, costs
// the same as variants with a temporary local. The global is an i32, so the host reads and
// writes it without BigInt.
//
// The scanner below decodes every instruction's immediates so it finds each real `loop`
// opcode; an opcode it does not know is refused rather than skipped, because misreading an
// immediate could hide a loop from the meter.
import type { ByteReader, ByteWriter } from "./instrument.js";

/** The export through which the host sets and reads the fuel of an instance. */
export const FUEL_EXPORT = "keystate_fuel";
/**
 * The export holding the page count the guest last asked `memory.grow` for (the host zeroes
 * it before each call). A trap right after a grow the cap refused is then told from a plain
 * trap even when the refused request came below the maximum (an allocator asking for a big
 * block with a few pages of headroom left): see classifyTrap.
 */
export const GROW_EXPORT = "keystate_grow";
/** Initial fuel: the start function's budget. AS start functions are short; 10M units is ~10-35 ms of tight code here. */
export const DEFAULT_START_FUEL = 10_000_000;
/** The largest budget an i32 holds. */
export const MAX_FUEL = 0x7fffffff;

/** Writes the global entry `(global (mut i32) (i32.const startFuel))`. */
export function fuelGlobalEntry(w: ByteWriter, startFuel: number): void {
  w.byte(0x7f); // i32
  w.byte(0x01); // mutable
  w.byte(0x41); // i32.const
  w.sleb32(startFuel);
  w.byte(0x0b); // end
}

function uleb(value: number): number[] {
  const out: number[] = [];
  let v = value;
  while (v >= 0x80) {
    out.push((v & 0x7f) | 0x80);
    v >>>= 7;
  }
  out.push(v);
  return out;
}

/** Before every `memory.grow`: `global.set $grow  global.get $grow` records the delta, stack-neutral. */
function growRecord(growGlobal: number): Uint8Array {
  return Uint8Array.from([0x24, ...uleb(growGlobal), 0x23, ...uleb(growGlobal)]);
}

/** The injected check, for a fuel global at index `fuelGlobal`. */
function fuelCheck(fuelGlobal: number): Uint8Array {
  const get = [0x23, ...uleb(fuelGlobal)];
  return Uint8Array.from([
    ...get, 0x41, 0x01, 0x6b, // global.get, i32.const 1, i32.sub
    0x24, ...uleb(fuelGlobal), // global.set
    ...get, 0x41, 0x01, 0x48, // global.get, i32.const 1, i32.lt_s
    0x04, 0x40, 0x00, 0x0b, // if (no result) unreachable end
  ]);
}

/**
 * Rewrites a code section (reader positioned at its contents) into `w`, injecting the fuel
 * check at every function entry and loop header, and, given `growGlobal` (an i32 global;
 * only for 32-bit memories), the grow record before every `memory.grow`.
 */
export function meterCode(r: ByteReader, w: ByteWriter, fuelGlobal: number, growGlobal?: number): { functions: number; sites: number; grows: number } {
  const b = r.bytes;
  const check = fuelCheck(fuelGlobal);
  const record = growGlobal === undefined ? undefined : growRecord(growGlobal);
  const count = r.u32();
  w.uleb(count);
  const loops: number[] = [];
  const grows: number[] = [];
  let sites = 0;
  let growSites = 0;
  for (let i = 0; i < count; i++) {
    const size = r.u32();
    const bodyStart = r.pos;
    const bodyEnd = bodyStart + size;
    if (bodyEnd > r.end) throw r.fail(`function body ${i} overruns the code section`);
    const groups = r.u32();
    for (let g = 0; g < groups; g++) {
      r.u32();
      r.valType();
    }
    const codeStart = r.pos;
    loops.length = 0;
    grows.length = 0;
    scanInstructions(r, codeStart, bodyEnd, loops, record ? grows : undefined);
    w.uleb(size + check.length * (1 + loops.length) + (record?.length ?? 0) * grows.length);
    w.bytes(b, bodyStart, codeStart);
    w.bytes(check);
    let from = codeStart;
    // Both lists are in code order; a loop header and a grow never share an offset.
    for (let l = 0, g = 0; l < loops.length || g < grows.length;) {
      const isLoop = g >= grows.length || (l < loops.length && loops[l]! < grows[g]!);
      const at = isLoop ? loops[l++]! : grows[g++]!;
      w.bytes(b, from, at);
      w.bytes(isLoop ? check : record!);
      from = at;
    }
    w.bytes(b, from, bodyEnd);
    sites += 1 + loops.length;
    growSites += grows.length;
    r.pos = bodyEnd;
  }
  if (r.pos !== r.end) throw r.fail("code section has trailing bytes");
  return { functions: count, sites, grows: growSites };
}

// Immediate layout of each one-byte opcode.
const enum Imm {
  Invalid, None, Leb, Leb2, HeapType, Block, Loop, End, Delegate, Memarg, Bytes4, Bytes8, BrTable, SelectT,
  TryTable, Prefix,
}
const IMM = new Uint8Array(256); // Imm.Invalid = 0
const imm = (from: number, to: number, kind: Imm): void => { IMM.fill(kind, from, to + 1); };
imm(0x00, 0x01, Imm.None); // unreachable nop
imm(0x02, 0x02, Imm.Block); // block
imm(0x03, 0x03, Imm.Loop);
imm(0x04, 0x04, Imm.Block); // if
imm(0x05, 0x05, Imm.None); // else
imm(0x06, 0x06, Imm.Block); // try (legacy exceptions)
imm(0x07, 0x09, Imm.Leb); // catch throw rethrow
imm(0x0a, 0x0a, Imm.None); // throw_ref
imm(0x0b, 0x0b, Imm.End);
imm(0x0c, 0x0d, Imm.Leb); // br br_if
imm(0x0e, 0x0e, Imm.BrTable);
imm(0x0f, 0x0f, Imm.None); // return
imm(0x10, 0x10, Imm.Leb); // call
imm(0x11, 0x11, Imm.Leb2); // call_indirect type table
imm(0x12, 0x12, Imm.Leb); // return_call
imm(0x13, 0x13, Imm.Leb2); // return_call_indirect
imm(0x14, 0x15, Imm.Leb); // call_ref return_call_ref
imm(0x18, 0x18, Imm.Delegate);
imm(0x19, 0x19, Imm.None); // catch_all
imm(0x1a, 0x1b, Imm.None); // drop select
imm(0x1c, 0x1c, Imm.SelectT);
imm(0x1f, 0x1f, Imm.TryTable);
imm(0x20, 0x26, Imm.Leb); // local.* global.* table.get table.set
imm(0x28, 0x3e, Imm.Memarg); // loads and stores
imm(0x3f, 0x40, Imm.Leb); // memory.size memory.grow (memory index)
imm(0x41, 0x42, Imm.Leb); // i32.const i64.const
imm(0x43, 0x43, Imm.Bytes4);
imm(0x44, 0x44, Imm.Bytes8);
imm(0x45, 0xc4, Imm.None); // numeric, including sign extension
imm(0xd0, 0xd0, Imm.HeapType); // ref.null
imm(0xd1, 0xd1, Imm.None); // ref.is_null
imm(0xd2, 0xd2, Imm.Leb); // ref.func
imm(0xd3, 0xd4, Imm.None); // ref.eq ref.as_non_null
imm(0xd5, 0xd6, Imm.Leb); // br_on_null br_on_non_null
imm(0xfb, 0xfe, Imm.Prefix); // GC, misc (saturating truncation, bulk memory, tables), SIMD, atomics

// Number of LEB immediates per 0xFC sub-opcode: saturating truncations, bulk memory, tables.
const MISC_LEBS = [0, 0, 0, 0, 0, 0, 0, 0, 2, 1, 2, 1, 2, 1, 2, 1, 1, 1];
// Per 0xFB (GC) sub-opcode, up to i31.get_u; ref.test/ref.cast (20-23) take a heap type and
// br_on_cast(_fail) (24-25) flags, a label and two heap types: handled in skipGC.
const GC_LEBS = [1, 1, 2, 2, 2, 2, 1, 1, 2, 2, 2, 1, 1, 1, 1, 0, 1, 2, 2, 2, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0];

/**
 * Skips LEB128s from `p`; returns the new position (past the end of `b` when truncated).
 * Stops at the end of the input: a count read from hostile bytes (a br_table claiming
 * 2^32 targets) must not turn into billions of iterations over nothing.
 */
function skipLebs(b: Uint8Array, p: number, n: number): number {
  for (let i = 0; i < n; i++) {
    do {
      if (p >= b.length) return b.length + 1;
    } while (b[p++]! & 0x80);
  }
  return p;
}

/**
 * Skips a heap type: an abstract type (one byte) or a type index (s33). The `exact`
 * prefix (0x62, custom-descriptors proposal) is refused: Node's V8 does not accept it yet,
 * and misreading its length could misplace every instruction after it.
 */
function skipHeapType(r: ByteReader, p: number): number {
  if (r.bytes[p] === 0x62) throw r.fail(`unsupported exact heap type at offset ${p}`);
  return skipLebs(r.bytes, p, 1);
}

/** Skips a value type: one byte, or 0x63/0x64 (nullable / non-null reference) and a heap type. */
function skipValType(r: ByteReader, p: number): number {
  const t = r.bytes[p]!;
  return t === 0x63 || t === 0x64 ? skipHeapType(r, p + 1) : p + 1;
}

/** Skips a block type: 0x40 (empty), a value type, or a type index (s33). */
function skipBlockType(r: ByteReader, p: number): number {
  const t = r.bytes[p]!;
  if (t === 0x63 || t === 0x64) return skipHeapType(r, p + 1);
  return skipLebs(r.bytes, p, 1);
}

function skipMemarg(r: ByteReader, p: number): number {
  const b = r.bytes;
  let align = b[p]!;
  if (align & 0x80) {
    r.pos = p;
    align = r.u32();
    p = r.pos;
  } else {
    p++;
  }
  // Bit 6 of the alignment says a memory index follows (multi-memory); then the offset.
  return skipLebs(b, p, align & 0x40 ? 2 : 1);
}

function readU32(r: ByteReader, p: number): [number, number] {
  r.pos = p;
  const v = r.u32();
  return [v, r.pos];
}

/**
 * Walks the instructions of one body in [start, end), appending to `loops` the offset just
 * after each loop header (and to `grows` the offset of each memory.grow). Checks that the
 * body is exactly one balanced expression.
 */
function scanInstructions(r: ByteReader, start: number, end: number, loops: number[], grows?: number[]): void {
  const b = r.bytes;
  let p = start;
  let depth = 1; // the body itself is a block
  while (p < end) {
    const at = p;
    const op = b[p++]!;
    switch (IMM[op] as Imm) {
      case Imm.None:
        break;
      case Imm.Leb:
        if (op === 0x40) grows?.push(at);
        while (b[p++]! & 0x80) { /* continuation */ }
        break;
      case Imm.Leb2:
        p = skipLebs(b, p, 2);
        break;
      case Imm.HeapType:
        p = skipHeapType(r, p);
        break;
      case Imm.Memarg:
        p = skipMemarg(r, p);
        break;
      case Imm.Block:
        p = skipBlockType(r, p);
        depth++;
        break;
      case Imm.Loop:
        p = skipBlockType(r, p);
        depth++;
        loops.push(p);
        break;
      case Imm.End:
        if (--depth === 0) {
          if (p !== end) throw r.fail(`code after the end of a function body at offset ${p}`);
          return;
        }
        break;
      case Imm.Delegate: // ends a legacy `try` block
        p = skipLebs(b, p, 1);
        if (--depth === 0) throw r.fail(`unbalanced delegate at offset ${at}`);
        break;
      case Imm.Bytes4:
        p += 4;
        break;
      case Imm.Bytes8:
        p += 8;
        break;
      case Imm.BrTable: {
        const [n, q] = readU32(r, p);
        p = skipLebs(b, q, n + 1);
        break;
      }
      case Imm.SelectT: {
        let [n, q] = readU32(r, p);
        for (; n > 0; n--) q = skipValType(r, q);
        p = q;
        break;
      }
      case Imm.TryTable: {
        p = skipBlockType(r, p);
        depth++;
        let [n, q] = readU32(r, p);
        for (; n > 0; n--) {
          const kind = b[q++]!;
          if (kind > 3) throw r.fail(`unknown try_table catch kind ${kind} at offset ${q - 1}`);
          q = skipLebs(b, q, kind <= 1 ? 2 : 1); // catch(_ref): tag + label; catch_all(_ref): label
        }
        p = q;
        break;
      }
      case Imm.Prefix:
        p = skipPrefixed(r, at, op, p);
        break;
      default:
        throw unknownOpcode(r, at, op);
    }
  }
  throw r.fail(`a function body ends without its final end (offset ${end})`);
}

/** Skips a prefixed instruction (`op` then a u32 sub-opcode) starting at `at`, `p` after `op`. */
function skipPrefixed(r: ByteReader, at: number, op: number, p: number): number {
  const [sub, q] = readU32(r, p);
  switch (op) {
    case 0xfb: return skipGC(r, at, sub, q);
    case 0xfc: return skipMisc(r, at, sub, q);
    case 0xfd: return skipSimd(r, at, sub, q);
    default: return skipAtomic(r, at, sub, q);
  }
}

function skipMisc(r: ByteReader, at: number, sub: number, q: number): number {
  const n = MISC_LEBS[sub];
  if (n === undefined) throw unknownOpcode(r, at, 0xfc, sub);
  return skipLebs(r.bytes, q, n);
}

function skipAtomic(r: ByteReader, at: number, sub: number, q: number): number {
  if (sub === 0x03) return q + 1; // atomic.fence: one zero byte
  if (sub <= 0x02 || (sub >= 0x10 && sub <= 0x4e)) return skipMemarg(r, q); // notify, wait, loads, stores, rmw
  throw unknownOpcode(r, at, 0xfe, sub);
}

function skipGC(r: ByteReader, at: number, sub: number, q: number): number {
  const n = GC_LEBS[sub];
  if (n === undefined) throw unknownOpcode(r, at, 0xfb, sub);
  if (n >= 0) return skipLebs(r.bytes, q, n);
  if (sub <= 23) return skipHeapType(r, q);
  return skipHeapType(r, skipHeapType(r, skipLebs(r.bytes, q, 2))); // br_on_cast: flags, label, from, to
}

function skipSimd(r: ByteReader, at: number, sub: number, q: number): number {
  if (sub <= 0x0b || sub === 0x5c || sub === 0x5d) return skipMemarg(r, q); // loads, stores, load_zero
  if (sub === 0x0c || sub === 0x0d) return q + 16; // v128.const, i8x16.shuffle
  if (sub >= 0x15 && sub <= 0x22) return q + 1; // extract_lane / replace_lane: lane index
  if (sub >= 0x54 && sub <= 0x5b) return skipMemarg(r, q) + 1; // load/store_lane: memarg, lane
  if (sub <= 0x113) return q; // everything else, including relaxed SIMD, has no immediate
  throw unknownOpcode(r, at, 0xfd, sub);
}

function unknownOpcode(r: ByteReader, at: number, op: number, sub?: number): Error {
  const name = sub === undefined ? `0x${op.toString(16)}` : `0x${op.toString(16)} ${sub}`;
  return r.fail(`unsupported opcode ${name} at offset ${at}`);
}

/** What the accessors need of an instance: its exports (a WebAssembly.Instance, or a wrapper exposing them). */
export type InstanceExports = Pick<WebAssembly.Instance, "exports">;

/** Sets the fuel of an instrumented instance; call before every guest call. */
export function setFuel(instance: InstanceExports, budget: number): void {
  if (!Number.isInteger(budget) || budget < 1 || budget > MAX_FUEL) {
    throw new RangeError(`a fuel budget must be an integer in [1, ${MAX_FUEL}], got ${budget}`);
  }
  fuelGlobal(instance).value = budget;
}

/** The fuel left in an instrumented instance (0 or less once a call ran out). */
export function readFuel(instance: InstanceExports): number {
  return fuelGlobal(instance).value as number;
}

/** The grow-request global, or undefined when the module has no 32-bit memory or was not metered. */
export function findGrowGlobal(instance: InstanceExports): WebAssembly.Global | undefined {
  const g = instance.exports[GROW_EXPORT];
  return g instanceof WebAssembly.Global ? g : undefined;
}

/** The fuel global, or undefined when the instance was not metered. */
export function findFuelGlobal(instance: InstanceExports): WebAssembly.Global | undefined {
  const g = instance.exports[FUEL_EXPORT];
  return g instanceof WebAssembly.Global ? g : undefined;
}

function fuelGlobal(instance: InstanceExports): WebAssembly.Global {
  const g = findFuelGlobal(instance);
  if (!g) throw new TypeError(`the instance has no "${FUEL_EXPORT}" global: it was not instrumented for fuel`);
  return g;
}
