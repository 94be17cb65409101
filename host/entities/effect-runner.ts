// Runs a command's effects once its state change is persisted, each as a call through
// the Router (so the cluster can send them to another node):
//   1. synchronous side effects, in order; the first failure is the caller's answer
//      (the caller's own state change stays stored: it was durable before they ran);
//   2. the forward, whose reply (or failure) is the caller's answer;
//   3. asynchronous side effects, after the answer is settled, each retried with
//      exponential backoff up to a bound, every failure logged with who issued it.
// Asynchronous side effects of event-sourced and value entities were stored with the
// command's write (the outbox): each delivery carries the entry's id as its idempotency key,
// and the entry is deleted once delivered (or given up). Entries this process is not
// delivering — left by a crashed process, or by the previous owner of a shard — are picked
// up by `redeliver`, which the node runs at start and then periodically.
import { isKeystateError } from "../errors.js";
import type { ServiceCall } from "../abi/abi-codec.js";
import type { Outbox, OutboxEntry } from "../journal/types.js";
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
/** Entries read per shard per redelivery pass. */
const REDELIVER_BATCH = 500;
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
  readonly #timers = new Set<NodeJS.Timeout>();
  /** Ids of stored entries this process is delivering (redelivery skips them). */
  readonly #inFlight = new Set<string>();
  /** Stored entries whose retries were spent, and until when redelivery leaves them alone. */
  readonly #parked = new Map<string, number>();
  #closed = false;

  constructor(call: EffectCall, policy: RetryPolicy = DEFAULT_SIDE_EFFECT_RETRY, outbox?: Outbox) {
    this.#call = call;
    this.#policy = policy;
    this.#outbox = outbox;
  }

  /** Asynchronous side effects scheduled and not yet done (for tests and metrics). */
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
    let started = 0;
    for (const shard of shards) {
      for (const entry of await outbox.pending(shard, REDELIVER_BATCH)) {
        if (this.#inFlight.has(entry.id) || now - entry.createdAt < REDELIVER_AFTER_MS) continue;
        const parkedUntil = this.#parked.get(entry.id);
        if (parkedUntil !== undefined && now < parkedUntil) continue;
        this.#parked.delete(entry.id);
        const origin = { module: "(outbox)", service: entry.service, method: entry.method };
        this.#start({ call: entry, hops: entry.hops, origin, stored: { entry, shard } });
        started++;
      }
    }
    if (started > 0) log().info({ started }, "stored asynchronous side effects redelivered");
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
    if (delivery.stored !== undefined) this.#inFlight.add(delivery.stored.entry.id);
    this.#schedule(delivery, 1, 0);
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
      await this.#call(call.service, call.method, call.payload, hops, stored?.entry.id);
      await this.#finished(delivery);
    } catch (err) {
      const context = { ...origin, target: `${call.service}/${call.method}`, attempt, idempotencyKey: stored?.entry.id, err };
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

  /** Delivered, or a loop cut off: a stored entry leaves the outbox (if that fails, a redelivery repeats it under the same key). */
  async #finished(delivery: Delivery): Promise<void> {
    const stored = delivery.stored;
    if (stored === undefined) return;
    try {
      await this.#outbox?.done(stored.shard, stored.entry.id);
    } catch (err) {
      log().warn({ err, idempotencyKey: stored.entry.id }, "a delivered side effect could not be removed from the outbox; it may be delivered again (same idempotency key)");
    } finally {
      this.#inFlight.delete(stored.entry.id);
    }
  }
}
