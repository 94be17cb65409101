// Routes a server-streaming call. Only replicated (CRDT) entities serve streams; every
// other case is refused with UNIMPLEMENTED before any guest code or storage is touched.
import { KeystateError } from "../errors.js";
import type { ModuleRegistry } from "../runtime/module-registry.js";
import { EntityKind } from "../runtime/module-sections.js";
import type { EntityManager } from "./entity-manager.js";
import type { StreamHandle, StreamSink } from "./replicated-stream.js";

export function openStream(
  registry: ModuleRegistry,
  entities: EntityManager,
  serviceName: string,
  methodName: string,
  payload: Uint8Array,
  sink: StreamSink,
): StreamHandle {
  const service = registry.service(serviceName);
  const method = service?.methods.get(methodName);
  if (!service || !method) throw new KeystateError("UNKNOWN_METHOD", `no method ${serviceName}/${methodName} is deployed`);
  const path = `${serviceName}/${methodName}`;
  if (method.clientStreaming) throw new KeystateError("UNKNOWN_METHOD", `${path} is client-streaming; no entity kind serves client streams`);
  if (!method.serverStreaming) throw new KeystateError("UNKNOWN_METHOD", `${path} is a unary method; call it without a stream`);
  if (service.kind !== EntityKind.REPLICATED) {
    throw new KeystateError("UNKNOWN_METHOD", `${path} is a streaming method; only replicated (CRDT) entities serve streamed commands, and ${serviceName} is ${EntityKind[service.kind]}`);
  }
  const key = method.key!.read(payload);
  return entities.openStream(service, key, { method: methodName, payload }, sink);
}
