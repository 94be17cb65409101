// One topic subscription's consumer: reads a batch, hands each message to the subscriber's
// method, and acknowledges it once the handler succeeded. Messages with one partition key
// are handled strictly in order, one after the other; different keys of a batch run at once.
// A failing message is retried with backoff and, after the subscription's attempts, moved to
// the dead-letter log so the messages behind it proceed. Nothing is acknowledged before it
// is handled or dead-lettered, so a crash loses nothing: the next consumer starts with what
// this one left pending (at least once, never skipped).
import type { CallMetadata } from "../abi/abi-codec.js";
import { KeystateError } from "../errors.js";
import type { TopicConsumer, TopicDelivery, Topics } from "../journal/types.js";
import { log } from "../log.js";
import { backoffMs, sleep } from "./backoff.js";
import { topicMessageMetadata } from "./cloud-events.js";
import type { SubscriptionObserver } from "./subscription-metrics.js";

/** A topic subscription as the runner starts it (maxAttempts resolved). */
export interface ActiveSubscription {
  /** Durable name: consumer group, offsets, dead-letter log (subscriptionId()). */
  readonly id: string;
  readonly module: string;
  readonly topic: string;
  readonly service: string;
  readonly method: string;
  readonly maxAttempts: number;
  readonly fromStart: boolean;
}

/** Calls the subscriber's method with one message (the Router, for a node). */
export type DeliverMessage = (service: string, method: string, payload: Uint8Array, options: { readonly idempotencyKey: string; readonly metadata: CallMetadata }) => Promise<unknown>;

export interface LoopTimings {
  /** Messages per read. */
  readonly batch: number;
  /** How long a read waits for new messages before the loop looks around (stop, stale claims). */
  readonly blockMs: number;
  /** First retry delay of a failed delivery; doubles per try up to maxRetryDelayMs. */
  readonly retryDelayMs: number;
  readonly maxRetryDelayMs: number;
  /** Other consumers' messages unacknowledged this long are taken over (a former owner that died after a hand-off). */
  readonly staleAfterMs: number;
}

export const DEFAULT_LOOP_TIMINGS: LoopTimings = { batch: 100, blockMs: 2000, retryDelayMs: 100, maxRetryDelayMs: 5000, staleAfterMs: 30_000 };

const MAX_REASON_CHARS = 1000;

/** A stopped loop waits this long for handlers in flight before it lets go (they still ack if they finish later). */
const STOP_WAIT_MS = 5000;

export interface LoopDeps {
  readonly topics: Topics;
  /** This process's consumer name (the node id): what its pending messages are filed under. */
  readonly consumer: string;
  readonly deliver: DeliverMessage;
  readonly observer: SubscriptionObserver;
  readonly timings: LoopTimings;
}

export class SubscriptionLoop {
  readonly #sub: ActiveSubscription;
  readonly #deps: LoopDeps;
  #consumer: TopicConsumer | undefined;
  #stopped = false;
  /** Wakes a retry delay early when the loop stops. */
  readonly #stopping = new AbortController();
  #running: Promise<void> | undefined;

  constructor(subscription: ActiveSubscription, deps: LoopDeps) {
    this.#sub = subscription;
    this.#deps = deps;
  }

  get subscription(): ActiveSubscription {
    return this.#sub;
  }

  start(): void {
    this.#running ??= this.#run();
  }

  /** Stops reading; handlers in flight get STOP_WAIT_MS to finish (their messages stay pending otherwise). */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.#stopping.abort();
    await this.#consumer?.close();
    if (this.#running) await Promise.race([this.#running, sleep(STOP_WAIT_MS)]);
  }

