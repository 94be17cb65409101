// Runs a command's effects once its state change is persisted, each as a call through
// the Router (so the cluster can send them to another node):
//   1. synchronous side effects, in order; the first failure is the caller's answer
//      (the caller's own state change stays stored: it was durable before they ran);
//   2. the forward, whose reply (or failure) is the caller's answer;
//   3. asynchronous side effects, after the answer is settled, each retried with
//      exponential backoff up to a bound, every failure logged with who issued it.
// Asynchronous side effects, timers and publications were stored before the reply (the
// outbox: with the command's write for event-sourced and value entities, on their own for
// actions and replicated entities): each delivery carries the entry's id as its idempotency
// key, and the entry is deleted once delivered (or given up). A timer waits for its due time
// and, before it fires, checks that this node still serves its shard and that it was not
// cancelled or replaced meanwhile. A publication is appended to its topic instead of called.
// Entries this process is not delivering — left by a crashed process, or by the previous
// owner of a shard — are picked up by `redeliver`, which the node runs at start and then
// periodically.
import { isKeystateError } from "../errors.js";
import type { ServiceCall } from "../abi/abi-codec.js";
import type { Outbox, OutboxEntry, TopicMessage } from "../journal/types.js";
import { log } from "../log.js";
import type { CommandEffects } from "./effects.js";

/** One call through the Router, `hops` effects deep, with the idempotency key of an outbox delivery. */
export type EffectCall = (service: string, method: string, payload: Uint8Array, hops: number, idempotencyKey?: string) => Promise<Uint8Array>;

/** Who issued the effects, for logs. */
export interface EffectOrigin {
  readonly module: string;
  readonly service: string;
  readonly method: string;
  readonly entityKey?: string;
}

export interface RetryPolicy {
  /** Attempts in all, the first included. */
  readonly attempts: number;
  /** Delay before the first retry; doubled after each. */
  readonly initialDelayMs: number;
  readonly maxDelayMs: number;
}

/** About 20 s of retries: long enough to ride out a redeploy, short enough to give up on a target that is gone. */
export const DEFAULT_SIDE_EFFECT_RETRY: RetryPolicy = { attempts: 8, initialDelayMs: 200, maxDelayMs: 5_000 };

/** Stored entries younger than this are left to the process that stored them (it is delivering them now). */
export const REDELIVER_AFTER_MS = 5_000;
/** Entries read per shard per redelivery pass (timers waiting for their time included). */
const REDELIVER_BATCH = 10_000;
/**
 * Timers due further ahead than this are not held in memory: a later redelivery pass (every
 * REDELIVER_AFTER_MS) schedules them once they come this close.
 */
export const TIMER_HORIZON_MS = 60_000;

/** What the runner needs besides the call: where entries are stored, how to publish, which shards are this node's. */
export interface EffectRunnerOptions {
  readonly outbox?: Outbox;
  /** Appends a stored publication to its topic. */
  readonly publish?: (topic: string, message: Omit<TopicMessage, "offset">) => Promise<unknown>;
  /** True when this node serves `shard` now (a cluster); absent: every shard is this node's. */
  readonly serves?: (shard: number) => boolean;
  /** Told of each timer as it fires, with how late it is (ms after its due time). */
  readonly onTimerFired?: (latenessMs: number) => void;
}
/** A stored entry whose retries were all spent waits this long before a redelivery pass tries it again. */
export const PARKED_MS = 60_000;

/** One asynchronous side effect to deliver: from a command just now, or read back from an outbox. */
interface Delivery {
  readonly call: ServiceCall;
  readonly hops: number;
  readonly origin: EffectOrigin;
  /** Stored ones: the entry (its id is the idempotency key) and its shard. */
  readonly stored?: { readonly entry: OutboxEntry; readonly shard: number };
}

