// Reads and checks what a module carries besides code: its custom sections (API
// descriptor, manifest) and its imports. Runs before any guest code does.
import type { SubscriptionManifest } from "./subscriptions.js";
import { KeystateError } from "../errors.js";
import { lookupType } from "../proto/proto-root.js";
import { ByteReader, splitSections } from "./instrument.js";
import { HOST_MEMORY_IMPORT } from "./memory-cap.js";
import { isComponentBinary, splitComponentSections } from "../component/component-binary.js";

export const DESCRIPTOR_SECTION = "keystate.descriptor";
export const MANIFEST_SECTION = "keystate.manifest";
/**
 * The ABI version this host's SDK builds (manifest.abi_version). 2 added timers, topic
 * publications and call metadata (abi.proto CommandResult 12-13, CommandCall 12); 3 let a
 * module answer through its exports' return values and record its aborts itself, importing
 * no host function (ABI.md "Imports"). Each version only adds, so this host serves them all.
 */
export const ABI_VERSION = 3;
export const SUPPORTED_ABI_VERSIONS: readonly number[] = [1, 2, 3];

/** Every import a module may declare (none is required): the Keystate ABI, and AssemblyScript's abort. */
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
  /** Replicated entities: the least write consistency of every command (WriteConsistency; 0 = local). */
  writeConsistency: number;
}

export interface Manifest {
  name: string;
  services: ServiceManifest[];
  abiVersion: number;
  fuelPerCall: number;
  subscriptions: SubscriptionManifest[];
}

/**
 * The single custom section `name` of the module's (or component's) bytes (read without compiling them, so a
 * node can route to a module before its first call); INVALID_MODULE when absent or repeated.
 */
export function readSection(bytes: Uint8Array, name: string): Uint8Array {
  const wanted = new TextEncoder().encode(name);
  const found: Uint8Array[] = [];
  // A component carries them at its top level, like a core module (host/component).
  const sections = isComponentBinary(bytes) ? splitComponentSections(bytes) : splitSections(bytes);
  for (const section of sections) {
    if (section.id !== 0) continue;
    const [nameStart, nameEnd] = new ByteReader(bytes, section.start, section.end).name();
    const matches = nameEnd - nameStart === wanted.length && wanted.every((b, i) => bytes[nameStart + i] === b);
    if (matches) found.push(bytes.slice(nameEnd, section.end));
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
    // The instrumenter's own import: an upload that imports a memory was refused before it.
    if (entry.kind === "memory" && entry.module === HOST_MEMORY_IMPORT.module && entry.name === HOST_MEMORY_IMPORT.name) continue;
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
  return checkManifest(manifest);
}

/** What this host requires of any manifest, decoded here or carried decoded by an artifact (module-description.ts). */
export function checkManifest(manifest: Manifest): Manifest {
  if (!manifest.name) throw new KeystateError("INVALID_MODULE", "the module's manifest has no name");
  if (!/^[a-z0-9][a-z0-9._-]{0,99}$/i.test(manifest.name)) {
    throw new KeystateError("INVALID_MODULE", `module name "${manifest.name}" must be 1-100 letters, digits, '.', '_' or '-'`);
  }
  if (!SUPPORTED_ABI_VERSIONS.includes(manifest.abiVersion)) {
    throw new KeystateError("INVALID_MODULE", `the module speaks ABI version ${manifest.abiVersion}; this host speaks ${new Intl.ListFormat("en-GB", { type: "conjunction" }).format(SUPPORTED_ABI_VERSIONS.map(String))}`);
  }
  if (manifest.services.length === 0) throw new KeystateError("INVALID_MODULE", "the module's manifest declares no services");
  return manifest;
}
