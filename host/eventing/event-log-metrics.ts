// The Prometheus series of event-log subscriptions, per subscription id: events delivered,
// events skipped (no method of the subscriber takes their type), entities parked now, and
// lag (age of the oldest append a pass found unhandled), the last two over this node's shards.
import { Counter, Gauge, type Registry } from "prom-client";

/** What the gauges read when scraped, per subscription. */
export interface SubscriptionState {
  readonly lagSeconds: number;
  readonly parked: number;
}

export class EventLogMetrics {
  readonly #delivered: Counter<"subscription">;
  readonly #skipped: Counter<"subscription">;

  constructor(registry: Registry | undefined, state: () => ReadonlyMap<string, SubscriptionState>) {
    const registers = registry ? [registry] : [];
    const labelNames = ["subscription"] as const;
    this.#delivered = new Counter({ name: "keystate_event_log_events_delivered_total", help: "Events an event-log subscription's handler took, by subscription", labelNames, registers });
    this.#skipped = new Counter({ name: "keystate_event_log_events_skipped_total", help: "Events no method of the subscriber takes (their offset still advances), by subscription", labelNames, registers });
    const gauge = (name: string, help: string, read: (s: SubscriptionState) => number) =>
      new Gauge({
        name,
        help,
        labelNames,
        registers,
        collect() {
          this.reset();
          for (const [subscription, now] of state()) this.set({ subscription }, read(now));
        },
      });
    gauge("keystate_event_log_lag_seconds", "Age of the oldest journal append an event-log subscription has not handled yet, on this node's shards (0: caught up)", (s) => s.lagSeconds);
    gauge("keystate_event_log_parked_entities", "Entities whose delivery failed every attempt and waits for a retry (their events are not skipped), on this node's shards", (s) => s.parked);
  }

  delivered(subscription: string): void {
    this.#delivered.inc({ subscription });
  }

  skipped(subscription: string): void {
    this.#skipped.inc({ subscription });
  }
}
