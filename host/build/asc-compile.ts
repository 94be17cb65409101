// Compiles an AssemblyScript entry file to Wasm bytes in memory with the asc API.
import asc from "assemblyscript/asc";

export interface AscOptions {
  /** Extra asc flags; defaults give an optimized module on the minimal runtime (the SDK collects between calls). */
  readonly flags?: readonly string[];
  /** asc transforms (classes asc instantiates), e.g. outOfLine() from asc-out-of-line.ts. */
  readonly transforms?: ReadonlyArray<new () => object>;
}

export async function compileAssemblyScript(entry: string, options: AscOptions = {}): Promise<Uint8Array> {
  let binary: Uint8Array | undefined;
  const diagnostics: string[] = [];
  const { error } = await asc.main(
    [entry, "--outFile", "module.wasm", "--runtime", "minimal", "-O3", "--noColors", ...(options.flags ?? [])],
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
