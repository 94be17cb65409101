// Transpiles an uploaded component with jco, in memory: the JavaScript glue that lifts and
// lowers the component's calls, and the core modules it instantiates. `instantiation: "sync"`
// makes the glue a plain `instantiate(getCoreModule, imports, instantiateCore)` that takes
// the core modules and imports from the host and returns the exports synchronously, so a
// component call stays synchronous like a core-module call (GuestInstance).
import { KeystateError } from "../errors.js";
import { importEsm } from "../loader-hooks.js";

/** The name jco gives the glue and its core modules (`<name>.js`, `<name>.core*.wasm`). */
const NAME = "component";

export interface TranspiledComponent {
  /** The glue's source (an ES module exporting `instantiate`). */
  readonly glue: string;
  /** The core modules the glue asks for, by the name it asks with. */
  readonly coreModules: ReadonlyMap<string, Uint8Array>;
  /** The component's imports, as interface names ("keystate:entity/host"). */
  readonly imports: readonly string[];
  /** Its exported functions (camelCase: "handleCommand", "replay"). */
  readonly exports: readonly string[];
  readonly ms: number;
}

export async function transpileComponent(bytes: Uint8Array): Promise<TranspiledComponent> {
  const start = performance.now();
  const { transpile } = await importEsm<typeof import("@bytecodealliance/jco")>("@bytecodealliance/jco");
  let out: Awaited<ReturnType<typeof transpile>>;
  try {
    out = await transpile(bytes, {
      name: NAME,
      instantiation: "sync",
      // Every core module as a file of its own (none inlined as base64), no TypeScript.
      base64Cutoff: 0,
      noTypescript: true,
      // The host supplies every import itself: no WASI shim, no Node.js compatibility code.
      wasiShim: false,
      nodejsCompat: false,
      tlaCompat: false,
      quiet: true,
    });
  } catch (err) {
    throw new KeystateError("INVALID_MODULE", `the component is not valid: ${messageOf(err)}`, { cause: err });
  }
  const glue = out.files[`${NAME}.js`];
  if (!glue) throw new KeystateError("INVALID_MODULE", "the component could not be transpiled (no JavaScript glue)");
  const coreModules = new Map<string, Uint8Array>();
  for (const [file, contents] of Object.entries(out.files)) {
    if (file.endsWith(".wasm")) coreModules.set(file, contents);
  }
  return {
    glue: Buffer.from(glue).toString("utf8"),
    coreModules,
    imports: out.imports,
    exports: out.exports.map(([name]) => name),
    ms: performance.now() - start,
  };
}

function messageOf(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  return message.split("\n").map((line) => line.trim()).filter((line) => line && line !== "Caused by:").join(" ");
}
