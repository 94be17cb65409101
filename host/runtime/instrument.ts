// Deploy-time instrumentation of a guest module: caps every memory and table and injects a
// fuel counter, rewriting the binary directly. binaryen was measured first: readBinary +
// emitBinary alone cost ~6 ms p50 on a 22 KB AssemblyScript module (plus ~350 ms to load
// binaryen), above the 5 ms budget for the whole deploy; this rewriter copies every byte it
// does not need to change, so custom sections, imports and exports survive byte-for-byte.
//
// How the host uses it:
//   deploy    validate the upload; `const { bytes, report } = instrumentModule(upload,
//             { maxMemoryPages, meterFuel: true })`; compile `bytes`; keep
//             `report.memories[0].maxPages` for classifyTrap.
//   instance  `new WebAssembly.Instance(module, imports)`: the start function runs on the
//             fuel global's initial value (`startFuel`), the only fuel it can have.
//   each call look the global up once per instance (`findFuelGlobal`), set
//             `global.value = budget` (or `setFuel`) before every call, then call.
//   a throw   `classifyTrap(err, instance, maxPages)`: "fuel" | "memory" -> RESOURCE_EXHAUSTED,
//             "stack" | "trap" -> INTERNAL; discard the instance either way.
import { KeystateError } from "../errors.js";
import { DEFAULT_START_FUEL, FUEL_EXPORT, GROW_EXPORT, MAX_FUEL, fuelGlobalEntry, meterCode } from "./fuel.js";
import { type MemoryLimits, capMemorySection, hostMemoryImport, scanImports } from "./memory-cap.js";
import { type TableLimits, capTableSection } from "./table-cap.js";

/**
 * Bump whenever this file (or fuel.ts / memory-cap.ts / table-cap.ts) changes what it emits:
 * stored deploy-time artifacts carry it in their key, so a changed instrumenter never reuses
 * them. 2: tables capped, imported tables refused. 3: the memory imported from the host
 * (`importMemory`).
 */
export const INSTRUMENTER_VERSION = 3;

export interface InstrumentOptions {
  /** Every memory's maximum, in 64 KiB pages. A module needing more at start is refused. */
  maxMemoryPages: number;
  /** Inject the fuel counter (exported as `keystate_fuel`). */
  meterFuel: boolean;
  /**
   * The fuel global's initial value: the budget of the start function, which runs inside
   * `new WebAssembly.Instance` before the host can set anything. Default DEFAULT_START_FUEL.
   */
  startFuel?: number;
  /**
   * Turn the module's one memory (32-bit, unshared) into an import the host provides
   * (`keystate.memory`, same limits), so a fresh instance can be handed a zeroed memory
   * whose pages are already mapped (memory-pool.ts) instead of faulting in new ones.
   */
  importMemory?: boolean;
}

export interface InstrumentReport {
  /** Milliseconds per phase: section split + import scan, memory and table caps, fuel injection, assembly. */
  phases: { parseMs: number; memoryMs: number; fuelMs: number; emitMs: number };
  totalMs: number;
  bytesIn: number;
  bytesOut: number;
  /** The limits of each memory after capping, in index order. */
  memories: MemoryLimits[];
  /** The one memory (memories[0]) is now imported as `keystate.memory`: the host must provide it. */
  memoryImported: boolean;
  /** The limits of each defined table after capping, in index order (tables are never imported). */
  tables: TableLimits[];
  /** Function bodies instrumented, and fuel checks injected (entries + loop headers). */
  functions: number;
  fuelSites: number;
  /** The export the host writes the budget to, or null when fuel is not metered. */
  fuelExport: string | null;
}

export interface InstrumentResult {
  /** A fresh buffer (never shared), so it can go straight to WebAssembly.Module / compile. */
  bytes: Uint8Array<ArrayBuffer>;
  report: InstrumentReport;
}

