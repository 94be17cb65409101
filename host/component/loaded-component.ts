// The component path of host/runtime/loaded-module.ts: an upload becomes an artifact
// (transpiled, instrumented: artifact.ts), an artifact becomes a LoadedModule whose
// `component` gives the compiled code that ComponentInstances are made from.
import { KeystateError } from "../errors.js";
import type { ModuleArtifact } from "../journal/types.js";
import type { GuestLimits } from "../runtime/guest-limits.js";
import { describe, hashModule, type LoadedModule } from "../runtime/loaded-module.js";
import { decodeDescription, encodeArtifactDetail } from "../runtime/module-description.js";
import { buildComponentArtifactBytes } from "./artifact.js";
import { compileComponent, compileComponentSync, type ComponentCode } from "./component-code.js";

/**
 * What `LoadedModule.compiled` is for a component: an empty core module. Components are
 * served through `LoadedModule.component`; this only keeps the property (which spreads of a
 * LoadedModule read) harmless.
 */
let emptyModule: WebAssembly.Module | undefined;
const noCoreModule = (): WebAssembly.Module => (emptyModule ??= new WebAssembly.Module(Uint8Array.of(0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00)));

export async function buildComponentArtifact(bytes: Uint8Array, limits: GuestLimits, key: string): Promise<ModuleArtifact> {
  const { bytes: artifact, report } = await buildComponentArtifactBytes(bytes, limits.maxMemoryPages);
  return { key, uploadHash: hashModule(bytes), uploadSize: bytes.length, bytes: artifact, detail: encodeArtifactDetail(report, decodeDescription(artifact)) };
}

export async function compileComponentArtifact(
  artifact: ModuleArtifact, version: number, limits: GuestLimits, loadedFrom: LoadedModule["loadedFrom"],
): Promise<LoadedModule> {
  const code = await compileComponent(artifact.bytes);
  return describe(artifact, version, limits, loadedFrom, noCoreModule, () => code);
}

/** Registered without compiling: the first call compiles (synchronously) and keeps the code. */
export function describeComponentArtifact(artifact: ModuleArtifact, version: number, limits: GuestLimits): LoadedModule {
  let code: ComponentCode | undefined;
  return describe(artifact, version, limits, "artifact", noCoreModule, () => {
    try {
      return (code ??= compileComponentSync(artifact.bytes));
    } catch (err) {
      throw err instanceof KeystateError ? err : new KeystateError("INVALID_MODULE", (err as Error).message, { cause: err });
    }
  });
}
