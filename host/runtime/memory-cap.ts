// Memory caps: every memory the module defines gets a maximum of at most the host's cap, so
// memory.grow past it returns -1 (AssemblyScript's allocator then traps) and V8 reserves a
// bounded range. An imported memory (or table) is refused: the host never hands a guest its
// memory or a table.
import type { ByteReader, ByteWriter } from "./instrument.js";

export interface MemoryLimits {
  /** Initial size in 64 KiB pages. */
  minPages: number;
  /** Maximum after capping. */
  maxPages: number;
  shared: boolean;
  memory64: boolean;
}

// Limits flags: bit 0 = a maximum follows, bit 1 = shared, bit 2 = 64-bit indices.
const HAS_MAX = 0x01;
const KNOWN_FLAGS = 0x07;

/** Scans the import section: refuses memory and table imports, counts imported globals (they precede defined ones). */
export function scanImports(r: ByteReader): { globals: number } {
  let globals = 0;
  const count = r.u32();
  for (let i = 0; i < count; i++) {
    const [ms, me] = r.name();
    const [fs, fe] = r.name();
    const kind = r.u8();
    switch (kind) {
      case 0x00: // function: type index
        r.u32();
        break;
      case 0x01: // table: refused like a memory, so every table is one table-cap.ts capped
        throw r.fail(`it imports a table (${importName(r, ms, me, fs, fe)}); a guest must define its own tables`);
      case 0x02:
        throw r.fail(`it imports a memory (${importName(r, ms, me, fs, fe)}); a guest must define its own memory`);
      case 0x03: // global: value type, mutability
        r.valType();
        r.u8();
        globals++;
        break;
      case 0x04: // tag: attribute, type index
        r.u8();
        r.u32();
        break;
      default:
        throw r.fail(`unknown import kind ${kind}`);
    }
  }
  if (r.pos !== r.end) throw r.fail("import section has trailing bytes");
  return { globals };
}

/** "module.field" of an import, for a refusal message. */
function importName(r: ByteReader, ms: number, me: number, fs: number, fe: number): string {
  const dec = new TextDecoder();
  return `${dec.decode(r.bytes.subarray(ms, me))}.${dec.decode(r.bytes.subarray(fs, fe))}`;
}

/** Where an instrumented module imports its memory from (instrument.ts `importMemory`). */
export const HOST_MEMORY_IMPORT = { module: "keystate", name: "memory" } as const;

/** The import entry for the host-provided memory with `limits` (a maximum always present). */
export function hostMemoryImport(w: ByteWriter, limits: MemoryLimits): void {
  const encoder = new TextEncoder();
  for (const name of [HOST_MEMORY_IMPORT.module, HOST_MEMORY_IMPORT.name]) {
    const bytes = encoder.encode(name);
    w.uleb(bytes.length);
    w.bytes(bytes);
  }
  w.byte(0x02); // import kind: memory
  w.byte(HAS_MAX);
  w.uleb(limits.minPages);
  w.uleb(limits.maxPages);
}

/** Rewrites the memory section so every memory has a maximum of at most `capPages`. */
export function capMemorySection(r: ByteReader, w: ByteWriter, capPages: number): MemoryLimits[] {
  const count = r.u32();
  w.uleb(count);
  const memories: MemoryLimits[] = [];
  for (let i = 0; i < count; i++) {
    const flags = r.u8();
    if (flags & ~KNOWN_FLAGS) throw r.fail(`memory ${i} has unsupported limits flags 0x${flags.toString(16)}`);
    const minPages = r.u64();
    const declaredMax = flags & HAS_MAX ? r.u64() : Infinity;
    if (minPages > capPages) {
      throw r.fail(`memory ${i} starts at ${minPages} pages, above the cap of ${capPages} pages`);
    }
    const maxPages = Math.min(declaredMax, capPages);
    w.byte(flags | HAS_MAX);
    w.uleb(minPages);
    w.uleb(maxPages);
    memories.push({ minPages, maxPages, shared: (flags & 0x02) !== 0, memory64: (flags & 0x04) !== 0 });
  }
  if (r.pos !== r.end) throw r.fail("memory section has trailing bytes");
  return memories;
}