// Section ids, and the order the binary format requires for the known ones.
const enum Sec {
  Custom = 0, Type = 1, Import = 2, Function = 3, Table = 4, Memory = 5, Global = 6,
  Export = 7, Start = 8, Element = 9, Code = 10, Data = 11, DataCount = 12, Tag = 13,
}
const SECTION_RANK: Record<number, number> = {
  [Sec.Type]: 1, [Sec.Import]: 2, [Sec.Function]: 3, [Sec.Table]: 4, [Sec.Memory]: 5, [Sec.Tag]: 6,
  [Sec.Global]: 7, [Sec.Export]: 8, [Sec.Start]: 9, [Sec.Element]: 10, [Sec.DataCount]: 11,
  [Sec.Code]: 12, [Sec.Data]: 13,
};

export interface Section {
  id: number;
  /** Offset of the id byte: an untouched section is copied from here to `end`. */
  headerStart: number;
  /** The section's contents, after its size. */
  start: number;
  end: number;
}

function invalidModule(detail: string): KeystateError {
  return new KeystateError("INVALID_MODULE", `the module cannot be instrumented: ${detail}`);
}

/**
 * Sequential reader of a module's bytes; every overrun is an INVALID_MODULE error.
 * fuel.ts and memory-cap.ts receive readers and writers rather than importing these
 * classes, so the three files have no runtime import cycle.
 */
export class ByteReader {
  constructor(readonly bytes: Uint8Array, public pos: number, readonly end: number) {}

  /** The error to throw for a module this code cannot (or must not) instrument. */
  fail(detail: string): KeystateError {
    return invalidModule(detail);
  }

  u8(): number {
    if (this.pos >= this.end) throw invalidModule(`unexpected end at offset ${this.pos}`);
    return this.bytes[this.pos++]!;
  }

  /** An unsigned LEB128 of up to 5 bytes (a u32). */
  u32(): number {
    let result = 0;
    for (let shift = 0; shift < 35; shift += 7) {
      const b = this.u8();
      result += (b & 0x7f) * 2 ** shift;
      if ((b & 0x80) === 0) {
        if (result > 0xffffffff) break;
        return result;
      }
    }
    throw invalidModule(`bad u32 at offset ${this.pos}`);
  }

  /** An unsigned LEB128 of up to 10 bytes (a u64, exact up to 2^53, which is all a limit can use). */
  u64(): number {
    let result = 0;
    for (let shift = 0; shift < 70; shift += 7) {
      const b = this.u8();
      result += (b & 0x7f) * 2 ** shift;
      if ((b & 0x80) === 0) return result;
    }
    throw invalidModule(`bad u64 at offset ${this.pos}`);
  }

  /** Skips any LEB128 (signed or not) without decoding it. */
  skipLeb(): void {
    while (this.u8() & 0x80) { /* continuation bytes */ }
  }

  /** Skips a value type: one byte, or 0x63/0x64 (nullable/non-null reference) plus a heap type. */
  valType(): void {
    const t = this.u8();
    if (t === 0x63 || t === 0x64) this.skipLeb();
  }

  /** Skips a length-prefixed byte string (a name) and returns its bounds. */
  name(): [number, number] {
    const len = this.u32();
    const start = this.pos;
    if (start + len > this.end) throw invalidModule(`name overruns at offset ${start}`);
    this.pos = start + len;
    return [start, this.pos];
  }
}

/** Growable output buffer. */
export class ByteWriter {
  buf: Uint8Array<ArrayBuffer>;
  len = 0;

  constructor(capacity: number) {
    this.buf = new Uint8Array(Math.max(capacity, 64));
  }

  reserve(n: number): void {
    if (this.len + n <= this.buf.length) return;
    const next = new Uint8Array(Math.max(this.buf.length * 2, this.len + n));
    next.set(this.buf.subarray(0, this.len));
    this.buf = next;
  }

  byte(b: number): void {
    this.reserve(1);
    this.buf[this.len++] = b;
  }

  /** Unsigned LEB128, minimal length; exact for any value up to 2^53. */
  uleb(value: number): void {
    this.reserve(10);
    let v = value;
    while (v >= 0x80) {
      this.buf[this.len++] = (v % 0x80) | 0x80;
      v = Math.floor(v / 0x80);
    }
    this.buf[this.len++] = v;
  }

  /** Signed LEB128 of an i32. */
  sleb32(value: number): void {
    this.reserve(5);
    let v = value | 0;
    for (;;) {
      const b = v & 0x7f;
      v >>= 7;
      const done = (v === 0 && (b & 0x40) === 0) || (v === -1 && (b & 0x40) !== 0);
      this.buf[this.len++] = done ? b : b | 0x80;
      if (done) return;
    }
  }

