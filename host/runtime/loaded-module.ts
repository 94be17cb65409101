// Validates uploaded bytes and compiles them once into a LoadedModule: the compiled
// code, its manifest and API model, and a pool of instances to run calls on.
import { createHash } from "node:crypto";
import { KeystateError } from "../errors.js";
import { REQUIRED_EXPORTS } from "../abi/guest-instance.js";
import { decodeDescriptorSet } from "../proto/descriptors.js";
import { checkImports, decodeManifest, DESCRIPTOR_SECTION, MANIFEST_SECTION, readSection, type Manifest } from "./module-sections.js";
import { buildApiModel, type ApiModel } from "./service-model.js";
import { DEFAULT_GUEST_LIMITS, type GuestLimits } from "./guest-limits.js";
import { instrumentModule, type InstrumentReport } from "./instrument.js";
import type { InstanceLimits } from "../abi/guest-instance.js";

/** A module's API descriptor may not exceed this (a hostile one could make every lookup slow). */
export const MAX_DESCRIPTOR_BYTES = 4 * 1024 * 1024;

/** Instrumented modules up to this size are compiled synchronously (see compileModule). */
const SYNC_COMPILE_MAX_BYTES = 128 * 1024;

export interface ModuleIdentity {
  readonly name: string;
  readonly version: number;
  readonly hash: string;
  readonly size: number;
}

export interface LoadedModule extends ModuleIdentity {
  readonly compiled: WebAssembly.Module;
  readonly manifest: Manifest;
  readonly api: ApiModel;
  /** The raw descriptor set bytes, for reflection. */
  readonly descriptorBytes: Uint8Array;
  /** What every instance of this module runs under. */
  readonly limits: InstanceLimits;
  /** What the deploy-time instrumentation did and how long it took. */
  readonly instrumentation: InstrumentReport;
}

export function hashModule(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

/** Everything that can be checked without running guest code; throws INVALID_MODULE naming the problem. */
export async function compileModule(bytes: Uint8Array, version = 0, limits: GuestLimits = DEFAULT_GUEST_LIMITS): Promise<LoadedModule> {
  if (bytes.length < 8 || bytes[0] !== 0x00 || bytes[1] !== 0x61 || bytes[2] !== 0x73 || bytes[3] !== 0x6d) {
    throw new KeystateError("INVALID_MODULE", "the upload is not a WebAssembly module (no \\0asm header)");
  }
  if (!WebAssembly.validate(bytes as Uint8Array<ArrayBuffer>)) {
    // Compiling only to get V8's message saying what is wrong.
    const reason = await WebAssembly.compile(bytes as Uint8Array<ArrayBuffer>).then(() => "unknown", (err: Error) => err.message);
    throw new KeystateError("INVALID_MODULE", `the module is not valid WebAssembly: ${reason}`);
  }
  // Caps every memory and injects the fuel counter; the stored bytes stay the uploaded ones.
  const instrumented = instrumentModule(bytes, { maxMemoryPages: limits.maxMemoryPages, meterFuel: true });
  let compiled: WebAssembly.Module;
  try {
    // A small module compiles synchronously: ~0.3 ms for the shopping cart against ~0.55 ms
    // through the asynchronous API (its task hops cost more than they save). A larger one
    // goes asynchronous, so a big upload cannot hold the event loop for long.
    compiled = instrumented.bytes.length <= SYNC_COMPILE_MAX_BYTES
      ? new WebAssembly.Module(instrumented.bytes)
      : await WebAssembly.compile(instrumented.bytes);
  } catch (err) {
    throw new KeystateError("INVALID_MODULE", `the module is not valid WebAssembly after instrumentation: ${(err as Error).message}`, { cause: err });
  }
  checkImports(compiled);
  const exported = new Set(WebAssembly.Module.exports(compiled).map((e) => e.name));
  const missing = REQUIRED_EXPORTS.filter((name) => !exported.has(name));
  if (missing.length > 0) {
    throw new KeystateError("INVALID_MODULE", `the module does not export ${missing.join(", ")}; build it with the Keystate guest SDK`);
  }
  const manifest = decodeManifest(readSection(compiled, MANIFEST_SECTION));
  const descriptorBytes = readSection(compiled, DESCRIPTOR_SECTION);
  if (descriptorBytes.length > MAX_DESCRIPTOR_BYTES) {
    throw new KeystateError("INVALID_MODULE", `the module's API descriptor is ${descriptorBytes.length} bytes; the limit is ${MAX_DESCRIPTOR_BYTES}`);
  }
  const api = buildApiModel(decodeDescriptorSet(descriptorBytes), manifest);
  const instanceLimits: InstanceLimits = {
    // A module may ask for less CPU than the node allows, never more.
    fuelPerCall: Math.min(manifest.fuelPerCall || limits.fuelPerCall, limits.fuelPerCall),
    maxMemoryPages: instrumented.report.memories[0]?.maxPages ?? limits.maxMemoryPages,
  };
  return {
    name: manifest.name, version, hash: hashModule(bytes), size: bytes.length, compiled, manifest, api, descriptorBytes,
    limits: instanceLimits, instrumentation: instrumented.report,
  };
}
