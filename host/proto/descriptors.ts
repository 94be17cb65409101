// Decodes a module's API (a serialized google.protobuf.FileDescriptorSet) and indexes
// its messages and services by fully qualified name.
import type { IDescriptorProto, IFileDescriptorSet, IServiceDescriptorProto } from "protobufjs/ext/descriptor.js";
import { KeystateError } from "../errors.js";
import { lookupType } from "./proto-root.js";

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
  const type = lookupType("google.protobuf.FileDescriptorSet");
  try {
    const message = type.decode(bytes);
    return type.toObject(message, { longs: Number, bytes: Buffer, defaults: false }) as IFileDescriptorSet;
  } catch (err) {
    throw new KeystateError("INVALID_MODULE", `the module's API descriptor does not parse: ${(err as Error).message}`, { cause: err });
  }
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
