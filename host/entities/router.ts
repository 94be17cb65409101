// Routes a call (service, method, request bytes) to what handles it: the entity that
// owns the request's key, or — for a stateless action — the module's instance pool.
// Ingress, forwards and side effects all come through here, so the cluster can later
// send any of them to another node.
import { KeystateError } from "../errors.js";
import type { ModuleRegistry } from "../runtime/module-registry.js";
import { EntityKind } from "../runtime/module-sections.js";
import { runAction } from "./action.js";
import { callerGone, type CallContext } from "./call-context.js";
import type { EntityId, Outbox, Topics } from "../journal/types.js";
import type { CallMetadata } from "../abi/abi-codec.js";
import { EffectRunner, type EffectOrigin, type RetryPolicy } from "./effect-runner.js";
import { CommandEffects, MAX_EFFECT_HOPS, checkEffectTarget, checkHops, type LateCompletion, type TargetCheck } from "./effects.js";
import type { EntityManager } from "./entity-manager.js";
import type { StreamHandle, StreamSink } from "./replicated-stream.js";
import { runAtOwner, shardOfEntity, streamAtOwner } from "./owner-route.js";
import { IDEMPOTENCY_KEY_HEADER, type Placement } from "./placement.js";
import type { ServiceRuntime } from "./service-runtime.js";
import { openStream } from "./stream-route.js";
import type { MethodModel } from "../runtime/service-model.js";

export interface RouterOptions {
  /** Retries of asynchronous side effects (default DEFAULT_SIDE_EFFECT_RETRY). */
  readonly sideEffectRetry?: RetryPolicy;
  /** Where asynchronous side effects, timers and publications are stored (the store's outbox); redelivered from there after a crash. */
  readonly outbox?: Outbox;
  /** Where stored publications are appended (the store's topics). */
  readonly topics?: Topics;
  /** Told of each timer as it fires, with how late it is. */
  readonly onTimerFired?: (latenessMs: number) => void;
}

export interface CallOptions {
  /** How many forwards / side effects deep this call is: 0 from ingress. */
  readonly hops?: number;
  /** The ingress call's request id, deadline and cancellation (absent for internal calls). */
  readonly context?: CallContext;
  /** The call came from another node of the cluster: run it here or answer "moved", never forward it again. */
  readonly forwarded?: boolean;
  /** A delivery of a stored side effect (its outbox entry id), or the caller's `idempotency-key`. */
  readonly idempotencyKey?: string;
  /** What the call carries for the handler besides its message (a subscription's CloudEvents attributes). */
  readonly metadata?: CallMetadata;
}

const NO_OPTIONS: CallOptions = {};

export class Router {
  readonly #registry: ModuleRegistry;
  readonly #entities: EntityManager;
  readonly #effects: EffectRunner;
  readonly #outbox: Outbox | undefined;
  /** Checks a command's forward or side effect target (one function for every call, not a closure each). */
  readonly #checkTarget: TargetCheck;
  /** Completes the effects of a handed-off command's run again (#commandHere; one function for every command). */
  readonly #lateCompletion: LateCompletion = (reply, effects, origin) => this.#effects.complete(reply, effects, origin, effects.hops - 1, 0);
  /** The cluster's answer to "is this entity's shard mine?"; undefined on a single node. */
  #placement: Placement | undefined;
  #catchUp: (() => Promise<void>) | undefined;

