// Delivers one journaled event to an event-log subscription's service: to the method whose
// input type is the event's type (an event no method takes is skipped), through the Router,
// under an idempotency key that names the event, so a redelivery (after a crash before the
// offset was stored) is answered from the stored reply where the handler stored one, and the
// effects the handler issues get the same ids again. Failures are retried with backoff up to
// the subscription's maxAttempts; then the caller parks the entity (never skips the event).
import type { CallMetadata } from "../abi/abi-codec.js";
import { backoffMs } from "./backoff.js";
import type { CallOptions } from "../entities/router.js";
import type { ServiceRuntime } from "../entities/service-runtime.js";
import { KeystateError } from "../errors.js";
import { cloudEventMetadata } from "./cloud-events.js";
import type { StoredEvent } from "../journal/types.js";
import { log } from "../log.js";

/** What delivers a call (the Router). */
export type SubscriberCall = (service: string, method: string, payload: Uint8Array, options: CallOptions) => Promise<Uint8Array>;

/** The subscription as the runner knows it now (a redeploy of its module may change maxAttempts). */
export interface EventLogSubscription {
  /** subscriptionId(): stable across versions of the module. */
  readonly id: string;
  readonly moduleName: string;
  readonly persistenceId: string;
  readonly service: string;
  readonly maxAttempts: number;
  readonly fromStart: boolean;
}

export interface Delivery {
  readonly subscription: EventLogSubscription;
  readonly key: string;
  readonly event: StoredEvent;
  /** When the event was journaled (ms since the epoch), when known. */
  readonly time?: number;
}

export type Outcome = "delivered" | "skipped" | "failed" | "stopped";

/** Backoff before retry n (1-based): about 100 ms, doubling, at most 5 s. */
export function retryDelayMs(attempt: number): number {
  return backoffMs(attempt, 100, 5_000);
}

/** The idempotency key (and CloudEvents id) of an event's delivery: `<pid>/<key>@<seq>`. */
export function eventId(persistenceId: string, key: string, seq: number): string {
  return `${persistenceId}/${key}@${seq}`;
}

export class EventDeliverer {
  /** Per deployed service version: event type -> the method taking it (null: none does). */
  readonly #methods = new WeakMap<ServiceRuntime, Map<string, string | null>>();

  constructor(
    private readonly call: SubscriberCall,
    private readonly service: (name: string) => ServiceRuntime | undefined,
    /** True once the delivery must stop waiting (the node stops, the shard moved). */
    private readonly sleep: (ms: number) => Promise<boolean>,
  ) {}

  /** Delivers with retries; "failed" once maxAttempts tries failed, "stopped" when told to stop meanwhile. */
  async deliver(delivery: Delivery, stopped: () => boolean): Promise<Outcome> {
    const { subscription, key, event } = delivery;
    for (let attempt = 1; ; attempt++) {
      if (stopped()) return "stopped";
      try {
        const method = this.#methodFor(subscription.service, event.type);
        if (method === null) return "skipped";
        const idempotencyKey = eventId(subscription.persistenceId, key, event.seq);
        await this.call(subscription.service, method, event.payload, { hops: 1, idempotencyKey, metadata: metadataOf(delivery, idempotencyKey) });
        return "delivered";
      } catch (err) {
        const context = { subscription: subscription.id, entityKey: key, seq: event.seq, eventType: event.type, attempt, err };
        if (attempt >= subscription.maxAttempts) {
          log().error({ ...context, maxAttempts: subscription.maxAttempts }, "event-log subscription: delivery failed every attempt; the entity's events wait (parked) and are retried later");
          return "failed";
        }
        const delayMs = retryDelayMs(attempt);
        log().warn({ ...context, retryInMs: delayMs }, "event-log subscription: delivery failed; retrying");
        if (await this.sleep(delayMs)) return "stopped";
      }
    }
  }

  /** The method of `serviceName` taking `eventType`; throws (retried) while the service is not served here. */
  #methodFor(serviceName: string, eventType: string): string | null {
    const service = this.service(serviceName);
    if (!service) throw new KeystateError("UNKNOWN_METHOD", `the subscriber ${serviceName} is not deployed on this node (yet)`);
    let byType = this.#methods.get(service);
    if (!byType) this.#methods.set(service, (byType = new Map()));
    let method = byType.get(eventType);
    if (method === undefined) {
      method = null;
      for (const candidate of service.methods.values()) {
        if (candidate.inputType === eventType && !candidate.clientStreaming && !candidate.serverStreaming) {
          method = candidate.name;
          break;
        }
      }
      byType.set(eventType, method);
    }
    return method;
  }
}

/** The CloudEvents attributes of a delivery; `time` is unknown for a parked entity's retry (it reads the journal, not the feed). */
function metadataOf({ subscription, key, event, time }: Delivery, id: string): CallMetadata {
  return cloudEventMetadata({ id, source: subscription.persistenceId, type: event.type, time, subject: key, sequence: event.seq });
}
