// Runs the event-log subscriptions the deployed modules declare (module.json
// `subscriptions[].eventLog`): for each one, and each shard this node serves (a single node:
// shard 0; a cluster: the shards whose leases it holds), a cursor over that shard's feed of the
// persistence id (event-log-shard.ts). The set follows the registry (deploys, rollbacks,
// undeploys, a cluster's notices) and the placement (shards gained or lost), re-read every
// poll. Idle cursors poll every POLL_MS; a cursor that found appends runs again at once.
// Nothing here throws into the node: a failing pass is logged and retried at the next poll.
import type { Registry } from "prom-client";
import type { Router } from "../entities/router.js";
import type { Store } from "../journal/types.js";
import { log } from "../log.js";
import type { ModuleRegistry } from "../runtime/module-registry.js";
import { sleep } from "./backoff.js";
import { EventDeliverer, type EventLogSubscription } from "./event-delivery.js";
import { EventLogMetrics, type SubscriptionState } from "./event-log-metrics.js";
import { EventLogShard } from "./event-log-shard.js";
import { DEFAULT_MAX_ATTEMPTS, subscriptionId } from "../runtime/subscriptions.js";

/** How often an idle cursor looks for new appends (the projection's delay when idle). */
export const POLL_MS = 200;
/** stop() waits this long for passes in flight (a handler call cannot be cancelled). */
const STOP_WAIT_MS = 3_000;
/** One warning per subscription per this long while its passes keep failing (e.g. storage away). */
const WARN_EVERY_MS = 10_000;

export interface EventLogDeps {
  readonly registry: ModuleRegistry;
  readonly router: Pick<Router, "call" | "servedShards">;
  readonly store: Pick<Store, "eventFeeds" | "journal">;
  /** Where the series go (the node's metrics registry); none in bare setups. */
  readonly metricsRegistry?: Registry;
  readonly pollMs?: number;
  /** How long a parked entity waits before it is tried again (default PARKED_RETRY_MS). */
  readonly parkedRetryMs?: number;
}

export class EventLogSubscriptions {
  readonly #deps: EventLogDeps;
  readonly #deliverer: EventDeliverer;
  readonly #metrics: EventLogMetrics;
  #subscriptions = new Map<string, EventLogSubscription>();
  /** Cursors by subscription id, persistence id and shard. */
  readonly #cursors = new Map<string, EventLogShard>();
  readonly #busy = new Set<EventLogShard>();
  readonly #passes = new Set<Promise<void>>();
  /** Cuts retry waits short when the runner stops. */
  readonly #stopping = new AbortController();
  readonly #warnedAt = new Map<string, number>();
  #timer: NodeJS.Timeout | undefined;
  #started = false;
  #stopped = false;

