// Compiles an AssemblyScript entry file to Wasm bytes in memory with the asc API.
import { existsSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
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
  /**
   * The directory source names are relative to (asc's --baseDir; by default the working
   * directory). A module's file names end up in its abort messages, so `keystate build`
   * passes the module's directory: the same sources give the same bytes wherever they are
   * built from.
   */
  readonly baseDir?: string;
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

/**
 * Where packages (the guest SDK) are found when sources are named relative to `baseDir`:
 * asc then looks for node_modules only inside it, so the node_modules of its ancestors, of
 * the working directory and of Keystate's own install are named, nearest first, as they
 * were found when sources were named relative to the working directory.
 */
function packagePaths(baseDir: string): string[] {
  const candidates: string[] = [];
  for (let dir = dirname(resolve(baseDir)); ; dir = dirname(dir)) {
    candidates.push(join(dir, "node_modules"));
    if (dirname(dir) === dir) break;
  }
  candidates.push(join(process.cwd(), "node_modules"), join(dirname(PROTO_DIR), "node_modules"));
  return [...new Set(candidates)].filter((path) => existsSync(path));
}

export async function compileAssemblyScript(entry: string, options: AscOptions = {}): Promise<Uint8Array> {
  const perCall = options.heap === "per-call";
  if (perCall) installCallHeapRuntime();
  let binary: Uint8Array | undefined;
  const diagnostics: string[] = [];
  const source = options.baseDir
    ? [relative(options.baseDir, entry), "--baseDir", options.baseDir, ...packagePaths(options.baseDir).flatMap((path) => ["--path", path])]
    : [entry];
  const { error } = await asc.main(
    [...source, "--outFile", "module.wasm", "--runtime", perCall ? "stub" : "minimal", "-O3", "--noColors", ...(options.flags ?? [])],
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
