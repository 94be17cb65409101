// Routes a call (service, method, request bytes) to what handles it: the entity that
// owns the request's key, or — for a stateless action — the module's instance pool.
// Ingress, forwards and side effects all come through here, so the cluster can later
// send any of them to another node.
import { KeystateError } from "../errors.js";
import type { ModuleRegistry } from "../runtime/module-registry.js";
import { EntityKind } from "../runtime/module-sections.js";
import { runAction } from "./action.js";
import type { EntityManager } from "./entity-manager.js";
import type { StreamHandle, StreamSink } from "./replicated-stream.js";
import { openStream } from "./stream-route.js";

export class Router {
  readonly #registry: ModuleRegistry;
  readonly #entities: EntityManager;

  constructor(registry: ModuleRegistry, entities: EntityManager) {
    this.#registry = registry;
    this.#entities = entities;
  }

  /** Opens a server-streaming call (replicated entities only); throws, opening nothing, when the method cannot stream. */
  openStream(serviceName: string, methodName: string, payload: Uint8Array, sink: StreamSink): StreamHandle {
    return openStream(this.#registry, this.#entities, serviceName, methodName, payload, sink);
  }

  async call(serviceName: string, methodName: string, payload: Uint8Array): Promise<Uint8Array> {
    const service = this.#registry.service(serviceName);
    const method = service?.methods.get(methodName);
    if (!service || !method) {
      throw new KeystateError("UNKNOWN_METHOD", `no method ${serviceName}/${methodName} is deployed`);
    }
    if (method.clientStreaming || method.serverStreaming) {
      // Checked before any guest code or storage is touched: the call changes nothing.
      throw new KeystateError(
        "UNKNOWN_METHOD",
        `${serviceName}/${methodName} is a streaming method; ${kindLabel(service.kind)} serve unary calls only`,
      );
    }
    if (service.kind === EntityKind.ACTION) return runAction(service, { method: methodName, payload });
    const key = method.key!.read(payload);
    return this.#entities.command(service, key, { method: methodName, payload });
  }
}

function kindLabel(kind: EntityKind): string {
  switch (kind) {
    case EntityKind.EVENT_SOURCED:
      return "event-sourced entities";
    case EntityKind.VALUE:
      return "value entities";
    case EntityKind.ACTION:
      return "actions";
    default:
      return "entities of this kind";
  }
}