export class EffectRunner {
  readonly #call: EffectCall;
  readonly #policy: RetryPolicy;
  readonly #outbox: Outbox | undefined;
  readonly #options: EffectRunnerOptions;
  readonly #timers = new Set<NodeJS.Timeout>();
  /** Passes run so far: the first (a fresh process) takes every entry, however new. */
  #passes = 0;
  /** Ids of stored entries this process is delivering (redelivery skips them). */
  readonly #inFlight = new Set<string>();
  /** Stored entries whose retries were spent, and until when redelivery leaves them alone. */
  readonly #parked = new Map<string, number>();
  #closed = false;

  constructor(call: EffectCall, policy: RetryPolicy = DEFAULT_SIDE_EFFECT_RETRY, options: EffectRunnerOptions = {}) {
    this.#call = call;
    this.#policy = policy;
    this.#outbox = options.outbox;
    this.#options = options;
  }

  /** Asynchronous side effects and timers scheduled and not yet done (for tests and metrics). */
  get pending(): number {
    return this.#timers.size;
  }

  /**
   * Runs `effects` of a command whose own reply is `reply`, issued at depth `hops`; returns
   * the caller's answer. `shard`: where the command's entity (and so its outbox) lives.
   */
  async complete(reply: Uint8Array, effects: CommandEffects, origin: EffectOrigin, hops: number, shard = 0): Promise<Uint8Array> {
    try {
      for (const call of effects.synchronous) await this.#call(call.service, call.method, call.payload, hops + 1);
      const forward = effects.forward;
      return forward ? await this.#call(forward.service, forward.method, forward.payload, hops + 1) : reply;
    } finally {
      // The state change that asked for them is stored whatever the answer is.
      const stored = effects.stored;
      if (stored !== undefined && stored.length > 0 && this.#outbox !== undefined) {
        for (const entry of stored) this.#start({ call: entry, hops: entry.hops, origin, stored: { entry, shard } });
      } else {
        for (const call of effects.asynchronous) this.#start({ call, hops: hops + 1, origin });
      }
    }
  }

