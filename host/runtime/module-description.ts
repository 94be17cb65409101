// A module's description, its manifest and API descriptors, and how a deploy-time artifact
// carries it already decoded.
//
// Why: decoding the two custom sections with protobufjs was the largest part of loading a
// stored module at a node's start (~40 ms of a ~330 ms start, profiled), nearly all of it
// protobufjs generating the decoders of descriptor.proto's ~25 message types on first use.
// A deploy decodes them anyway, so it writes them into the artifact's `detail` as JSON and a
// node that loads the artifact later parses that instead (well under a millisecond; see
// encodeArtifactDetail). An artifact written before this carries only its report; it is
// decoded from its sections.
import { createHash } from "node:crypto";
import type { IFileDescriptorProto, IFileDescriptorSet } from "protobufjs/ext/descriptor.js";
import { KeystateError } from "../errors.js";
import { decodeDescriptorSet, deepFreeze } from "../proto/descriptors.js";
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
 * The `detail` to store, three JSON lines: the report; the manifest with a content key per
 * descriptor file; the files themselves. A node parses the third line only for a file it has
 * not seen: most modules carry the same google/protobuf/descriptor.proto (29 KB of the
 * cart's 35), so a node already serving one loads the next in microseconds (the cart: ~6 us
 * against ~150 us parsing it all, or ~20 us decoding its sections with warm decoders).
 *
 * The description is left out (the report alone, as before descriptions were carried) when
 * JSON cannot carry it exactly: a custom option with a bytes value (decoded as a Buffer) or a
 * non-finite float; a node then decodes that module's sections.
 */
export function encodeArtifactDetail(report: unknown, description: ModuleDescription): string {
  const files: CarriedFile[] = [];
  for (const file of description.descriptorSet.file ?? []) {
    const carried = carriedFile(file);
    if (!carried) return JSON.stringify(report);
    files.push(carried);
  }
  const index: CarriedIndex = { manifest: description.manifest, files: files.map((file) => file.key) };
  return `${JSON.stringify(report)}\n${JSON.stringify(index)}\n[${files.map((file) => file.json).join(",")}]`;
}

/** A descriptor file as the detail carries it: its JSON and the content key it is found by. */
interface CarriedFile {
  readonly json: string;
  readonly key: string;
}

/**
 * Each file's JSON, by the file object: decoded files are frozen and the decoder hands the
 * same object back for the same bytes, so a redeploy, and every module carrying
 * google/protobuf/descriptor.proto, stringifies a file once. With the replacer that checks
 * exactness, stringifying the cart's files cost ~260 us of each deploy. Null: JSON cannot
 * carry the file exactly.
 */
const carriedJson = new WeakMap<IFileDescriptorProto, CarriedFile | null>();

function carriedFile(file: IFileDescriptorProto): CarriedFile | undefined {
  let carried = carriedJson.get(file);
  if (carried === undefined) {
    let exact = true;
    const json = JSON.stringify(file, function (this: Record<string, unknown>, key, value: unknown) {
      const original = this[key];
      if (original instanceof Uint8Array || (typeof value === "number" && !Number.isFinite(value))) exact = false;
      return value;
    });
    carried = exact ? { json, key: fileKey(json) } : null;
    if (Object.isFrozen(file)) carriedJson.set(file, carried);
  }
  return carried ?? undefined;
}

interface CarriedIndex {
  readonly manifest: Manifest;
  /** A content key per descriptor file, in the set's order. */
  readonly files: readonly string[];
}

function fileKey(json: string): string {
  return createHash("sha256").update(json).digest("base64url");
}

/** Reads a `detail` written by encodeArtifactDetail, or by an earlier release (the report alone). */
export function decodeArtifactDetail<Report>(detail: string): ArtifactDetail<Report> {
  const reportEnd = detail.indexOf("\n");
  if (reportEnd < 0) return { report: JSON.parse(detail) as Report };
  const indexEnd = detail.indexOf("\n", reportEnd + 1);
  const report = JSON.parse(detail.slice(0, reportEnd)) as Report;
  const index = JSON.parse(detail.slice(reportEnd + 1, indexEnd)) as CarriedIndex;
  // What this host requires of a manifest may have changed since the deploy (ABI versions).
  checkManifest(index.manifest);
  let carried: IFileDescriptorProto[] | undefined;
  const file = index.files.map((key, i) => {
    const known = carriedFiles.get(key);
    if (known) return known;
    carried ??= JSON.parse(detail.slice(indexEnd + 1)) as IFileDescriptorProto[];
    return rememberFile(key, carried[i]!);
  });
  return { report, description: { manifest: index.manifest, descriptorSet: { file } } };
}

/** Carried descriptor files by content key, shared between modules (frozen, so no module can change another's). */
const CARRIED_FILES_LIMIT = 64;
const carriedFiles = new Map<string, IFileDescriptorProto>();

function rememberFile(key: string, file: IFileDescriptorProto): IFileDescriptorProto {
  if (carriedFiles.size >= CARRIED_FILES_LIMIT) carriedFiles.clear();
  const frozen = deepFreeze(file);
  carriedFiles.set(key, frozen);
  return frozen;
}
