// Runs a command's effects once its state change is persisted, each as a call through
// the Router (so the cluster can later send them to another node):
//   1. synchronous side effects, in order; the first failure is the caller's answer
//      (the caller's own state change stays stored: it was durable before they ran);
//   2. the forward, whose reply (or failure) is the caller's answer;
//   3. asynchronous side effects, after the answer is settled, each retried with
//      exponential backoff up to a bound, every failure logged with who issued it.
import { isKeystateError } from "../errors.js";
import type { ServiceCall } from "../abi/abi-codec.js";
import { log } from "../log.js";
import type { CommandEffects } from "./effects.js";

/** One call through the Router, `hops` effects deep. */
export type EffectCall = (service: string, method: string, payload: Uint8Array, hops: number) => Promise<Uint8Array>;

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

export class EffectRunner {
  readonly #call: EffectCall;
  readonly #policy: RetryPolicy;
  readonly #timers = new Set<NodeJS.Timeout>();
  #closed = false;

  constructor(call: EffectCall, policy: RetryPolicy = DEFAULT_SIDE_EFFECT_RETRY) {
    this.#call = call;
    this.#policy = policy;
  }

  /** Asynchronous side effects scheduled and not yet done (for tests and metrics). */
  get pending(): number {
    return this.#timers.size;
  }

  /** Runs `effects` of a command whose own reply is `reply`, issued at depth `hops`; returns the caller's answer. */
  async complete(reply: Uint8Array, effects: CommandEffects, origin: EffectOrigin, hops: number): Promise<Uint8Array> {
    try {
      for (const call of effects.synchronous) await this.#call(call.service, call.method, call.payload, hops + 1);
      const forward = effects.forward;
      return forward ? await this.#call(forward.service, forward.method, forward.payload, hops + 1) : reply;
    } finally {
      // The state change that asked for them is stored whatever the answer is.
      for (const call of effects.asynchronous) this.#schedule(call, origin, hops + 1, 1, 0);
    }
  }

  /** Stops retrying: nothing scheduled runs after this. */
  close(): void {
    this.#closed = true;
    for (const timer of this.#timers) clearTimeout(timer);
    this.#timers.clear();
  }

  #schedule(call: ServiceCall, origin: EffectOrigin, hops: number, attempt: number, delayMs: number): void {
    if (this.#closed) return;
    // setTimeout (even at 0 ms) runs after the caller's reply has been handed back.
    const timer = setTimeout(() => {
      this.#timers.delete(timer);
      void this.#attempt(call, origin, hops, attempt);
    }, delayMs);
    timer.unref();
    this.#timers.add(timer);
  }

  async #attempt(call: ServiceCall, origin: EffectOrigin, hops: number, attempt: number): Promise<void> {
    try {
      await this.#call(call.service, call.method, call.payload, hops);
    } catch (err) {
      const context = { ...origin, target: `${call.service}/${call.method}`, attempt, err };
      // A loop never ends by retrying it.
      const final = attempt >= this.#policy.attempts || isKeystateError(err, "EFFECT_LOOP");
      if (final) {
        log().error(context, "asynchronous side effect failed; giving up");
        return;
      }
      const delayMs = Math.min(this.#policy.initialDelayMs * 2 ** (attempt - 1), this.#policy.maxDelayMs);
      log().warn({ ...context, retryInMs: delayMs }, "asynchronous side effect failed; retrying");
      this.#schedule(call, origin, hops, attempt + 1, delayMs);
    }
  }
}
