// Routes a call (service, method, request bytes) to what handles it: the entity that
// owns the request's key, or — for a stateless action — the module's instance pool.
// Ingress, forwards and side effects all come through here, so the cluster can later
// send any of them to another node.
import { KeystateError } from "../errors.js";
import type { ModuleRegistry } from "../runtime/module-registry.js";
import { EntityKind } from "../runtime/module-sections.js";
import { runAction } from "./action.js";
import { callerGone, type CallContext } from "./call-context.js";
import { EffectRunner, type RetryPolicy } from "./effect-runner.js";
import { CommandEffects, checkEffectTarget, checkHops } from "./effects.js";
import type { EntityManager } from "./entity-manager.js";
import type { StreamHandle, StreamSink } from "./replicated-stream.js";
import { openStream } from "./stream-route.js";

export interface RouterOptions {
  /** Retries of asynchronous side effects (default DEFAULT_SIDE_EFFECT_RETRY). */
  readonly sideEffectRetry?: RetryPolicy;
}

export interface CallOptions {
  /** How many forwards / side effects deep this call is: 0 from ingress. */
  readonly hops?: number;
  /** The ingress call's request id, deadline and cancellation (absent for internal calls). */
  readonly context?: CallContext;
}

export class Router {
  readonly #registry: ModuleRegistry;
  readonly #entities: EntityManager;
  readonly #effects: EffectRunner;

  constructor(registry: ModuleRegistry, entities: EntityManager, options: RouterOptions = {}) {
    this.#registry = registry;
    this.#entities = entities;
    this.#effects = new EffectRunner((service, method, payload, hops) => this.call(service, method, payload, { hops }), options.sideEffectRetry);
  }

  /** Opens a server-streaming call (replicated entities only); throws, opening nothing, when the method cannot stream. */
  openStream(serviceName: string, methodName: string, payload: Uint8Array, sink: StreamSink): StreamHandle {
    return openStream(this.#registry, this.#entities, serviceName, methodName, payload, sink);
  }

  async call(serviceName: string, methodName: string, payload: Uint8Array, options: CallOptions = {}): Promise<Uint8Array> {
    const hops = options.hops ?? 0;
    checkHops(`${serviceName}/${methodName}`, hops); // async side effects are not checked before they are stored
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
    // The entity checks the command's forward and side effects with this before it persists anything.
    const effects = new CommandEffects((call, replyType) => checkEffectTarget(this.#registry, call, replyType, hops + 1), method.outputType);
    const origin = { module: service.moduleName, service: serviceName, method: methodName };
    const gone = callerGone(options.context);
    if (gone) throw gone;
    if (service.kind === EntityKind.ACTION) {
      const reply = runAction(service, { method: methodName, payload, effects }, options.context?.requestId);
      return effects.none ? reply : this.#effects.complete(reply, effects, origin, hops);
    }
    const key = method.key!.read(payload);
    const reply = await this.#entities.command(service, key, { method: methodName, payload, effects }, options.context);
    // Resolved: the command's state change is durable, so its effects may run.
    return effects.none ? reply : this.#effects.complete(reply, effects, { ...origin, entityKey: key }, hops);
  }

  /** Asynchronous side effects still waiting for a retry. */
  get pendingSideEffects(): number {
    return this.#effects.pending;
  }

  /** Stops retrying asynchronous side effects (node shutdown). */
  close(): void {
    this.#effects.close();
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