  /**
   * Delivers the stored entries of `shards` that nobody in this process is delivering and
   * that are older than REDELIVER_AFTER_MS (a crashed process's, or a former owner's).
   * Resolves with how many were started.
   */
  async redeliver(shards: Iterable<number>, now = Date.now()): Promise<number> {
    const outbox = this.#outbox;
    if (outbox === undefined || this.#closed) return 0;
    // A fresh process delivers nothing yet: whatever is stored was left by an earlier one.
    const anyAge = this.#passes++ === 0;
    let started = 0;
    for (const shard of shards) {
      for (const entry of await outbox.pending(shard, REDELIVER_BATCH)) {
        if (this.#inFlight.has(entry.id)) continue;
        if (!anyAge && now - entry.createdAt < REDELIVER_AFTER_MS) continue;
        if (entry.dueAt !== undefined && entry.dueAt - now > TIMER_HORIZON_MS) continue;
        const parkedUntil = this.#parked.get(entry.id);
        if (parkedUntil !== undefined && now < parkedUntil) continue;
        this.#parked.delete(entry.id);
        const origin = { module: "(outbox)", service: entry.service, method: entry.method };
        this.#start({ call: entry, hops: entry.hops, origin, stored: { entry, shard } });
        started++;
      }
    }
    if (started > 0) log().info({ started }, "stored asynchronous side effects and timers picked up");
    return started;
  }

  /** Stops retrying: nothing scheduled runs after this (stored entries stay for the next process). */
  close(): void {
    this.#closed = true;
    for (const timer of this.#timers) clearTimeout(timer);
    this.#timers.clear();
    this.#inFlight.clear();
  }

  #start(delivery: Delivery): void {
    const entry = delivery.stored?.entry;
    if (entry === undefined) return this.#schedule(delivery, 1, 0);
    const delayMs = entry.dueAt === undefined ? 0 : Math.max(0, entry.dueAt - Date.now());
    // Far-off timers stay stored only; a redelivery pass brings them in when they come close.
    if (delayMs > TIMER_HORIZON_MS) return;
    this.#inFlight.add(entry.id);
    this.#schedule(delivery, 1, delayMs);
  }

  #schedule(delivery: Delivery, attempt: number, delayMs: number): void {
    if (this.#closed) return;
    // setTimeout (even at 0 ms) runs after the caller's reply has been handed back.
    const timer = setTimeout(() => {
      this.#timers.delete(timer);
      void this.#attempt(delivery, attempt);
    }, delayMs);
    timer.unref();
    this.#timers.add(timer);
  }

  async #attempt(delivery: Delivery, attempt: number): Promise<void> {
    const { call, hops, origin, stored } = delivery;
    try {
      if (stored?.entry.dueAt !== undefined && attempt === 1 && !(await this.#timerStillDue(stored.entry, stored.shard))) {
        this.#inFlight.delete(stored.entry.id);
        return;
      }
      const publish = stored?.entry.publish;
      if (publish !== undefined) await this.#publish(stored!.entry, publish);
      else await this.#call(call.service, call.method, call.payload, hops, stored?.entry.id);
      await this.#finished(delivery);
    } catch (err) {
      const target = stored?.entry.publish ? `topic ${stored.entry.publish.topic}` : `${call.service}/${call.method}`;
      const context = { ...origin, target, attempt, idempotencyKey: stored?.entry.id, err };
      // A loop never ends by retrying it.
      const final = attempt >= this.#policy.attempts || isKeystateError(err, "EFFECT_LOOP");
      if (final) {
        if (stored !== undefined && !isKeystateError(err, "EFFECT_LOOP")) {
          // Promised and stored: never dropped. It stays in the outbox and is tried again later.
          log().error({ ...context, retryAfterMs: PARKED_MS }, "asynchronous side effect failed every retry; it stays stored and is tried again later");
          this.#parked.set(stored.entry.id, Date.now() + PARKED_MS);
          this.#inFlight.delete(stored.entry.id);
          return;
        }
        log().error(context, "asynchronous side effect failed; giving up");
        await this.#finished(delivery);
        return;
      }
      const delayMs = Math.min(this.#policy.initialDelayMs * 2 ** (attempt - 1), this.#policy.maxDelayMs);
      log().warn({ ...context, retryInMs: delayMs }, "asynchronous side effect failed; retrying");
      this.#schedule(delivery, attempt + 1, delayMs);
    }
  }

  /**
   * A timer about to fire: false (and it does not fire here) when this node no longer serves
   * its shard (the owner fires it) or it was cancelled or replaced since it was scheduled.
   */
  async #timerStillDue(entry: OutboxEntry, shard: number): Promise<boolean> {
    if (this.#options.serves !== undefined && !this.#options.serves(shard)) return false;
    if (!(await this.#outbox!.holds(shard, entry))) return false;
    const latenessMs = Date.now() - entry.dueAt!;
    this.#options.onTimerFired?.(latenessMs);
    log().debug({ timer: entry.id, target: `${entry.service}/${entry.method}`, latenessMs }, "timer fired");
    return true;
  }

  async #publish(entry: OutboxEntry, target: NonNullable<OutboxEntry["publish"]>): Promise<void> {
    const publish = this.#options.publish;
    if (publish === undefined) throw new Error("this node has no topic store to publish to");
    const { topic, type, partitionKey, source } = target;
    await publish(topic, { id: entry.id, source, type, time: entry.createdAt, partitionKey, payload: entry.payload });
  }

  /** Delivered, or a loop cut off: a stored entry leaves the outbox (if that fails, a redelivery repeats it under the same key). */
  async #finished(delivery: Delivery): Promise<void> {
    const stored = delivery.stored;
    if (stored === undefined) return;
    try {
      await this.#outbox?.done(stored.shard, stored.entry);
    } catch (err) {
      log().warn({ err, idempotencyKey: stored.entry.id }, "a delivered side effect could not be removed from the outbox; it may be delivered again (same idempotency key)");
    } finally {
      this.#inFlight.delete(stored.entry.id);
    }
  }
}
