// A component upload -> its deploy-time artifact, and back. The artifact is itself laid out
// as a component of custom sections only (the component header, then named sections), so the
// host reads its manifest and descriptor exactly as it reads an upload's (readSection):
//   keystate.descriptor, keystate.manifest      copied from the upload
//   keystate.component.glue                     jco's JavaScript glue (UTF-8)
//   keystate.component.core:<name>              each core module, instrumented
// Nothing in it is executable as a component; only this host reads it.
import { KeystateError } from "../errors.js";
import { appendCustomSections } from "../build/custom-sections.js";
import { instrumentModule, ByteReader, type InstrumentReport } from "../runtime/instrument.js";
import { decodeManifest, DESCRIPTOR_SECTION, EntityKind, MANIFEST_SECTION, readSection } from "../runtime/module-sections.js";
import { isComponentBinary, splitComponentSections, COMPONENT_VERSION } from "./component-binary.js";
import { checkComponentInterface } from "./component-interface.js";
import { transpileComponent } from "./transpile.js";

export const GLUE_SECTION = "keystate.component.glue";
export const CORE_SECTION_PREFIX = "keystate.component.core:";

/** What `detail` holds for a component: the main core module's report, plus the component's. */
export interface ComponentReport extends InstrumentReport {
  readonly component: {
    readonly transpileMs: number;
    readonly instrumentMs: number;
    readonly modules: ReadonlyArray<{ name: string; bytesIn: number; bytesOut: number; metered: boolean; fuelSites: number }>;
  };
}

export interface ComponentArtifactParts {
  readonly glue: string;
  readonly coreModules: ReadonlyMap<string, Uint8Array>;
}

/**
 * Validates a component upload, transpiles it and instruments each of its core modules (fuel
 * per call, memories capped at `maxMemoryPages`). Returns the artifact's bytes and report;
 * throws INVALID_MODULE saying what to fix.
 */
export async function buildComponentArtifactBytes(bytes: Uint8Array, maxMemoryPages: number): Promise<{ bytes: Uint8Array; report: ComponentReport }> {
  if (!isComponentBinary(bytes)) throw new KeystateError("INVALID_MODULE", "the upload is not a WebAssembly component");
  const manifestBytes = readSection(bytes, MANIFEST_SECTION);
  const descriptorBytes = readSection(bytes, DESCRIPTOR_SECTION);
  const manifest = decodeManifest(manifestBytes);
  const replicated = manifest.services.filter((s) => s.kind === EntityKind.REPLICATED).map((s) => s.service);
  if (replicated.length > 0) {
    throw new KeystateError("INVALID_MODULE", `a component cannot serve replicated (CRDT) services (${replicated.join(", ")}); build them as a core module`);
  }
  const transpiled = await transpileComponent(bytes);
  checkComponentInterface(transpiled.imports, transpiled.exports);

  const start = performance.now();
  const coreModules = new Map<string, Uint8Array>();
  const modules: Array<ComponentReport["component"]["modules"][number]> = [];
  let main: InstrumentReport | undefined;
  for (const [name, code] of transpiled.coreModules) {
    if (!WebAssembly.validate(code as Uint8Array<ArrayBuffer>)) {
      throw new KeystateError("INVALID_MODULE", `the component's core module ${name} is not valid WebAssembly`);
    }
    if (!hasCode(code)) {
      // jco's fix-up modules only fill a table of the component's own with functions: no
      // code, no memory, nothing to meter (and their table import is the component's, not the host's).
      coreModules.set(name, code);
      modules.push({ name, bytesIn: code.length, bytesOut: code.length, metered: false, fuelSites: 0 });
      continue;
    }
    const { bytes: instrumented, report } = instrumentModule(code, { maxMemoryPages, meterFuel: true });
    coreModules.set(name, instrumented);
    modules.push({ name, bytesIn: code.length, bytesOut: instrumented.length, metered: true, fuelSites: report.fuelSites });
    if (report.memories.length > 0) {
      if (main) throw new KeystateError("INVALID_MODULE", "the component has more than one core module with a memory; Keystate runs components with one");
      main = report;
    }
  }
  if (!main) throw new KeystateError("INVALID_MODULE", "the component has no core module with a memory");
  const report: ComponentReport = {
    ...main,
    component: { transpileMs: transpiled.ms, instrumentMs: performance.now() - start, modules },
  };
  const sections = [
    { name: DESCRIPTOR_SECTION, payload: descriptorBytes },
    { name: MANIFEST_SECTION, payload: manifestBytes },
    { name: GLUE_SECTION, payload: new TextEncoder().encode(transpiled.glue) },
    ...[...coreModules].map(([name, code]) => ({ name: CORE_SECTION_PREFIX + name, payload: code })),
  ];
  const header = Uint8Array.of(0x00, 0x61, 0x73, 0x6d, ...COMPONENT_VERSION);
  return { bytes: appendCustomSections(header, sections), report };
}

/** The glue and core modules of an artifact made by buildComponentArtifactBytes. */
export function readComponentArtifact(bytes: Uint8Array): ComponentArtifactParts {
  const decoder = new TextDecoder();
  let glue: string | undefined;
  const coreModules = new Map<string, Uint8Array>();
  for (const section of splitComponentSections(bytes)) {
    if (section.id !== 0) continue;
    const [nameStart, nameEnd] = new ByteReader(bytes, section.start, section.end).name();
    const name = decoder.decode(bytes.subarray(nameStart, nameEnd));
    if (name === GLUE_SECTION) glue = decoder.decode(bytes.subarray(nameEnd, section.end));
    else if (name.startsWith(CORE_SECTION_PREFIX)) coreModules.set(name.slice(CORE_SECTION_PREFIX.length), bytes.slice(nameEnd, section.end));
  }
  if (glue === undefined || coreModules.size === 0) {
    throw new KeystateError("INVALID_MODULE", "the stored component artifact is incomplete (no glue or no core modules)");
  }
  return { glue, coreModules };
}

/** The core module has a non-empty code section (section id 10). */
function hasCode(code: Uint8Array): boolean {
  const r = new ByteReader(code, 8, code.length);
  while (r.pos < r.end) {
    const id = r.u8();
    const size = r.u32();
    if (id === 10) return new ByteReader(code, r.pos, r.pos + size).u32() > 0;
    r.pos += size;
  }
  return false;
}
