// Prometheus metrics of one node (prom-client, served at GET /metrics). Each node owns its
// own Registry, so two nodes in one test process never mix their counts. The ingress edges
// time every call; the entity layer reports through the small EntityObserver hook.
import { status as GrpcStatus } from "@grpc/grpc-js";
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from "prom-client";

export type Ingress = "grpc" | "http";

/** What the entity layer may report; every method is cheap and never throws. */
export interface EntityObserver {
  /** An entity was loaded into memory (first command, or after passivation). */
  activated(service: string): void;
  /** An idle entity was dropped from memory (timeout or memory budget). */
  passivated(service: string): void;
  /** A journal append was durable after `seconds`, writing `events` events (one mailbox batch). */
  journalAppended(persistenceId: string, seconds: number, events: number): void;
}

/** What a guest command reports when it returns or traps. */
export interface GuestObserver {
  /** `fuel`: units the call used (undefined for a module built without the fuel counter). */
  guestCall(service: string, seconds: number, fuel?: number): void;
}

/** Latency buckets in seconds: sub-millisecond in-memory calls up to multi-second cold starts. */
const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
/** Guest calls are synchronous and usually take microseconds; the fuel limit stops them at tens of ms. */
const GUEST_BUCKETS = [0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1];
/** Events per append: one command's events up to a full mailbox batch (256 commands). */
const BATCH_BUCKETS = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024];

export class Metrics {
  readonly registry = new Registry();
  readonly #calls: Counter<"service" | "method" | "ingress">;
  readonly #failures: Counter<"service" | "method" | "ingress" | "status">;
  readonly #latency: Histogram<"service" | "method" | "ingress">;
  readonly #activations: Counter<"service">;
  readonly #passivations: Counter<"service">;
  readonly #deploys: Counter<"result">;
  readonly #appendLatency: Histogram<"persistence_id">;
  readonly #appendEvents: Histogram<"persistence_id">;
  readonly #guestTime: Histogram<"service">;
  readonly #guestFuel: Counter<"service">;
  #modulesSource: () => number = () => 0;
  #entitiesSource: () => number = () => 0;

  constructor(options: { processMetrics?: boolean } = {}) {
    const registers = [this.registry];
    this.#calls = new Counter({ name: "keystate_calls_total", help: "Calls received, by service, method and ingress (grpc or http)", labelNames: ["service", "method", "ingress"], registers });
    this.#failures = new Counter({
      name: "keystate_call_failures_total",
      help: "Calls that ended with a non-OK gRPC status, by status name",
      labelNames: ["service", "method", "ingress", "status"],
      registers,
    });
    this.#latency = new Histogram({
      name: "keystate_call_duration_seconds",
      help: "Time from receiving a call to sending its reply",
      labelNames: ["service", "method", "ingress"],
      buckets: LATENCY_BUCKETS,
      registers,
    });
    this.#activations = new Counter({ name: "keystate_entity_activations_total", help: "Entities loaded into memory, by service", labelNames: ["service"], registers });
    this.#passivations = new Counter({ name: "keystate_entity_passivations_total", help: "Idle entities dropped from memory, by service", labelNames: ["service"], registers });
    this.#appendLatency = new Histogram({
      name: "keystate_journal_append_duration_seconds",
      help: "Time until a journal append is durable, by persistence id (entity type)",
      labelNames: ["persistence_id"],
      buckets: LATENCY_BUCKETS,
      registers,
    });
    this.#appendEvents = new Histogram({
      name: "keystate_journal_append_events",
      help: "Events written per journal append (group commit of one mailbox batch), by persistence id",
      labelNames: ["persistence_id"],
      buckets: BATCH_BUCKETS,
      registers,
    });
    this.#guestTime = new Histogram({ name: "keystate_guest_call_duration_seconds", help: "Time inside the guest per command, by service", labelNames: ["service"], buckets: GUEST_BUCKETS, registers });
    this.#guestFuel = new Counter({ name: "keystate_guest_fuel_used_total", help: "Fuel units (function calls + loop iterations) guest commands used, by service", labelNames: ["service"], registers });
    this.#deploys = new Counter({ name: "keystate_module_deploys_total", help: "Module uploads through the admin API, by result (ok or the error status)", labelNames: ["result"], registers });
    // Gauges read the live value when scraped instead of being kept in step by hand.
    const sources = this;
    new Gauge({
      name: "keystate_modules_deployed",
      help: "Modules with an active version on this node",
      registers,
      collect() {
        this.set(sources.#modulesSource());
      },
    });
    new Gauge({
      name: "keystate_entities_active",
      help: "Entities currently held in memory on this node",
      registers,
      collect() {
        this.set(sources.#entitiesSource());
      },
    });
    if (options.processMetrics ?? true) collectDefaultMetrics({ register: this.registry });
  }

  /** Where the deployed-modules gauge reads its value (e.g. `() => registry.modules.length`). */
  countModulesWith(source: () => number): void {
    this.#modulesSource = source;
  }

  /** Where the active-entities gauge reads its value (e.g. `() => entities.activeCount`). */
  countEntitiesWith(source: () => number): void {
    this.#entitiesSource = source;
  }

  /** Starts timing a call; the returned function records its outcome (a gRPC status code) once. */
  startCall(service: string, method: string, ingress: Ingress): (code: GrpcStatus) => void {
    const labels = { service, method, ingress };
    this.#calls.inc(labels);
    // Timed by hand: prom-client's startTimer allocates an hrtime pair and copies the labels per call.
    const started = performance.now();
    let done = false;
    return (code) => {
      if (done) return;
      done = true;
      this.#latency.observe(labels, (performance.now() - started) / 1000);
      if (code !== GrpcStatus.OK) this.#failures.inc({ ...labels, status: GrpcStatus[code] ?? "UNKNOWN" });
    };
  }

  deployed(result: "ok" | string): void {
    this.#deploys.inc({ result });
  }

  /** The hook the entity layer calls (pass it to the entity manager). */
  readonly entities: EntityObserver = {
    activated: (service) => this.#activations.inc({ service }),
    passivated: (service) => this.#passivations.inc({ service }),
    journalAppended: (persistenceId, seconds, events) => {
      this.#appendLatency.observe({ persistence_id: persistenceId }, seconds);
      this.#appendEvents.observe({ persistence_id: persistenceId }, events);
    },
  };

  /** The hook guest commands report to (pass it to the module registry). */
  readonly guest: GuestObserver = {
    guestCall: (service, seconds, fuel) => {
      this.#guestTime.observe({ service }, seconds);
      if (fuel !== undefined) this.#guestFuel.inc({ service }, fuel);
    },
  };

  /** The exposition text and its content type, for GET /metrics. */
  async scrape(): Promise<{ contentType: string; text: string }> {
    return { contentType: this.registry.contentType, text: await this.registry.metrics() };
  }
}
