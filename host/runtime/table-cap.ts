// Table caps: V8 lets a module declare up to 100,000 tables of up to 10,000,000 entries
// each (~28 B of RSS per funcref entry on Node 20, so ~280 MB per full table), and `table.grow` allocates on demand, so without a
// cap a few instances could exhaust the node. Every table the module defines gets a maximum
// of at most MAX_TABLE_ENTRIES, so `table.grow` past it returns -1 (the Wasm semantics)
// instead of allocating; a table starting above the cap, or too many tables, is refused at
// deploy. Imported tables are refused in scanImports: the host never hands a guest a table.
import type { ByteReader, ByteWriter } from "./instrument.js";

/**
 * Entries per table. AssemblyScript keeps one table holding the functions it calls
 * indirectly (closures, virtual methods): a few hundred in real modules. 100,000 entries
 * leave that headroom x100 and bound a table to ~2.8 MB (measured: 10 instances of a
 * 100,000-entry funcref table added 28.6 MB of RSS on Node 20).
 */
export const MAX_TABLE_ENTRIES = 100_000;
/**
 * Tables per module. AssemblyScript emits one, other reference-types toolchains one or
 * two; 8 full tables cost ~23 MB, so an instance's tables stay under the default 32 MiB
 * memory cap and can at most double what one instance holds.
 */
export const MAX_TABLES = 8;

export interface TableLimits {
  /** Initial size in entries. */
  minEntries: number;
  /** Maximum after capping. */
  maxEntries: number;
  /** 64-bit indices (the memory64 proposal's table64). */
  table64: boolean;
}

// Limits flags: bit 0 = a maximum follows, bit 2 = 64-bit indices. Bit 1 (shared) is not a
// table flag any engine accepts, so it is refused with the other unknown bits.
const HAS_MAX = 0x01;
const KNOWN_FLAGS = 0x05;
// A table entry starting 0x40 0x00 carries an initializer expression (function references).
const WITH_INIT = 0x40;

/** Rewrites the table section so every table has a maximum of at most MAX_TABLE_ENTRIES. */
export function capTableSection(r: ByteReader, w: ByteWriter): TableLimits[] {
  const count = r.u32();
  if (count > MAX_TABLES) {
    throw r.fail(`it defines ${count} tables, above the limit of ${MAX_TABLES} tables per module`);
  }
  w.uleb(count);
  const tables: TableLimits[] = [];
  for (let i = 0; i < count; i++) {
    const entryStart = r.pos;
    const withInit = r.bytes[r.pos] === WITH_INIT;
    if (withInit) {
      r.pos++;
      if (r.u8() !== 0x00) throw r.fail(`table ${i} has an unknown encoding`);
    }
    r.valType(); // reference type, copied as it is
    w.bytes(r.bytes, entryStart, r.pos);
    const flags = r.u8();
    if (flags & ~KNOWN_FLAGS) throw r.fail(`table ${i} has unsupported limits flags 0x${flags.toString(16)}`);
    const minEntries = r.u64();
    const declaredMax = flags & HAS_MAX ? r.u64() : Infinity;
    if (minEntries > MAX_TABLE_ENTRIES) {
      throw r.fail(`table ${i} starts at ${minEntries} entries, above the limit of ${MAX_TABLE_ENTRIES} entries per table`);
    }
    const maxEntries = Math.min(declaredMax, MAX_TABLE_ENTRIES);
    w.byte(flags | HAS_MAX);
    w.uleb(minEntries);
    w.uleb(maxEntries);
    if (withInit) {
      const exprStart = r.pos;
      skipConstExpr(r, i);
      w.bytes(r.bytes, exprStart, r.pos);
    }
    tables.push({ minEntries, maxEntries, table64: (flags & 0x04) !== 0 });
  }
  if (r.pos !== r.end) throw r.fail("table section has trailing bytes");
  return tables;
}

/**
 * Skips a constant expression up to and including its `end`. Constant expressions have no
 * blocks, so the first `end` closes it; the opcodes are the few the spec allows there.
 */
function skipConstExpr(r: ByteReader, table: number): void {
  for (;;) {
    const op = r.u8();
    switch (op) {
      case 0x0b: return; // end
      case 0x41: case 0x42: case 0x23: case 0xd0: case 0xd2: // i32/i64.const, global.get, ref.null, ref.func
        r.skipLeb();
        break;
      case 0x43: skipBytes(r, 4); break; // f32.const
      case 0x44: skipBytes(r, 8); break; // f64.const
      case 0x6a: case 0x6b: case 0x6c: case 0x7c: case 0x7d: case 0x7e: break; // extended-const arithmetic
      case 0xfb: skipGcConst(r, table); break;
      case 0xfd: // v128.const
        if (r.u32() !== 12) throw unreadable(r, table, op);
        skipBytes(r, 16);
        break;
      default:
        throw unreadable(r, table, op);
    }
  }
}

/** The GC instructions allowed in constant expressions, after the 0xFB prefix. */
function skipGcConst(r: ByteReader, table: number): void {
  const sub = r.u32();
  switch (sub) {
    case 0: case 1: case 6: case 7: r.u32(); break; // struct.new(_default), array.new(_default): type
    case 8: r.u32(); r.u32(); break; // array.new_fixed: type, count
    case 26: case 27: case 28: break; // any.convert_extern, extern.convert_any, ref.i31
    default: throw unreadable(r, table, 0xfb);
  }
}

function skipBytes(r: ByteReader, n: number): void {
  if (r.pos + n > r.end) throw r.fail(`table initializer overruns at offset ${r.pos}`);
  r.pos += n;
}

function unreadable(r: ByteReader, table: number, op: number): Error {
  return r.fail(`table ${table} has an initializer with opcode 0x${op.toString(16)}, which is not a constant instruction`);
}
