// A module's description, its manifest and API descriptors, and how a deploy-time artifact
// carries it already decoded.
//
// Why: decoding the two custom sections with protobufjs was the largest part of loading a
// stored module at a node's start (~40 ms of a ~330 ms start, profiled), nearly all of it
// protobufjs generating the decoders of descriptor.proto's ~25 message types on first use.
// A deploy decodes them anyway, so it writes them into the artifact's `detail` as JSON and a
// node that loads the artifact later parses that instead (well under a millisecond). An
// artifact written before this carries only its report; it is decoded from its sections.
import type { IFileDescriptorSet } from "protobufjs/ext/descriptor.js";
import { KeystateError } from "../errors.js";
import { decodeDescriptorSet } from "../proto/descriptors.js";
import { checkManifest, decodeManifest, DESCRIPTOR_SECTION, MANIFEST_SECTION, readSection, type Manifest } from "./module-sections.js";

export interface ModuleDescription {
  readonly manifest: Manifest;
  readonly descriptorSet: IFileDescriptorSet;
}

/** What an artifact's `detail` holds (the store keeps it opaque): the maker's report and, when it could be carried as JSON, the description. */
export interface ArtifactDetail<Report> {
  readonly report: Report;
  readonly description?: ModuleDescription;
}

/** A module's API descriptor may not exceed this (a hostile one could make every lookup slow). */
export const MAX_DESCRIPTOR_BYTES = 4 * 1024 * 1024;

/** The serialized descriptor set the module carries (kept for reflection); INVALID_MODULE when missing or too large. */
export function readDescriptorSection(bytes: Uint8Array): Uint8Array {
  const descriptorBytes = readSection(bytes, DESCRIPTOR_SECTION);
  if (descriptorBytes.length > MAX_DESCRIPTOR_BYTES) {
    throw new KeystateError("INVALID_MODULE", `the module's API descriptor is ${descriptorBytes.length} bytes; the limit is ${MAX_DESCRIPTOR_BYTES}`);
  }
  return descriptorBytes;
}

/** Decodes the description from the module's (or component's) custom sections; INVALID_MODULE naming the problem. */
export function decodeDescription(bytes: Uint8Array, descriptorBytes = readDescriptorSection(bytes)): ModuleDescription {
  return { manifest: decodeManifest(readSection(bytes, MANIFEST_SECTION)), descriptorSet: decodeDescriptorSet(descriptorBytes) };
}

/**
 * The `detail` to store. The description is left out when JSON cannot carry it exactly: a
 * custom option with a bytes value (decoded as a Buffer) or a non-finite float; a node then
 * decodes that module's sections as before.
 */
export function encodeArtifactDetail(report: unknown, description: ModuleDescription): string {
  let exact = true;
  const json = JSON.stringify({ description }, function (this: Record<string, unknown>, key, value: unknown) {
    const original = this[key];
    if (original instanceof Uint8Array || (typeof value === "number" && !Number.isFinite(value))) exact = false;
    return value;
  });
  if (!exact) return JSON.stringify({ report });
  return `{"report":${JSON.stringify(report)},${json.slice(1)}`;
}

/** Reads a `detail` written by encodeArtifactDetail, or by an earlier release (the report alone). */
export function decodeArtifactDetail<Report>(detail: string): ArtifactDetail<Report> {
  const parsed = JSON.parse(detail) as Partial<ArtifactDetail<Report>> & Record<string, unknown>;
  if (parsed.report === undefined) return { report: parsed as Report };
  if (parsed.description === undefined) return { report: parsed.report };
  // What this host requires of a manifest may have changed since the deploy (ABI versions).
  checkManifest(parsed.description.manifest);
  return { report: parsed.report, description: parsed.description };
}
