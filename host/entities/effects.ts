// What a command asked for besides its reply: a forward (the caller's reply comes from
// another service's command) and side effects. The entity hands each successful guest
// result to accept() before it persists anything, so a forward or synchronous side
// effect to a target that is not deployed fails that command while nothing of it is
// stored. The Router runs what was accepted once the command's state change is durable.
import type { CommandResult, Publication, ServiceCall, SideEffect, TimerRequest } from "../abi/abi-codec.js";
import { randomBytes } from "node:crypto";
import { KeystateError } from "../errors.js";
import { TOPIC_NAME } from "../runtime/subscriptions.js";
import type { EntityId, OutboxEntry } from "../journal/types.js";
import type { EffectOrigin } from "./effect-runner.js";
import type { ModuleRegistry } from "../runtime/module-registry.js";

/**
 * Throws (a KeystateError) when `call` cannot be made: its target is not deployed, is
 * streaming, lacks the entity key, replies with another type than `replyType` (a forward
 * must answer the caller's method), or the call, `hops` effects deep, would exceed the hop limit.
 */
export type TargetCheck = (call: ServiceCall, replyType: string | undefined, hops: number) => void;

/**
 * Runs a command's effects after its state change is durable and answers with the caller's
 * reply (the Router, for a command whose promise it handed to the caller: handOff).
 */
export type LateCompletion = (reply: Uint8Array, effects: CommandEffects, origin: EffectOrigin) => Promise<Uint8Array>;

export class CommandEffects {
  #forward: ServiceCall | undefined;
  /** Whether a guest result was accepted: the command ran. */
  #accepted = false;
  /** Set by handOff: who completes the effects of a run again, the Router no longer waiting. */
  #late: LateCompletion | undefined;
  #sideEffects: readonly SideEffect[] = NONE;
  #timers: readonly TimerRequest[] = NONE;
  #publications: readonly Publication[] = NONE;
  #outbox: readonly OutboxEntry[] | undefined;
  #cancelled: readonly string[] = NONE;
  readonly #check: TargetCheck;
  readonly #hops: number;
  readonly #replyType: string;
  readonly #idempotencyKey: string | undefined;

  /**
   * `hops`: how deep the command's effects would be; `replyType`: the fully qualified reply
   * type of the method the caller called; `idempotencyKey`: the call's, when it has one (its
   * stored effects then get ids derived from it, the same on every retry of the call).
   */
  constructor(check: TargetCheck, hops: number, replyType: string, idempotencyKey?: string) {
    this.#check = check;
    this.#hops = hops;
    this.#replyType = replyType;
    this.#idempotencyKey = idempotencyKey;
  }

  /** True when the command asked for nothing but its reply (the common case, kept cheap). */
  get none(): boolean {
    return this.#forward === undefined && this.#sideEffects.length === 0 && this.#timers.length === 0 && this.#publications.length === 0;
  }

  /**
   * The guest has run the command and it asked for nothing but its reply: once its state
   * change is durable, that reply is the answer. Only a run again could change that (a lone
   * command whose write was refused as stale is retried: lone-command.ts retryAsBatch), and
   * that run answers through afterRerun.
   */
  get ranWithNone(): boolean {
    return this.#accepted && this.none;
  }

  /**
   * The Router hands the command's promise to its caller without waiting on it (ranWithNone);
   * should a run again ask for effects, `late` runs them before the answer.
   */
  handOff(late: LateCompletion): void {
    this.#late = late;
  }

  /** The answer of a run again: `reply`, or, when it was handed off and this run asked for effects, what `late` makes of it. */
  afterRerun(reply: Uint8Array, origin: EffectOrigin): Uint8Array | Promise<Uint8Array> {
    const late = this.#late;
    return late === undefined || this.none ? reply : late(reply, this, origin);
  }

