// What a command asked for besides its reply: a forward (the caller's reply comes from
// another service's command) and side effects. The entity hands each successful guest
// result to accept() before it persists anything, so a forward or synchronous side
// effect to a target that is not deployed fails that command while nothing of it is
// stored. The Router runs what was accepted once the command's state change is durable.
import type { CommandResult, ServiceCall, SideEffect } from "../abi/abi-codec.js";
import { randomBytes } from "node:crypto";
import { KeystateError } from "../errors.js";
import type { EntityId, OutboxEntry } from "../journal/types.js";
import type { ModuleRegistry } from "../runtime/module-registry.js";

/**
 * Throws (a KeystateError) when `call` cannot be made: its target is not deployed, is
 * streaming, lacks the entity key, replies with another type than `replyType` (a forward
 * must answer the caller's method), or the call, `hops` effects deep, would exceed the hop limit.
 */
export type TargetCheck = (call: ServiceCall, replyType: string | undefined, hops: number) => void;

export class CommandEffects {
  #forward: ServiceCall | undefined;
  #sideEffects: readonly SideEffect[] = [];
  #outbox: readonly OutboxEntry[] | undefined;
  readonly #check: TargetCheck;
  readonly #hops: number;
  readonly #replyType: string;

  /** `hops`: how deep the command's effects would be; `replyType`: the fully qualified reply type of the method the caller called. */
  constructor(check: TargetCheck, hops: number, replyType: string) {
    this.#check = check;
    this.#hops = hops;
    this.#replyType = replyType;
  }

  /** True when the command asked for nothing but its reply (the common case, kept cheap). */
  get none(): boolean {
    return this.#forward === undefined && this.#sideEffects.length === 0;
  }

  get forward(): ServiceCall | undefined {
    return this.#forward;
  }

  get synchronous(): ServiceCall[] {
    return this.#sideEffects.filter((effect) => effect.synchronous).map((effect) => effect.call);
  }

  get asynchronous(): ServiceCall[] {
    return this.#sideEffects.filter((effect) => !effect.synchronous).map((effect) => effect.call);
  }

  /**
   * Checks and keeps the effects of a successful guest result; throws, keeping nothing,
   * when a forward or synchronous side effect cannot be made. Asynchronous side effects
   * are not checked: their target may be deployed by the time a retry runs.
   * Called again (a batch retried after a journal conflict), the last result wins.
   */
  accept(result: Pick<CommandResult, "forward" | "sideEffects">): void {
    if (result.forward) this.#check(result.forward, this.#replyType, this.#hops);
    for (const effect of result.sideEffects) {
      if (effect.synchronous) this.#check(effect.call, undefined, this.#hops);
    }
    this.#forward = result.forward;
    this.#sideEffects = result.sideEffects;
    this.#outbox = undefined;
  }

  /**
   * The accepted asynchronous side effects as outbox entries, to be stored with the write of
   * `entity` that makes `sequence` (its journal seq or value version). Their ids are the
   * idempotency keys of their deliveries: entity, sequence, effect index and a random part
   * (a command that writes nothing else leaves the sequence where it was). Asked again, the
   * same entries: the write that stores them and the Router that delivers them agree.
   */
  toOutbox(entity: EntityId, sequence: number): readonly OutboxEntry[] {
    if (this.#outbox !== undefined) return this.#outbox;
    const calls = this.asynchronous;
    if (calls.length === 0) return (this.#outbox = []);
    const nonce = randomBytes(4).toString("hex");
    const createdAt = Date.now();
    return (this.#outbox = calls.map((call, index) => ({
      id: `${entity.persistenceId}/${entity.key}@${sequence}.${index}.${nonce}`,
      service: call.service,
      method: call.method,
      payload: call.payload,
      hops: this.#hops,
      createdAt,
    })));
  }

  /** The outbox entries stored with the command's write (undefined: none were made). */
  get stored(): readonly OutboxEntry[] | undefined {
    return this.#outbox;
  }
}

/** How many forwards and side effects deep a chain may go before it is taken for a loop. */
export const MAX_EFFECT_HOPS = 16;

/** The TargetCheck for a call `hops` effects deep, against what `registry` serves now. */
export function checkEffectTarget(registry: ModuleRegistry, call: ServiceCall, replyType: string | undefined, hops: number): void {
  const target = `${call.service}/${call.method}`;
  checkHops(target, hops);
  const service = registry.service(call.service);
  const method = service?.methods.get(call.method);
  if (!service || !method) throw new KeystateError("UNKNOWN_METHOD", `the command calls ${target}, which is not deployed`);
  if (method.clientStreaming || method.serverStreaming) {
    throw new KeystateError("UNKNOWN_METHOD", `the command calls ${target}, a streaming method; forwards and side effects are unary`);
  }
  if (replyType !== undefined && method.outputType !== replyType) {
    throw new KeystateError("UNKNOWN_METHOD", `the command forwards to ${target}, which replies with ${method.outputType}, not ${replyType}`);
  }
  method.key?.read(call.payload); // INVALID_REQUEST now, rather than after this command is stored.
}

/** Throws EFFECT_LOOP when a call to `target` would be `hops` effects deep, past the limit. */
export function checkHops(target: string, hops: number): void {
  if (hops > MAX_EFFECT_HOPS) {
    throw new KeystateError("EFFECT_LOOP", `calling ${target} would make a chain of ${hops} forwards and side effects (the limit is ${MAX_EFFECT_HOPS}; a loop?)`);
  }
}
