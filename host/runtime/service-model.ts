// Joins a module's manifest with its API descriptor into what the host serves:
// each service's state model and each method's gRPC shape and entity-key reader.
import type { IFileDescriptorSet } from "protobufjs/ext/descriptor.js";
import { CRDT_TYPES, isCrdtType } from "../crdt/types.js";
import { KeystateError } from "../errors.js";
import { indexDescriptorSet, stripLeadingDot, type DescriptorIndex } from "../proto/descriptors.js";
import { entityKeyReader, keyFieldsOf, type EntityKeyReader } from "../proto/entity-key.js";
import { EntityKind, type Manifest, type ServiceManifest } from "./module-sections.js";

export interface MethodModel {
  readonly service: string;
  readonly name: string;
  /** The gRPC path, "/package.Service/Method". */
  readonly path: string;
  readonly inputType: string;
  readonly outputType: string;
  readonly clientStreaming: boolean;
  readonly serverStreaming: boolean;
  /** Absent for actions, which have no entity. */
  readonly key: EntityKeyReader | undefined;
  /** The method's options as decoded (carries `.google.api.http`). */
  readonly options: Readonly<Record<string, unknown>>;
}

export interface ServiceModel extends ServiceManifest {
  readonly methods: ReadonlyMap<string, MethodModel>;
}

export interface ApiModel {
  readonly descriptors: DescriptorIndex;
  readonly services: ReadonlyMap<string, ServiceModel>;
}

const ENTITY_KINDS = new Set([EntityKind.EVENT_SOURCED, EntityKind.VALUE, EntityKind.REPLICATED, EntityKind.ACTION]);

export function buildApiModel(set: IFileDescriptorSet, manifest: Manifest): ApiModel {
  const descriptors = indexDescriptorSet(set);
  const services = new Map<string, ServiceModel>();
  for (const entry of manifest.services) {
    if (services.has(entry.service)) throw new KeystateError("INVALID_MODULE", `the manifest lists service ${entry.service} twice`);
    services.set(entry.service, buildService(descriptors, entry));
  }
  return { descriptors, services };
}

function buildService(descriptors: DescriptorIndex, entry: ServiceManifest): ServiceModel {
  const descriptor = descriptors.services.get(entry.service);
  if (!descriptor) {
    throw new KeystateError("INVALID_MODULE", `the manifest names service ${entry.service}, which the module's API does not define`);
  }
  if (!ENTITY_KINDS.has(entry.kind)) throw new KeystateError("INVALID_MODULE", `service ${entry.service} has no valid entity kind`);
  if (entry.kind !== EntityKind.ACTION && !entry.persistenceId) {
    throw new KeystateError("INVALID_MODULE", `service ${entry.service} needs a persistence id`);
  }
  if (entry.kind === EntityKind.REPLICATED && !isCrdtType(entry.crdtType)) {
    throw new KeystateError("INVALID_MODULE", `service ${entry.service} is replicated but names no valid CRDT type (got "${entry.crdtType}"; expected one of ${CRDT_TYPES.join(", ")})`);
  }
  if (![0, 1, 2].includes(entry.writeConsistency) || (entry.writeConsistency !== 0 && entry.kind !== EntityKind.REPLICATED)) {
    throw new KeystateError("INVALID_MODULE", `service ${entry.service}: write consistency ${entry.writeConsistency} is not valid (0 local, 1 majority, 2 all; replicated entities only)`);
  }
  for (const typeName of [entry.stateType, ...entry.eventTypes]) {
    if (typeName && !descriptors.messages.has(typeName)) {
      throw new KeystateError("INVALID_MODULE", `service ${entry.service} names message ${typeName}, which the API does not define`);
    }
  }
  const methods = new Map<string, MethodModel>();
  for (const method of descriptor.method ?? []) {
    const name = method.name ?? "";
    const inputType = stripLeadingDot(method.inputType);
    const input = descriptors.messages.get(inputType);
    if (!input) throw new KeystateError("INVALID_MODULE", `method ${entry.service}.${name} takes ${inputType}, which the API does not define`);
    let key: EntityKeyReader | undefined;
    if (entry.kind !== EntityKind.ACTION) {
      const fields = keyFieldsOf(inputType, input);
      if (fields.length === 0) {
        throw new KeystateError(
          "INVALID_MODULE",
          `method ${entry.service}.${name}: its input ${inputType} has no field marked (keystate.entity_key)`,
        );
      }
      key = entityKeyReader(inputType, fields);
    }
    methods.set(name, {
      service: entry.service,
      name,
      path: `/${entry.service}/${name}`,
      inputType,
      outputType: stripLeadingDot(method.outputType),
      clientStreaming: method.clientStreaming === true,
      serverStreaming: method.serverStreaming === true,
      key,
      options: (method.options ?? {}) as Record<string, unknown>,
    });
  }
  return { ...entry, methods };
}
