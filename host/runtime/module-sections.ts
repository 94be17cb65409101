// Reads and checks what a module carries besides code: its custom sections (API
// descriptor, manifest) and its imports. Runs before any guest code does.
import { KeystateError } from "../errors.js";
import { lookupType } from "../proto/proto-root.js";

export const DESCRIPTOR_SECTION = "keystate.descriptor";
export const MANIFEST_SECTION = "keystate.manifest";
/** The ABI version this host speaks (manifest.abi_version). */
export const ABI_VERSION = 1;

/** Every import a module may declare: the Keystate ABI, and AssemblyScript's abort. */
export const ALLOWED_IMPORTS: ReadonlySet<string> = new Set([
  "keystate.output",
  "keystate.log",
  "env.abort",
]);

export enum EntityKind {
  UNSPECIFIED = 0,
  EVENT_SOURCED = 1,
  VALUE = 2,
  REPLICATED = 3,
  ACTION = 4,
}

export interface ServiceManifest {
  service: string;
  kind: EntityKind;
  persistenceId: string;
  snapshotEvery: number;
  passivationTimeoutMs: number;
  stateType: string;
  eventTypes: string[];
  /** Replicated entities: the CRDT type name (host/crdt CrdtType); "" for other kinds. */
  crdtType: string;
}

export interface Manifest {
  name: string;
  services: ServiceManifest[];
  abiVersion: number;
  fuelPerCall: number;
}

/** The single custom section `name`; INVALID_MODULE when absent or repeated. */
export function readSection(module: WebAssembly.Module, name: string): Uint8Array {
  const sections = WebAssembly.Module.customSections(module, name);
  if (sections.length === 0) {
    throw new KeystateError("INVALID_MODULE", `the module has no "${name}" custom section; build it with \`keystate build\``);
  }
  if (sections.length > 1) throw new KeystateError("INVALID_MODULE", `the module has ${sections.length} "${name}" sections; expected one`);
  return new Uint8Array(sections[0]!);
}

/**
 * readSection from the module's bytes, without compiling them (a module registered before
 * its first call). Bounds-checked: bytes that do not parse as sections are INVALID_MODULE.
 */
export function readSectionFromBytes(bytes: Uint8Array, name: string): Uint8Array {
  const wanted = new TextEncoder().encode(name);
  const found: Uint8Array[] = [];
  let pos = 8;
  const uleb = (): number => {
    let result = 0;
    for (let shift = 0; shift < 35; shift += 7) {
      if (pos >= bytes.length) break;
      const b = bytes[pos++]!;
      result += (b & 0x7f) * 2 ** shift;
      if ((b & 0x80) === 0) return result;
    }
    throw new KeystateError("INVALID_MODULE", `the module's sections do not parse (at byte ${pos})`);
  };
  while (pos < bytes.length) {
    const id = bytes[pos++]!;
    const size = uleb();
    const end = pos + size;
    if (end > bytes.length) throw new KeystateError("INVALID_MODULE", `a section of the module overruns its end (at byte ${pos})`);
    if (id === 0) {
      const length = uleb();
      const nameEnd = pos + length;
      if (nameEnd > end) throw new KeystateError("INVALID_MODULE", `a custom section name overruns its section (at byte ${pos})`);
      const matches = length === wanted.length && wanted.every((b, i) => bytes[pos + i] === b);
      if (matches) found.push(bytes.slice(nameEnd, end));
    }
    pos = end;
  }
  if (found.length === 0) {
    throw new KeystateError("INVALID_MODULE", `the module has no "${name}" custom section; build it with \`keystate build\``);
  }
  if (found.length > 1) throw new KeystateError("INVALID_MODULE", `the module has ${found.length} "${name}" sections; expected one`);
  return found[0]!;
}

export function checkImports(module: WebAssembly.Module): void {
  for (const entry of WebAssembly.Module.imports(module)) {
    const name = `${entry.module}.${entry.name}`;
    if (entry.kind !== "function" || !ALLOWED_IMPORTS.has(name)) {
      throw new KeystateError(
        "INVALID_MODULE",
        `the module imports ${entry.kind} "${name}", which Keystate does not provide (allowed: ${[...ALLOWED_IMPORTS].join(", ")})`,
      );
    }
  }
}

export function decodeManifest(bytes: Uint8Array): Manifest {
  const type = lookupType("keystate.manifest.Manifest");
  let manifest: Manifest;
  try {
    manifest = type.toObject(type.decode(bytes), { defaults: true, enums: Number, arrays: true }) as Manifest;
  } catch (err) {
    throw new KeystateError("INVALID_MODULE", `the module's manifest does not parse: ${(err as Error).message}`, { cause: err });
  }
  if (!manifest.name) throw new KeystateError("INVALID_MODULE", "the module's manifest has no name");
  if (!/^[a-z0-9][a-z0-9._-]{0,99}$/i.test(manifest.name)) {
    throw new KeystateError("INVALID_MODULE", `module name "${manifest.name}" must be 1-100 letters, digits, '.', '_' or '-'`);
  }
  if (manifest.abiVersion !== ABI_VERSION) {
    throw new KeystateError("INVALID_MODULE", `the module speaks ABI version ${manifest.abiVersion}; this host speaks ${ABI_VERSION}`);
  }
  if (manifest.services.length === 0) throw new KeystateError("INVALID_MODULE", "the module's manifest declares no services");
  return manifest;
}
