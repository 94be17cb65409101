// A component artifact compiled: its core modules as WebAssembly.Modules and the glue's
// instantiate function. Compiled once per loaded version; every ComponentInstance is made from it.
import { KeystateError } from "../errors.js";
import { readComponentArtifact } from "./artifact.js";
import { loadGlue, type Instantiate } from "./glue.js";

export interface ComponentCode {
  readonly instantiate: Instantiate;
  readonly modules: ReadonlyMap<string, WebAssembly.Module>;
}

/** Compiles asynchronously (a JavaScript engine's core module is ~12 MB: off the event loop). */
export async function compileComponent(artifactBytes: Uint8Array): Promise<ComponentCode> {
  const { glue, coreModules } = readComponentArtifact(artifactBytes);
  const instantiate = loadGlue(glue);
  const modules = new Map<string, WebAssembly.Module>();
  for (const [name, code] of coreModules) {
    try {
      modules.set(name, await WebAssembly.compile(code as Uint8Array<ArrayBuffer>));
    } catch (err) {
      throw compileError(name, err);
    }
  }
  return { instantiate, modules };
}

/** The synchronous form, for a stored component compiled on its first call. */
export function compileComponentSync(artifactBytes: Uint8Array): ComponentCode {
  const { glue, coreModules } = readComponentArtifact(artifactBytes);
  const instantiate = loadGlue(glue);
  const modules = new Map<string, WebAssembly.Module>();
  for (const [name, code] of coreModules) {
    try {
      modules.set(name, new WebAssembly.Module(code as Uint8Array<ArrayBuffer>));
    } catch (err) {
      throw compileError(name, err);
    }
  }
  return { instantiate, modules };
}

function compileError(name: string, err: unknown): KeystateError {
  return new KeystateError("INVALID_MODULE", `the component's core module ${name} is not valid WebAssembly after instrumentation: ${(err as Error).message}`, { cause: err });
}
