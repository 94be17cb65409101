// Compiles an AssemblyScript entry file to Wasm bytes in memory with the asc API.
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import asc, { libraryFiles } from "assemblyscript/asc";
import { PROTO_DIR } from "../proto/proto-root.js";
import type { ModuleHeap } from "./module-config.js";

export interface AscOptions {
  /** Extra asc flags; the defaults give an optimized module. */
  readonly flags?: readonly string[];
  /**
   * module.json `heap`, which picks the runtime: "collected" (default), AssemblyScript's
   * minimal runtime, a TLSF allocator whose collector the SDK runs between calls; "per-call",
   * guest-sdk/runtime/call-heap.ts, which drops the calls' objects all at once.
   */
  readonly heap?: ModuleHeap;
  /** asc transforms (classes asc instantiates), e.g. outOfLine() from asc-out-of-line.ts. */
  readonly transforms?: ReadonlyArray<new () => object>;
}

/** guest-sdk/runtime/call-heap.ts: the runtime of modules with the per-call heap (its comment says why). */
export const CALL_HEAP_RUNTIME = join(dirname(PROTO_DIR), "guest-sdk", "runtime", "call-heap.ts");

/**
 * Puts the call-heap runtime where asc looks for its "stub" runtime. asc gives a runtime
 * named by path (`--runtime file.ts`) a 32 KiB shadow stack and the compiler's stack
 * instrumentation, which the incremental collector needs and this runtime does not; a
 * built-in name keeps both out. Nothing else in Keystate builds on asc's own stub. As with
 * asc's own runtimes, the file asc reads as the runtime's entry only imports the
 * implementation: what an entry file exports becomes the module's exports, and each export
 * costs every instantiation (nine more cost a fresh instance ~5 us).
 */
function installCallHeapRuntime(): void {
  libraryFiles["rt/call-heap"] = readFileSync(CALL_HEAP_RUNTIME, "utf8");
  libraryFiles["rt/index-stub"] = 'import "./call-heap";\n';
}

export async function compileAssemblyScript(entry: string, options: AscOptions = {}): Promise<Uint8Array> {
  const perCall = options.heap === "per-call";
  if (perCall) installCallHeapRuntime();
  let binary: Uint8Array | undefined;
  const diagnostics: string[] = [];
  const { error } = await asc.main(
    [entry, "--outFile", "module.wasm", "--runtime", perCall ? "stub" : "minimal", "-O3", "--noColors", ...(options.flags ?? [])],
    {
      writeFile(name: string, contents: Uint8Array | string) {
        if (name.endsWith(".wasm") && typeof contents !== "string") binary = contents;
      },
      stdout: { write: (text: string) => { diagnostics.push(text); return true; } } as never,
      stderr: { write: (text: string) => { diagnostics.push(text); return true; } } as never,
      transforms: [...(options.transforms ?? [])] as never,
    },
  );
  if (error || !binary) {
    throw new Error(`AssemblyScript compilation of ${entry} failed:\n${diagnostics.join("")}${error ? String(error.message) : ""}`);
  }
  return binary;
}
