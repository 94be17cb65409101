// Decodes a module's API (a serialized google.protobuf.FileDescriptorSet) and indexes
// its messages and services by fully qualified name.
import type { IDescriptorProto, IFileDescriptorProto, IFileDescriptorSet, IServiceDescriptorProto } from "protobufjs/ext/descriptor.js";
import { KeystateError } from "../errors.js";
import { lookupType } from "./proto-root.js";
import { scanFields, WIRE_LENGTH_DELIMITED, WireFormatError } from "./wire-scan.js";
import { bufferOf } from "../buffer-of.js";

/** Extension keys as protobufjs names them on decoded option objects. */
export const ENTITY_KEY_OPTION = ".keystate.entityKey";
export const HTTP_RULE_OPTION = ".google.api.http";

export interface DescriptorIndex {
  readonly set: IFileDescriptorSet;
  /** Messages by fully qualified name without the leading dot. */
  readonly messages: ReadonlyMap<string, IDescriptorProto>;
  readonly services: ReadonlyMap<string, IServiceDescriptorProto>;
}

/** Decodes the bytes; a set that does not parse is an INVALID_MODULE error naming the problem. */
export function decodeDescriptorSet(bytes: Uint8Array): IFileDescriptorSet {
  // Each file is decoded on its own and remembered by content: most modules carry the same
  // google/protobuf/descriptor.proto (about two thirds of the decode time) and google/api files.
  const files = splitFiles(bytes);
  if (files) {
    try {
      const decoded = files.map(decodeFile);
      return decoded.length > 0 ? { file: decoded } : ({} as IFileDescriptorSet);
    } catch {
      // Falls through to the whole-set decode, which reports the problem as it always has.
    }
  }
  const type = lookupType("google.protobuf.FileDescriptorSet");
  try {
    const message = type.decode(bytes);
    return type.toObject(message, { longs: Number, bytes: Buffer, defaults: false }) as IFileDescriptorSet;
  } catch (err) {
    throw new KeystateError("INVALID_MODULE", `the module's API descriptor does not parse: ${(err as Error).message}`, { cause: err });
  }
}

/** Decoded files by content, shared between modules (frozen, so no module can change another's). */
const FILE_CACHE_LIMIT = 32;
const FILE_CACHE_MAX_BYTES = 256 * 1024;
const fileCache = new Map<number, { bytes: Buffer; file: IFileDescriptorProto }[]>();
let fileCacheSize = 0;

/**
 * The raw bytes of each `file` entry (field 1) of a serialized FileDescriptorSet, in order and
 * without re-encoding, or undefined if it has anything else. decodeDescriptorSet decodes these,
 * so its files line up with them one for one (server reflection pairs the two).
 */
export function splitFiles(bytes: Uint8Array): Uint8Array[] | undefined {
  const files: Uint8Array[] = [];
  let other = false;
  try {
    scanFields(bytes, FILE_FIELD, (field) => {
      if (field.wireType !== WIRE_LENGTH_DELIMITED) other = true;
      else files.push(bytes.subarray(field.start, field.end));
    });
  } catch (err) {
    if (err instanceof WireFormatError) return undefined;
    throw err;
  }
  return other ? undefined : files;
}
const FILE_FIELD: ReadonlySet<number> = new Set([1]);

function decodeFile(bytes: Uint8Array): IFileDescriptorProto {
  const sameLength = fileCache.get(bytes.length);
  const view = bufferOf(bytes);
  const hit = sameLength?.find((entry) => entry.bytes.equals(view));
  if (hit) return hit.file;
  const type = lookupType("google.protobuf.FileDescriptorProto");
  const file = deepFreeze(type.toObject(type.decode(bytes), { longs: Number, bytes: Buffer, defaults: false })) as IFileDescriptorProto;
  if (bytes.length <= FILE_CACHE_MAX_BYTES) {
    if (fileCacheSize >= FILE_CACHE_LIMIT) {
      fileCache.clear();
      fileCacheSize = 0;
    }
    const entries = fileCache.get(bytes.length) ?? [];
    entries.push({ bytes: Buffer.from(view), file });
    fileCache.set(bytes.length, entries);
    fileCacheSize++;
  }
  return file;
}

/** Freezes a decoded descriptor (or anything) all the way down, so one copy can be shared. */
export function deepFreeze<T>(value: T): T {
  if (typeof value !== "object" || value === null || ArrayBuffer.isView(value) || Object.isFrozen(value)) return value;
  for (const key of Object.keys(value)) deepFreeze((value as Record<string, unknown>)[key]);
  return Object.freeze(value);
}

export function indexDescriptorSet(set: IFileDescriptorSet): DescriptorIndex {
  const messages = new Map<string, IDescriptorProto>();
  const services = new Map<string, IServiceDescriptorProto>();
  for (const file of set.file ?? []) {
    const prefix = file.package ? `${file.package}.` : "";
    for (const message of file.messageType ?? []) addMessage(messages, prefix, message);
    for (const service of file.service ?? []) services.set(prefix + (service.name ?? ""), service);
  }
  return { set, messages, services };
}

function addMessage(into: Map<string, IDescriptorProto>, prefix: string, message: IDescriptorProto): void {
  const fullName = prefix + (message.name ?? "");
  into.set(fullName, message);
  for (const nested of message.nestedType ?? []) addMessage(into, `${fullName}.`, nested);
}

/** ".pkg.Type" (as descriptors reference types) -> "pkg.Type". */
export function stripLeadingDot(typeName: string | null | undefined): string {
  return (typeName ?? "").replace(/^\./, "");
}