  constructor(deps: EventLogDeps) {
    this.#deps = deps;
    this.#deliverer = new EventDeliverer(
      (service, method, payload, options) => deps.router.call(service, method, payload, options),
      (name) => deps.registry.service(name),
      (ms) => this.#sleep(ms),
    );
    this.#metrics = new EventLogMetrics(deps.metricsRegistry, () => this.#state());
  }

  /** Starts following the registry and polling (call once the modules are loaded). */
  start(): void {
    if (this.#started) return;
    this.#started = true;
    this.#deps.registry.onServicesChanged(() => this.#follow());
    this.#follow();
    this.#tick();
  }

  /** Stops polling and retrying; waits (bounded) for handler calls in flight. Offsets of unfinished batches stay where they were. */
  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    for (const cursor of this.#cursors.values()) cursor.stop();
    this.#stopping.abort();
    let timer: NodeJS.Timeout | undefined;
    const bound = new Promise<void>((resolve) => (timer = setTimeout(resolve, STOP_WAIT_MS)));
    await Promise.race([Promise.allSettled([...this.#passes]), bound]);
    clearTimeout(timer);
  }

  /** The event-log subscriptions running now (for tests and the admin view). */
  get subscriptions(): EventLogSubscription[] {
    return [...this.#subscriptions.values()];
  }

  /** Called from the registry's deploys: whatever goes wrong here must not fail a deploy. */
  #follow(): void {
    try {
      this.#sync();
    } catch (err) {
      log().error({ err }, "event-log subscriptions: following the deployed modules failed; the set is read again at the next deploy");
    }
  }

  /** The subscriptions the deployed modules declare now; cursors of the ones gone stop. */
  #sync(): void {
    if (this.#stopped) return;
    const wanted = new Map<string, EventLogSubscription>();
    for (const module of this.#deps.registry.modules) {
      for (const sub of module.manifest.subscriptions ?? []) {
        if (!sub.eventLog) continue; // topic subscriptions run elsewhere
        const id = subscriptionId(module.name, sub);
        wanted.set(id, {
          id,
          moduleName: module.name,
          persistenceId: sub.eventLog,
          service: sub.service,
          maxAttempts: sub.maxAttempts > 0 ? sub.maxAttempts : DEFAULT_MAX_ATTEMPTS,
          fromStart: sub.fromStart,
        });
      }
    }
    for (const [id, sub] of wanted) {
      if (!this.#subscriptions.has(id)) log().info({ subscription: id, eventLog: sub.persistenceId, service: sub.service, from: sub.fromStart ? "beginning" : "now" }, "event-log subscription started");
    }
    for (const [key, cursor] of this.#cursors) {
      if (wanted.get(cursor.cursor.subscription)?.persistenceId === cursor.cursor.persistenceId) continue;
      cursor.stop();
      this.#cursors.delete(key);
      if (!wanted.has(cursor.cursor.subscription) && this.#subscriptions.has(cursor.cursor.subscription)) {
        this.#subscriptions.delete(cursor.cursor.subscription);
        log().info({ subscription: cursor.cursor.subscription }, "event-log subscription stopped");
      }
    }
    this.#subscriptions = wanted;
  }

  #tick(): void {
    if (this.#stopped) return;
    try {
      if (this.#subscriptions.size > 0) this.#poll();
    } catch (err) {
      log().error({ err }, "event-log subscriptions: a poll failed; polling again shortly");
    }
    this.#timer = setTimeout(() => this.#tick(), this.#deps.pollMs ?? POLL_MS);
    this.#timer.unref();
  }

  /** Starts a pass on every idle cursor of a served shard; stops the cursors of shards no longer served. */
  #poll(): void {
    const served = this.#deps.router.servedShards();
    const servedSet = new Set(served);
    for (const [key, cursor] of this.#cursors) {
      if (servedSet.has(cursor.cursor.shard)) continue;
      cursor.stop();
      this.#cursors.delete(key);
    }
    for (const sub of this.#subscriptions.values()) {
      for (const shard of served) {
        const key = `${sub.id}\n${sub.persistenceId}\n${shard}`;
        let cursor = this.#cursors.get(key);
        if (!cursor) {
          const id = sub.id;
          cursor = new EventLogShard(() => this.#subscriptions.get(id) ?? sub, shard, {
            feeds: this.#deps.store.eventFeeds,
            journal: this.#deps.store.journal,
            deliverer: this.#deliverer,
            metrics: this.#metrics,
            parkedRetryMs: this.#deps.parkedRetryMs,
          });
          this.#cursors.set(key, cursor);
        }
        if (!this.#busy.has(cursor)) this.#run(cursor);
      }
    }
  }

  /** Passes of `cursor` until one finds nothing new (or it is stopped). */
  #run(cursor: EventLogShard): void {
    this.#busy.add(cursor);
    const pass = (async () => {
      try {
        while (!cursor.stopped && !this.#stopped && (await cursor.pass())) {
          // another batch at once: a cursor that is behind catches up without waiting for polls
        }
      } catch (err) {
        this.#warn(cursor, err);
      } finally {
        this.#busy.delete(cursor);
      }
    })();
    this.#passes.add(pass);
    void pass.finally(() => this.#passes.delete(pass));
  }

  #warn(cursor: EventLogShard, err: unknown): void {
    const id = cursor.cursor.subscription;
    const now = Date.now();
    if (now - (this.#warnedAt.get(id) ?? 0) < WARN_EVERY_MS) return;
    this.#warnedAt.set(id, now);
    log().warn({ err, ...cursor.cursor }, "event-log subscription: a pass failed; it is retried at the next poll (further failures of this subscription are not logged for 10 s)");
  }

  /** Per subscription: the largest lag of its cursors here (seconds) and their parked entities. */
  #state(): Map<string, SubscriptionState> {
    const state = new Map<string, SubscriptionState>();
    for (const id of this.#subscriptions.keys()) state.set(id, { lagSeconds: 0, parked: 0 });
    for (const cursor of this.#cursors.values()) {
      const id = cursor.cursor.subscription;
      const before = state.get(id) ?? { lagSeconds: 0, parked: 0 };
      state.set(id, { lagSeconds: Math.max(before.lagSeconds, cursor.lagMs / 1000), parked: before.parked + cursor.parkedCount });
    }
    return state;
  }

  /** Waits `ms`; resolves true when the runner stopped meanwhile (a retry must not run). */
  /** Waits `ms` (cut short by stop()); true when the runner stopped meanwhile. */
  async #sleep(ms: number): Promise<boolean> {
    await sleep(ms, this.#stopping.signal);
    return this.#stopped;
  }

}
