// What topic subscriptions report: messages handled and dead-lettered, failed tries, and
// how long handlers take, per subscription (its durable id). prom-client series on the
// node's registry; a subscription handles far fewer messages per second than ingress
// takes calls, so the plain prom-client metrics are cheap enough here.
import { Counter, Histogram, type Registry } from "prom-client";
import type { TopicMessage } from "../journal/types.js";

/** Told of every outcome of a delivery; cheap, never throws. */
export interface SubscriptionObserver {
  /** The handler succeeded in `seconds` (the message is acknowledged next). */
  handled(subscription: string, message: TopicMessage, seconds: number): void;
  /** One try failed (it is retried, or dead-lettered when it was the last). */
  failed(subscription: string): void;
  deadLettered(subscription: string): void;
}

const HANDLER_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

export class SubscriptionMetrics implements SubscriptionObserver {
  readonly #handled: Counter<"subscription">;
  readonly #failed: Counter<"subscription">;
  readonly #deadLettered: Counter<"subscription">;
  readonly #latency: Histogram<"subscription">;

  constructor(registry: Registry) {
    const registers = [registry];
    const labelNames = ["subscription"] as const;
    this.#handled = new Counter({ name: "keystate_topic_messages_handled_total", help: "Topic messages a subscription's handler took, by subscription", labelNames, registers });
    this.#failed = new Counter({ name: "keystate_topic_delivery_failures_total", help: "Failed tries to deliver a topic message, by subscription", labelNames, registers });
    this.#deadLettered = new Counter({ name: "keystate_topic_messages_dead_lettered_total", help: "Topic messages given up after the subscription's attempts, by subscription", labelNames, registers });
    this.#latency = new Histogram({ name: "keystate_topic_handler_duration_seconds", help: "Time a subscription's handler took for a message (successful tries)", labelNames, buckets: HANDLER_BUCKETS, registers });
  }

  handled(subscription: string, _message: TopicMessage, seconds: number): void {
    this.#handled.inc({ subscription });
    this.#latency.observe({ subscription }, seconds);
  }

  failed(subscription: string): void {
    this.#failed.inc({ subscription });
  }

  deadLettered(subscription: string): void {
    this.#deadLettered.inc({ subscription });
  }
}