  async #run(): Promise<void> {
    const { timings } = this.#deps;
    let failures = 0;
    // Pending messages exist at start (a restart, a takeover) and after anything went wrong.
    let mayHavePending = true;
    let nextStaleClaim = performance.now() + timings.staleAfterMs;
    while (!this.#stopped) {
      try {
        if (this.#consumer === undefined) {
          this.#consumer = await this.#join();
          mayHavePending = true;
        } else if (performance.now() >= nextStaleClaim) {
          nextStaleClaim = performance.now() + timings.staleAfterMs;
          if ((await this.#consumer.claim(timings.staleAfterMs)) > 0) mayHavePending = true;
        }
        let batch = mayHavePending ? await this.#consumer.pending(timings.batch) : [];
        if (batch.length === 0) {
          mayHavePending = false;
          batch = await this.#consumer.next(timings.batch, timings.blockMs);
        }
        if (batch.length > 0) {
          mayHavePending = true;
          if (await this.#handleBatch(this.#consumer, batch)) mayHavePending = false;
        }
        failures = 0;
      } catch (err) {
        if (this.#stopped) break;
        failures++;
        // Storage trouble (Redis away, the group deleted): start over with a fresh consumer after a pause.
        if (failures === 1 || failures % 30 === 0) log().warn({ err, subscription: this.#sub.id, topic: this.#sub.topic, failures }, "topic subscription cannot read; retrying");
        const consumer = this.#consumer;
        this.#consumer = undefined;
        await consumer?.close().catch(() => undefined);
        await sleep(backoffMs(failures, 500, timings.maxRetryDelayMs), this.#stopping.signal);
      }
    }
    await this.#consumer?.close().catch(() => undefined);
  }

  /** Joins the subscription and takes over what other consumers left unacknowledged (a former owner's, a crashed process's). */
  async #join(): Promise<TopicConsumer> {
    const { topic, id, fromStart } = this.#sub;
    const consumer = await this.#deps.topics.consume(topic, id, this.#deps.consumer, { fromStart });
    try {
      const claimed = await consumer.claim(0);
      if (claimed > 0) log().info({ subscription: id, topic, claimed }, "topic subscription took over unacknowledged messages");
      return consumer;
    } catch (err) {
      await consumer.close();
      throw err;
    }
  }

  /** Resolves true when every message of the batch was acknowledged or dead-lettered. */
  async #handleBatch(consumer: TopicConsumer, batch: readonly TopicDelivery[]): Promise<boolean> {
    const byKey = new Map<string, TopicDelivery[]>();
    for (const message of batch) {
      const list = byKey.get(message.partitionKey);
      if (list) list.push(message);
      else byKey.set(message.partitionKey, [message]);
    }
    // Every key runs to its end before the loop reads again, also when one failed to acknowledge:
    // a re-read while a handler still ran would hand its key's messages out twice at once.
    const settled = await Promise.allSettled([...byKey.values()].map((messages) => this.#inOrder(consumer, messages)));
    const failed = settled.find((outcome) => outcome.status === "rejected");
    if (failed) throw failed.reason;
    return settled.every((outcome) => outcome.status === "fulfilled" && outcome.value);
  }

  /** One partition key's messages, each settled before the next starts. */
  async #inOrder(consumer: TopicConsumer, messages: readonly TopicDelivery[]): Promise<boolean> {
    for (const message of messages) {
      if (!(await this.#settle(consumer, message))) return false;
    }
    return true;
  }

  /**
   * Delivers `message` until it is handled (then acknowledged) or its attempts are spent (then
   * dead-lettered). Resolves false when the loop stopped first: the message stays pending.
   */
  async #settle(consumer: TopicConsumer, message: TopicDelivery): Promise<boolean> {
    const { id: subscription, service, method, maxAttempts, topic } = this.#sub;
    const { deliver, observer, timings } = this.#deps;
    // Earlier deliveries (a process that died with the message in hand) count as tries; this
    // process always tries at least once before it gives up on a message.
    let attempt = message.deliveries;
    let transient = 0;
    const options = { idempotencyKey: idempotencyKeyOf(message.id, method), metadata: topicMessageMetadata(message) };
    for (;;) {
      if (this.#stopped) return false;
      const started = performance.now();
      let failure: unknown;
      try {
        await deliver(service, method, message.payload, options);
      } catch (err) {
        failure = err ?? new Error("the handler failed");
      }
      if (failure === undefined) {
        observer.handled(subscription, message, (performance.now() - started) / 1000);
        await consumer.ack([message.offset]);
        return true;
      }
      observer.failed(subscription);
      if (isTransient(failure)) {
        // The subscriber could not be reached (a shard moving, storage away, a deploy in
        // progress): no fault of the message, so not one of its attempts.
        transient++;
        if (transient === 1 || transient % 20 === 0) log().warn({ err: failure, subscription, topic, messageId: message.id, tries: transient }, "topic message could not be delivered; retrying");
        await sleep(backoffMs(transient, timings.retryDelayMs, timings.maxRetryDelayMs), this.#stopping.signal);
        continue;
      }
      // Kept with the dead letter and logged: bounded, whatever the guest put in its failure.
      const reason = (failure instanceof Error ? failure.message : String(failure)).slice(0, MAX_REASON_CHARS);
      if (attempt >= maxAttempts) {
        await consumer.deadLetter(message, reason, attempt);
        observer.deadLettered(subscription);
        log().warn({ subscription, topic, messageId: message.id, offset: message.offset, partitionKey: message.partitionKey, attempts: attempt, reason }, "topic message dead-lettered");
        return true;
      }
      log().info({ subscription, topic, messageId: message.id, attempt, maxAttempts, reason }, "topic message handler failed; retrying");
      await sleep(backoffMs(attempt, timings.retryDelayMs, timings.maxRetryDelayMs), this.#stopping.signal);
      attempt++;
    }
  }
}

/**
 * The message's CloudEvents id, made specific to the method: an entity that subscribes two
 * of its methods to one topic applies a message once per method, not once in all.
 */
export function idempotencyKeyOf(messageId: string, method: string): string {
  return `${messageId}>${method}`;
}

/** Failures that say nothing about the message: the subscriber was unreachable or its module is changing. */
function isTransient(err: unknown): boolean {
  return err instanceof KeystateError && (err.retryable || err.code === "UNKNOWN_METHOD");
}