  constructor(registry: ModuleRegistry, entities: EntityManager, options: RouterOptions = {}) {
    this.#registry = registry;
    this.#entities = entities;
    this.#checkTarget = (call, replyType, hops) => checkEffectTarget(registry, call, replyType, hops);
    this.#outbox = options.outbox;
    const topics = options.topics;
    this.#effects = new EffectRunner(
      (service, method, payload, hops, idempotencyKey) => this.call(service, method, payload, { hops, idempotencyKey }),
      options.sideEffectRetry,
      {
        outbox: options.outbox,
        publish: topics === undefined ? undefined : (topic, message) => topics.publish(topic, message),
        serves: (shard) => this.#placement === undefined || this.#placement.serves(shard),
        onTimerFired: options.onTimerFired,
      },
    );
  }

  /**
   * From now on, keyed calls run at the owner of their entity's shard (the cluster).
   * `catchUp` loads what the cluster has deployed: a call forwarded here for a service this
   * node has not loaded yet (a deploy moments ago on another node) waits for it once.
   */
  usePlacement(placement: Placement, catchUp?: () => Promise<void>): void {
    this.#placement = placement;
    this.#catchUp = catchUp;
  }

  /** Opens a server-streaming call (replicated entities only); throws, opening nothing, when the method cannot stream. */
  openStream(serviceName: string, methodName: string, payload: Uint8Array, sink: StreamSink, options: CallOptions = NO_OPTIONS): StreamHandle {
    const placement = this.#placement;
    const service = this.#registry.service(serviceName);
    const method = service?.methods.get(methodName);
    // Unroutable streams are refused by openStream's own checks, here and now; replicated entities live on every node.
    if (placement === undefined || !service || service.kind === EntityKind.REPLICATED || !method?.serverStreaming || method.clientStreaming || !method.key) {
      return openStream(this.#registry, this.#entities, serviceName, methodName, payload, sink);
    }
    const shard = shardOfEntity(placement, service, method.key.read(payload));
    const call = { context: options.context, hops: options.hops ?? 0, forwarded: options.forwarded === true };
    return streamAtOwner(placement, shard, method.path, payload, sink, call, () => openStream(this.#registry, this.#entities, serviceName, methodName, payload, sink));
  }

  call(serviceName: string, methodName: string, payload: Uint8Array, options: CallOptions = NO_OPTIONS): Promise<Uint8Array> {
    // A keyed entity's command on a single node, the most common call, has a path without an
    // async frame of its own (commandHere); everything else takes the general one.
    if (this.#placement === undefined) {
      const service = this.#registry.service(serviceName);
      const method = service?.methods.get(methodName);
      if (
        method !== undefined &&
        (service!.kind === EntityKind.VALUE || service!.kind === EntityKind.EVENT_SOURCED) &&
        !method.clientStreaming &&
        !method.serverStreaming &&
        (options.hops ?? 0) <= MAX_EFFECT_HOPS
      ) {
        try {
          return this.#commandHere(service!, method, payload, options);
        } catch (err) {
          return Promise.reject(err);
        }
      }
    }
    return this.#callAnywhere(serviceName, methodName, payload, options);
  }

  /**
   * A value or event-sourced entity's command on a single node: as #callAnywhere's, but when
   * the guest ran it at once (alone, mailbox.ts runAlone) and it asked for nothing but its
   * reply, the entity's promise goes to the caller as it is: resolved once the state change
   * is durable, with the reply. That saves an async frame and a promise per command: x1.03-x1.14
   * counter commands per second in process (10,000 keys). A run again (a lone write refused
   * as stale, then retried) that asks for effects runs them through the hand-off (effects.ts).
   */
  #commandHere(service: ServiceRuntime, method: MethodModel, payload: Uint8Array, options: CallOptions): Promise<Uint8Array> {
    const hops = options.hops ?? 0;
    const { idempotencyKey } = options;
    const metadata = idempotencyKey === undefined ? options.metadata : [...(options.metadata ?? []), [IDEMPOTENCY_KEY_HEADER, idempotencyKey] as const];
    const gone = callerGone(options.context);
    if (gone) throw gone;
    const key = method.key!.read(payload);
    const effects = new CommandEffects(this.#checkTarget, hops + 1, method.outputType, idempotencyKey);
    const reply = this.#entities.command(service, key, { method: method.name, payload, effects, idempotencyKey, metadata }, options.context);
    if (effects.ranWithNone) {
      effects.handOff(this.#lateCompletion);
      return reply;
    }
    return this.#completeAfter(reply, effects, { module: service.moduleName, service: service.name, method: method.name, entityKey: key }, hops);
  }

  async #completeAfter(pending: Promise<Uint8Array>, effects: CommandEffects, origin: EffectOrigin, hops: number): Promise<Uint8Array> {
    const reply = await pending;
    // Resolved: the command's state change is durable, so its effects may run.
    if (effects.none) return reply;
    return this.#effects.complete(reply, effects, origin, hops, 0);
  }

  async #callAnywhere(serviceName: string, methodName: string, payload: Uint8Array, options: CallOptions): Promise<Uint8Array> {
    const hops = options.hops ?? 0;
    // Async side effects are not checked before they are stored. (The name is built only for the error.)
    if (hops > MAX_EFFECT_HOPS) checkHops(`${serviceName}/${methodName}`, hops);
    let service = this.#registry.service(serviceName);
    if (!service && options.forwarded && this.#catchUp) {
      // The sending node serves it, so the cluster has it: this node is behind by a notice.
      await this.#catchUp();
      service = this.#registry.service(serviceName);
    }
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
    const { idempotencyKey } = options;
    // The handler sees the key it is answered under (ctx.metadata("idempotency-key")): a subscriber may dedupe with it.
    const metadata = idempotencyKey === undefined ? options.metadata : [...(options.metadata ?? []), [IDEMPOTENCY_KEY_HEADER, idempotencyKey] as const];
    const gone = callerGone(options.context);
    if (gone) throw gone;
    // The entity checks the command's forward and side effects with a CommandEffects before
    // it persists anything; in a cluster each run here makes its own (runHere).
    if (service.kind === EntityKind.ACTION) {
      const effects = new CommandEffects(this.#checkTarget, hops + 1, method.outputType, idempotencyKey);
      const reply = runAction(service, { method: methodName, payload, effects, metadata }, options.context?.requestId);
      if (effects.none) return reply;
      const shard = await this.#storeOwnEffects(effects, { persistenceId: serviceName, key: "" });
      return this.#effects.complete(reply, effects, { module: service.moduleName, service: serviceName, method: methodName }, hops, shard);
    }
    const key = method.key!.read(payload);
    // Replicated entities have a replica on every node: they never move or forward.
    if (service.kind === EntityKind.REPLICATED) {
      const effects = new CommandEffects(this.#checkTarget, hops + 1, method.outputType, idempotencyKey);
      const reply = await this.#entities.command(service, key, { method: methodName, payload, effects, idempotencyKey, metadata }, options.context);
      // Resolved: the command's state change is durable, so its effects may run.
      if (effects.none) return reply;
      const shard = await this.#storeOwnEffects(effects, { persistenceId: service.persistenceId, key });
      return this.#effects.complete(reply, effects, { module: service.moduleName, service: serviceName, method: methodName, entityKey: key }, hops, shard);
    }
    const placement = this.#placement;
    // A single node's value and event-sourced commands: call() sends them to #commandHere already.
    if (placement === undefined) return this.#commandHere(service, method, payload, options);
    // In a cluster the command may run here or at the owner; only a run here that succeeded
    // has effects for this node to complete (a fenced attempt's effects die with it).
    let ranHere: CommandEffects | undefined;
    const runHere = async () => {
      const attempt = new CommandEffects(this.#checkTarget, hops + 1, method.outputType, idempotencyKey);
      const reply = await this.#entities.command(service, key, { method: methodName, payload, effects: attempt, idempotencyKey, metadata }, options.context);
      ranHere = attempt;
      return reply;
    };
    // The owner adds the idempotency key to the metadata itself.
    const call = { context: options.context, hops, forwarded: options.forwarded === true, idempotencyKey, metadata: options.metadata };
    const shard = shardOfEntity(placement, service, key);
    const reply = await runAtOwner(placement, shard, method.path, payload, call, runHere);
    const done = ranHere as CommandEffects | undefined;
    if (done === undefined || done.none) return reply;
    return this.#effects.complete(reply, done, { module: service.moduleName, service: serviceName, method: methodName, entityKey: key }, hops, shard);
  }

  /**
   * Stores the asynchronous side effects, timers and publications of a command whose state is
   * not written with them (an action's, a replicated entity's) in the outbox of the shard of
   * `issuer` (for an action, `{ persistenceId: <service>, key: "" }`), before the reply:
   * once the caller has its answer, they are durable. Resolves that shard. A storage failure
   * fails the call (the caller may retry; an action's retry with its idempotency key stores
   * the same entries).
   */
  async #storeOwnEffects(effects: CommandEffects, issuer: EntityId): Promise<number> {
    const entries = effects.toOutbox(issuer, 0);
    const outbox = this.#outbox;
    if (outbox === undefined || (entries.length === 0 && effects.cancelled.length === 0)) return 0;
    // One shard per issuer (per action service): where a later cancel of its named timer looks.
    const shard = this.#placement === undefined ? 0 : this.#placement.shardOf(issuer.persistenceId, issuer.key);
    await outbox.add(shard, entries, effects.cancelled);
    return shard;
  }

  /**
   * Delivers the stored side effects of the shards this node serves (all of them on a single
   * node) that no process is delivering: those a crashed process, or a shard's former owner,
   * left behind. The node runs it at start and then periodically.
   */
  redeliverStoredEffects(): Promise<number> {
    return this.#effects.redeliver(this.#placement === undefined ? [0] : this.#placement.servedShards());
  }

  /** The shards this node serves now (a single node: the one shard, 0): whose stored work (outbox, event feeds) it does. */
  servedShards(): number[] {
    return this.#placement === undefined ? [0] : this.#placement.servedShards();
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
