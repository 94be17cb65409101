// Prometheus metrics of one node (prom-client, served at GET /metrics). Each node owns its
// own Registry, so two nodes in one test process never mix their counts. The ingress edges
// time every call; the entity layer reports through the small EntityObserver hook.
// What changes on every call or command is a HotCounter/HotHistogram series instead of a
// prom-client metric (see below), printed into the same exposition when scraped.
import { GrpcStatus, grpcStatusName } from "./grpc-http2/status.js";
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from "prom-client";
import { HotCounter, HotHistogram, type CounterSeries, type HistogramSeries } from "./hot-metrics.js";

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
  /** A durable timer fired `latenessMs` after its due time. */
  timerFired(latenessMs: number): void {
    this.#timerLateness.observe(Math.max(0, latenessMs) / 1000);
  }

  /** prom-client's metrics; the hot series below are not in it, so read the exposition through scrape(). */
  readonly registry = new Registry();
  readonly #calls: HotCounter;
  readonly #failures: Counter<"service" | "method" | "ingress" | "status">;
  readonly #latency: HotHistogram;
  readonly #activations: Counter<"service">;
  readonly #passivations: Counter<"service">;
  readonly #deploys: Counter<"result">;
  readonly #timerLateness: Histogram;
  readonly #appendLatency: HotHistogram;
  readonly #appendEvents: HotHistogram;
  readonly #guestTime: HotHistogram;
  readonly #guestFuel: HotCounter;
  /** Printed after the registry's metrics, in this order. */
  readonly #hot: (HotCounter | HotHistogram)[];
  #modulesSource: () => number = () => 0;
  #entitiesSource: () => number = () => 0;
  #parkedSource: () => number = () => 0;

  constructor(options: { processMetrics?: boolean } = {}) {
    const registers = [this.registry];
    const call = ["service", "method", "ingress"];
    this.#calls = new HotCounter("keystate_calls_total", "Calls received, by service, method and ingress (grpc or http)", call);
    this.#failures = new Counter({
      name: "keystate_call_failures_total",
      help: "Calls that ended with a non-OK gRPC status, by status name",
      labelNames: ["service", "method", "ingress", "status"],
      registers,
    });
    this.#latency = new HotHistogram("keystate_call_duration_seconds", "Time from receiving a call to sending its reply", call, LATENCY_BUCKETS);
    this.#activations = new Counter({ name: "keystate_entity_activations_total", help: "Entities loaded into memory, by service", labelNames: ["service"], registers });
    this.#passivations = new Counter({ name: "keystate_entity_passivations_total", help: "Idle entities dropped from memory, by service", labelNames: ["service"], registers });
    this.#appendLatency = new HotHistogram(
      "keystate_journal_append_duration_seconds",
      "Time until a journal append is durable, by persistence id (entity type)",
      ["persistence_id"],
      LATENCY_BUCKETS,
    );
    this.#appendEvents = new HotHistogram(
      "keystate_journal_append_events",
      "Events written per journal append (group commit of one mailbox batch), by persistence id",
      ["persistence_id"],
      BATCH_BUCKETS,
    );
    this.#guestTime = new HotHistogram("keystate_guest_call_duration_seconds", "Time inside the guest per command, by service", ["service"], GUEST_BUCKETS);
    this.#guestFuel = new HotCounter("keystate_guest_fuel_used_total", "Fuel units (function calls + loop iterations) guest commands used, by service", ["service"]);
    this.#hot = [this.#calls, this.#latency, this.#appendLatency, this.#appendEvents, this.#guestTime, this.#guestFuel];
    this.#timerLateness = new Histogram({
      name: "keystate_timer_lateness_seconds",
      help: "How long after its due time each durable timer fired",
      buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
      registers,
    });
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
    new Gauge({
      name: "keystate_entities_parked",
      help: "Entities held in memory in compact form (idle value and event-sourced entities; part of keystate_entities_active)",
      registers,
      collect() {
        this.set(sources.#parkedSource());
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

  /** Where the parked-entities gauge reads its value (`() => entities.parkedCount`). */
  countParkedWith(source: () => number): void {
    this.#parkedSource = source;
  }

  /**
   * The call metrics of one method on one ingress, with its series looked up once: the
   * unary gRPC handler of each method keeps one, so a call costs two additions and one
   * observation, not two label-key joins, two lookups and a closure.
   */
  callMeter(service: string, method: string, ingress: Ingress): CallMeter {
    return new CallMeter(this.#calls.series(service, method, ingress), this.#latency.series(service, method, ingress), this.#failures, { service, method, ingress });
  }

  /** Starts timing a call; the returned function records its outcome (a gRPC status code) once. */
  startCall(service: string, method: string, ingress: Ingress): (code: GrpcStatus) => void {
    const meter = this.callMeter(service, method, ingress);
    const started = meter.start();
    let done = false;
    return (code) => {
      if (done) return;
      done = true;
      meter.finish(started, code);
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
      this.#appendLatency.seriesOf(persistenceId).observe(seconds);
      this.#appendEvents.seriesOf(persistenceId).observe(events);
    },
  };

  /** The hook guest commands report to (pass it to the module registry). */
  readonly guest: GuestObserver = {
    guestCall: (service, seconds, fuel) => {
      this.#guestTime.seriesOf(service).observe(seconds);
      if (fuel !== undefined) this.#guestFuel.seriesOf(service).value += fuel;
    },
  };

  /** The exposition text and its content type, for GET /metrics. */
  async scrape(): Promise<{ contentType: string; text: string }> {
    const hot = this.#hot.map((metric) => metric.exposition()).join("\n\n");
    return { contentType: this.registry.contentType, text: `${await this.registry.metrics()}\n${hot}\n` };
  }
}

/** Counts and times the calls of one method on one ingress (Metrics.callMeter). */
export class CallMeter {
  constructor(
    private readonly calls: CounterSeries,
    private readonly latency: HistogramSeries,
    /** Failures by status name: a prom-client counter (failures are rare). */
    private readonly failures: Counter<"service" | "method" | "ingress" | "status">,
    private readonly labels: { readonly service: string; readonly method: string; readonly ingress: Ingress },
  ) {}

  /** Counts a call; its start time, for finish(). */
  start(): number {
    this.calls.value += 1;
    return performance.now();
  }

  /** Records how the call started at `started` ended (call it once per call). */
  finish(started: number, code: GrpcStatus): void {
    this.latency.observe((performance.now() - started) / 1000);
    if (code !== GrpcStatus.OK) this.failures.inc({ ...this.labels, status: grpcStatusName(code) });
  }
}