  bytes(src: Uint8Array, start = 0, end = src.length): void {
    this.reserve(end - start);
    this.buf.set(src.subarray(start, end), this.len);
    this.len += end - start;
  }

  /** The bytes written; no copy when the writer was sized exactly. */
  result(): Uint8Array<ArrayBuffer> {
    return this.len === this.buf.length ? this.buf : this.buf.slice(0, this.len);
  }
}

/** The module's top-level sections, checked for order and bounds (INVALID_MODULE otherwise). */
export function splitSections(bytes: Uint8Array): Section[] {
  if (bytes.length < 8 || bytes[0] !== 0 || bytes[1] !== 0x61 || bytes[2] !== 0x73 || bytes[3] !== 0x6d) {
    throw invalidModule("not a WebAssembly binary");
  }
  if (bytes[4] !== 1 || bytes[5] !== 0 || bytes[6] !== 0 || bytes[7] !== 0) {
    throw invalidModule("not a core WebAssembly module (version 1); components are not supported");
  }
  let lastRank = 0;
  return readSectionHeaders(bytes, (id) => {
    if (id === Sec.Custom) return;
    const rank = SECTION_RANK[id];
    if (rank === undefined) throw invalidModule(`unknown section id ${id}`);
    if (rank <= lastRank) throw invalidModule(`section ${id} is out of order or repeated`);
    lastRank = rank;
  }, (id) => invalidModule(`section ${id} overruns the module`));
}

/**
 * The top-level sections after the 8-byte header of a core module or a component (the same
 * id + size framing): `check` sees each id in order, `overrun` makes the error for a
 * section that runs past the end.
 */
export function readSectionHeaders(
  bytes: Uint8Array,
  check: (id: number) => void,
  overrun: (id: number, headerStart: number) => Error,
): Section[] {
  const r = new ByteReader(bytes, 8, bytes.length);
  const sections: Section[] = [];
  while (r.pos < r.end) {
    const headerStart = r.pos;
    const id = r.u8();
    const size = r.u32();
    const start = r.pos;
    const end = start + size;
    if (end > bytes.length) throw overrun(id, headerStart);
    check(id);
    sections.push({ id, headerStart, start, end });
    r.pos = end;
  }
  return sections;
}

/**
 * New contents for a vector section (a count, then entries) with one entry appended; the
 * existing entries are copied as they are. `scan`, if given, reads them first (reader at
 * the first entry). Returns the old count: the index the new entry gets among the defined ones.
 */
function appendEntry(
  bytes: Uint8Array, section: Section | undefined, write: (w: ByteWriter) => void,
  scan?: (r: ByteReader, count: number) => void, added = 1,
): { contents: ByteWriter; count: number } {
  const contents = new ByteWriter((section ? section.end - section.start : 0) + 48);
  if (!section) {
    contents.uleb(added);
    write(contents);
    return { contents, count: 0 };
  }
  const r = new ByteReader(bytes, section.start, section.end);
  const count = r.u32();
  const entriesStart = r.pos;
  scan?.(r, count);
  contents.uleb(count + added);
  contents.bytes(bytes, entriesStart, section.end);
  write(contents);
  return { contents, count };
}

/**
 * The export section with `keystate_fuel` (kind global) appended, and `keystate_grow` when
 * `growIndex` is given; refuses a module that already exports the fuel global.
 */
function appendFuelExport(bytes: Uint8Array, section: Section | undefined, globalIndex: number, growIndex?: number): ByteWriter {
  const name = new TextEncoder().encode(FUEL_EXPORT);
  const refuseFuelExport = (r: ByteReader, count: number): void => {
    for (let i = 0; i < count; i++) {
      const [s, e] = r.name();
      if (e - s === name.length && name.every((c, k) => bytes[s + k] === c)) {
        throw invalidModule(`it already exports "${FUEL_EXPORT}" (instrumented twice?)`);
      }
      r.u8(); // kind
      r.u32(); // index
    }
  };
  const exportGlobal = (w: ByteWriter, exported: Uint8Array, index: number): void => {
    w.uleb(exported.length);
    w.bytes(exported);
    w.byte(0x03); // export kind: global
    w.uleb(index);
  };
  return appendEntry(bytes, section, (w) => {
    exportGlobal(w, name, globalIndex);
    if (growIndex !== undefined) exportGlobal(w, new TextEncoder().encode(GROW_EXPORT), growIndex);
  }, refuseFuelExport, growIndex === undefined ? 1 : 2).contents;
}

