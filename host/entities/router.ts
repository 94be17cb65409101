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
import { CommandEffects, MAX_EFFECT_HOPS, checkEffectTarget, checkHops, type TargetCheck } from "./effects.js";
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

const NO_OPTIONS: CallOptions = {};

export class Router {
  readonly #registry: ModuleRegistry;
  readonly #entities: EntityManager;
  readonly #effects: EffectRunner;
  /** Checks a command's forward or side effect target (one function for every call, not a closure each). */
  readonly #checkTarget: TargetCheck;

  constructor(registry: ModuleRegistry, entities: EntityManager, options: RouterOptions = {}) {
    this.#registry = registry;
    this.#entities = entities;
    this.#checkTarget = (call, replyType, hops) => checkEffectTarget(registry, call, replyType, hops);
    this.#effects = new EffectRunner((service, method, payload, hops) => this.call(service, method, payload, { hops }), options.sideEffectRetry);
  }

  /** Opens a server-streaming call (replicated entities only); throws, opening nothing, when the method cannot stream. */
  openStream(serviceName: string, methodName: string, payload: Uint8Array, sink: StreamSink): StreamHandle {
    return openStream(this.#registry, this.#entities, serviceName, methodName, payload, sink);
  }

  async call(serviceName: string, methodName: string, payload: Uint8Array, options: CallOptions = NO_OPTIONS): Promise<Uint8Array> {
    const hops = options.hops ?? 0;
    // Async side effects are not checked before they are stored. (The name is built only for the error.)
    if (hops > MAX_EFFECT_HOPS) checkHops(`${serviceName}/${methodName}`, hops);
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
    const effects = new CommandEffects(this.#checkTarget, hops + 1, method.outputType);
    const gone = callerGone(options.context);
    if (gone) throw gone;
    if (service.kind === EntityKind.ACTION) {
      const reply = runAction(service, { method: methodName, payload, effects }, options.context?.requestId);
      return effects.none ? reply : this.#effects.complete(reply, effects, { module: service.moduleName, service: serviceName, method: methodName }, hops);
    }
    const key = method.key!.read(payload);
    const reply = await this.#entities.command(service, key, { method: methodName, payload, effects }, options.context);
    // Resolved: the command's state change is durable, so its effects may run.
    if (effects.none) return reply;
    return this.#effects.complete(reply, effects, { module: service.moduleName, service: serviceName, method: methodName, entityKey: key }, hops);
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