  /** How deep the command's effects are (the command's own depth + 1). */
  get hops(): number {
    return this.#hops;
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
  accept(result: Pick<CommandResult, "forward" | "sideEffects"> & Partial<Pick<CommandResult, "timers" | "publications">>): void {
    if (result.forward) this.#check(result.forward, this.#replyType, this.#hops);
    for (const effect of result.sideEffects) {
      if (effect.synchronous) this.#check(effect.call, undefined, this.#hops);
    }
    const timers = result.timers ?? NONE;
    const publications = result.publications ?? NONE;
    for (const timer of timers) checkTimer(timer);
    for (const publication of publications) checkPublication(publication);
    this.#forward = result.forward;
    this.#sideEffects = result.sideEffects;
    this.#timers = timers;
    this.#publications = publications;
    this.#outbox = undefined;
    this.#cancelled = NONE;
    this.#accepted = true;
  }

  /**
   * What the command stores in its outbox, with the write of `entity` that makes `sequence`
   * (its journal seq or value version): asynchronous side effects, timers and publications.
   * Their ids are the idempotency keys of their deliveries: issuer, sequence, index and a
   * random part (a command that writes nothing else leaves the sequence where it was), or,
   * for a call with an idempotency key, issuer and that key (a retried call stores the same
   * entries, so a stateless action's effects land once too). Asked again, the same entries:
   * the write that stores them and the Router that delivers them agree.
   * `entity`: the issuing entity, or for an action `{ persistenceId: <service>, key: "" }`.
   */
  toOutbox(entity: EntityId, sequence: number): readonly OutboxEntry[] {
    if (this.#outbox !== undefined) return this.#outbox;
    const calls = this.asynchronous;
    if (calls.length === 0 && this.#timers.length === 0 && this.#publications.length === 0) return (this.#outbox = NONE);
    const issuer = `${entity.persistenceId}/${entity.key}`;
    const base = this.#idempotencyKey === undefined ? `${issuer}@${sequence}.` : `${issuer}#${this.#idempotencyKey}>`;
    const nonce = this.#idempotencyKey === undefined ? `.${randomBytes(4).toString("hex")}` : "";
    const createdAt = Date.now();
    const hops = this.#hops;
    const entries: OutboxEntry[] = calls.map((call, index) => ({ id: `${base}${index}${nonce}`, service: call.service, method: call.method, payload: call.payload, hops, createdAt }));
    const cancelled: string[] = [];
    for (const [index, timer] of this.#timers.entries()) {
      const slot = timer.name === "" ? undefined : `timer:${issuer}:${timer.name}`;
      if (timer.cancel) {
        if (slot !== undefined) cancelled.push(slot);
        continue;
      }
      const { service, method, payload } = timer.call;
      entries.push({ id: `${base}t${index}${nonce}`, slot, service, method, payload, hops, createdAt, dueAt: createdAt + timer.delayMs });
    }
    for (const [index, publication] of this.#publications.entries()) {
      const { topic, type, payload, partitionKey } = publication;
      entries.push({ id: `${base}p${index}${nonce}`, service: "", method: "", payload, hops, createdAt, publish: { topic, type, partitionKey, source: issuer } });
    }
    // A slot scheduled again after its cancel in one command keeps the new entry.
    const scheduled = new Set(entries.map((entry) => entry.slot));
    this.#cancelled = cancelled.filter((slot) => !scheduled.has(slot));
    return (this.#outbox = dedupeSlots(entries));
  }

  /** The named timers the command cancelled (outbox slots to delete with its write); valid after toOutbox. */
  get cancelled(): readonly string[] {
    return this.#cancelled;
  }

  /** The outbox entries stored with the command's write (undefined: none were made). */
  get stored(): readonly OutboxEntry[] | undefined {
    return this.#outbox;
  }
}

/** Shared by the commands without timers or publications: never written to. */
const NONE: never[] = [];

/** The longest delay a timer may have: about 10 years (past that it is a bug, not a plan). */
export const MAX_TIMER_DELAY_MS = 10 * 365 * 24 * 3600 * 1000;
const MAX_TIMER_NAME = 200;

function checkTimer(timer: TimerRequest): void {
  if (timer.name.length > MAX_TIMER_NAME) throw new KeystateError("INVALID_REQUEST", `a timer name is at most ${MAX_TIMER_NAME} characters (got ${timer.name.length})`);
  if (timer.cancel) {
    if (timer.name === "") throw new KeystateError("INVALID_REQUEST", "cancelTimer() needs the name the timer was scheduled with");
    return;
  }
  if (!Number.isSafeInteger(timer.delayMs) || timer.delayMs < 0 || timer.delayMs > MAX_TIMER_DELAY_MS) {
    throw new KeystateError("INVALID_REQUEST", `a timer's delay must be 0 to ${MAX_TIMER_DELAY_MS} ms (got ${timer.delayMs})`);
  }
  if (timer.call.service === "" || timer.call.method === "") throw new KeystateError("INVALID_REQUEST", "a timer needs a service and a method to call");
}

function checkPublication(publication: Publication): void {
  if (!TOPIC_NAME.test(publication.topic)) {
    throw new KeystateError("INVALID_REQUEST", `cannot publish to topic ${JSON.stringify(publication.topic)}: a topic name is 1-100 letters, digits, '.', '_' or '-', starting with a letter or digit`);
  }
}

/** Entries of one command scheduling one named timer twice: the last one stands. */
function dedupeSlots(entries: OutboxEntry[]): OutboxEntry[] {
  const last = new Map<string, number>();
  entries.forEach((entry, index) => entry.slot !== undefined && last.set(entry.slot, index));
  return last.size === 0 ? entries : entries.filter((entry, index) => entry.slot === undefined || last.get(entry.slot) === index);
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