/** The global section with the fuel global (and with `withGrow` the grow global after it) appended, and the fuel global's index. */
function appendFuelGlobal(
  bytes: Uint8Array, section: Section | undefined, importedGlobals: number, startFuel: number, withGrow: boolean,
): { contents: ByteWriter; index: number } {
  const { contents, count } = appendEntry(bytes, section, (w) => {
    fuelGlobalEntry(w, startFuel);
    if (withGrow) w.bytes(Uint8Array.from([0x7f, 0x01, 0x41, 0x00, 0x0b])); // (global (mut i32) (i32.const 0))
  }, undefined, withGrow ? 2 : 1);
  // After every imported and defined global, so no existing index moves.
  return { contents, index: importedGlobals + count };
}

/** A vector section with no entries (what is left of the memory section once its memory is imported). */
function emptyVector(): ByteWriter {
  const w = new ByteWriter(1);
  w.uleb(0);
  return w;
}

function checkOptions(options: InstrumentOptions): number {
  const { maxMemoryPages } = options;
  if (!Number.isInteger(maxMemoryPages) || maxMemoryPages < 0 || maxMemoryPages > 65536) {
    throw new RangeError(`maxMemoryPages must be an integer in [0, 65536], got ${maxMemoryPages}`);
  }
  const startFuel = options.startFuel ?? DEFAULT_START_FUEL;
  if (!Number.isInteger(startFuel) || startFuel < 1 || startFuel > MAX_FUEL) {
    throw new RangeError(`startFuel must be an integer in [1, ${MAX_FUEL}], got ${startFuel}`);
  }
  return startFuel;
}

/**
 * Returns an instrumented copy of `bytes`: every memory gets a maximum of at most
 * `maxMemoryPages`, every table one of at most MAX_TABLE_ENTRIES (an imported memory or
 * table, or more than MAX_TABLES tables, is refused), and with `meterFuel` every function
 * entry and loop header decrements the exported i32 global `keystate_fuel`, trapping
 * (`unreachable`) once it reaches 0. Deterministic: the same input gives the same bytes.
 * The input should already have passed WebAssembly.validate; compiling the output
 * validates it again. Throws KeystateError INVALID_MODULE for what cannot be instrumented.
 */
export function instrumentModule(bytes: Uint8Array, options: InstrumentOptions): InstrumentResult {
  const t0 = performance.now();
  const startFuel = checkOptions(options);
  const sections = splitSections(bytes);
  const find = (id: number): Section | undefined => sections.find((s) => s.id === id);
  const importSection = find(Sec.Import);
  const imports = importSection
    ? scanImports(new ByteReader(bytes, importSection.start, importSection.end))
    : { globals: 0 };
  const t1 = performance.now();

  // New contents per section id; sections without an entry are copied verbatim.
  const replaced = new Map<number, ByteWriter>();
  const memorySection = find(Sec.Memory);
  let memories: MemoryLimits[] = [];
  if (memorySection) {
    const contents = new ByteWriter(memorySection.end - memorySection.start + 16);
    memories = capMemorySection(new ByteReader(bytes, memorySection.start, memorySection.end), contents, options.maxMemoryPages);
    replaced.set(Sec.Memory, contents);
  }
  // Imported memories come before defined ones in the index space, and there are none (they
  // are refused), so the one memory keeps index 0 and nothing that refers to it changes.
  const memoryImported = options.importMemory === true && memories.length === 1 && !memories[0]!.shared && !memories[0]!.memory64;
  if (memoryImported) {
    replaced.set(Sec.Memory, emptyVector());
    replaced.set(Sec.Import, appendEntry(bytes, importSection, (w) => hostMemoryImport(w, memories[0]!)).contents);
  }
  const tableSection = find(Sec.Table);
  let tables: TableLimits[] = [];
  if (tableSection) {
    const contents = new ByteWriter(tableSection.end - tableSection.start + 16);
    tables = capTableSection(new ByteReader(bytes, tableSection.start, tableSection.end), contents);
    replaced.set(Sec.Table, contents);
  }
  const t2 = performance.now();

  let functions = 0;
  let fuelSites = 0;
  if (options.meterFuel) {
    // The new globals go after every imported and defined one, so no existing index moves.
    const globalSection = find(Sec.Global);
    const fuelIndex = imports.globals + (globalSection ? new ByteReader(bytes, globalSection.start, globalSection.end).u32() : 0);
    // Grow requests are recorded for 32-bit memories only (a memory64 grow takes an i64),
    // and the grow global exists only when some code grows memory.
    let growIndex = memories.length > 0 && !memories.some((m) => m.memory64) ? fuelIndex + 1 : undefined;
    const codeSection = find(Sec.Code);
    if (codeSection) {
      const contents = new ByteWriter(Math.ceil((codeSection.end - codeSection.start) * 1.25) + 64);
      const metered = meterCode(new ByteReader(bytes, codeSection.start, codeSection.end), contents, fuelIndex, growIndex);
      replaced.set(Sec.Code, contents);
      functions = metered.functions;
      fuelSites = metered.sites;
      if (metered.grows === 0) growIndex = undefined;
    } else {
      growIndex = undefined;
    }
    const global = appendFuelGlobal(bytes, globalSection, imports.globals, startFuel, growIndex !== undefined);
    replaced.set(Sec.Global, global.contents);
    replaced.set(Sec.Export, appendFuelExport(bytes, find(Sec.Export), global.index, growIndex));
  }
  const t3 = performance.now();

  const out = emitSections(bytes, sections, replaced);
  const t4 = performance.now();
  return {
    bytes: out,
    report: {
      phases: { parseMs: t1 - t0, memoryMs: t2 - t1, fuelMs: t3 - t2, emitMs: t4 - t3 },
      totalMs: t4 - t0,
      bytesIn: bytes.length,
      bytesOut: out.length,
      memories,
      memoryImported,
      tables,
      functions,
      fuelSites,
      fuelExport: options.meterFuel ? FUEL_EXPORT : null,
    },
  };
}

/** Writes the module: original sections verbatim unless replaced; new sections at their rank. */
export function emitSections(bytes: Uint8Array, sections: Section[], replaced: Map<number, ByteWriter>): Uint8Array<ArrayBuffer> {
  // Sized exactly, so the result needs no copy.
  const lebSize = (n: number): number => (n < 0x80 ? 1 : n < 0x4000 ? 2 : n < 0x200000 ? 3 : n < 0x10000000 ? 4 : 5);
  let size = 8;
  // `replaced` holds known section ids only, never custom sections (id 0).
  for (const s of sections) if (!replaced.has(s.id)) size += s.end - s.headerStart;
  for (const w of replaced.values()) size += 1 + lebSize(w.len) + w.len;
  const out = new ByteWriter(size);
  out.bytes(bytes, 0, 8);
  const pending = new Map(replaced);
  const writeSection = (id: number, contents: ByteWriter): void => {
    out.byte(id);
    out.uleb(contents.len);
    out.bytes(contents.buf, 0, contents.len);
    pending.delete(id);
  };
  // A section the module lacks (global, export) goes before the first known section ranked
  // after it; custom sections keep their place relative to everything else.
  const flushBefore = (rank: number): void => {
    for (const [id, contents] of [...pending].sort((a, b) => SECTION_RANK[a[0]]! - SECTION_RANK[b[0]]!)) {
      if (SECTION_RANK[id]! < rank && !sections.some((s) => s.id === id)) writeSection(id, contents);
    }
  };
  for (const s of sections) {
    if (s.id !== Sec.Custom) flushBefore(SECTION_RANK[s.id]!);
    const contents = replaced.get(s.id);
    if (contents) writeSection(s.id, contents);
    else out.bytes(bytes, s.headerStart, s.end);
  }
  flushBefore(Infinity);
  return out.result();
}
