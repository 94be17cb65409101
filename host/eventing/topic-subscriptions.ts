// Runs the topic subscriptions of the deployed modules: one SubscriptionLoop per
// subscription this node should consume. On a single node, that is every subscription; in a
// cluster, a subscription is consumed by the node that serves the shard its id hashes to, so
// one node at a time consumes it and a node that dies hands it over with its shards (the
// next owner takes over its unacknowledged messages). Follows deploys, rollbacks and
// undeploys (the registry's service changes) and ownership (checked periodically).
import { shardOf } from "../journal/shards.js";
import type { Topics } from "../journal/types.js";
import { log } from "../log.js";
import type { ModuleRegistry } from "../runtime/module-registry.js";
import { DEFAULT_LOOP_TIMINGS, SubscriptionLoop, type ActiveSubscription, type DeliverMessage, type LoopTimings } from "./subscription-loop.js";
import type { SubscriptionObserver } from "./subscription-metrics.js";
import { DEFAULT_MAX_ATTEMPTS, TOPIC_NAME, subscriptionId } from "../runtime/subscriptions.js";

/** The storage persistence id subscriptions hash under, so a subscription's shard never depends on any entity's. */
const SUBSCRIPTION_SHARD_SPACE = "keystate.subscription";

/** How often ownership is re-checked (a lease moves in seconds; this only adds to a takeover's delay). */
const RECONCILE_MS = 500;

/** In a cluster: which shard each subscription follows and whether this node serves it now. */
export interface SubscriptionOwnership {
  readonly shardCount: number;
  serves(shard: number): boolean;
}

export interface TopicSubscriptionsDeps {
  readonly topics: Topics;
  readonly registry: ModuleRegistry;
  readonly deliver: DeliverMessage;
  /** This process's consumer name: the cluster node id, or any stable name on a single node. */
  readonly consumer: string;
  /** undefined on a single node: every subscription is consumed here. */
  readonly ownership?: SubscriptionOwnership;
  readonly observers?: readonly SubscriptionObserver[];
  readonly timings?: Partial<LoopTimings>;
}

/** The shard whose owner consumes subscription `id`. */
export function subscriptionShard(id: string, shardCount: number): number {
  return shardOf(SUBSCRIPTION_SHARD_SPACE, id, shardCount);
}

export class TopicSubscriptions {
  readonly #deps: TopicSubscriptionsDeps;
  readonly #loops = new Map<string, SubscriptionLoop>();
  /** Loops told to stop whose handlers may still run: a successor with the same id waits for them (one consumer at a time here). */
  readonly #stopping = new Map<string, Promise<void>>();
  readonly #observers: SubscriptionObserver[];
  readonly #timings: LoopTimings;
  #timer: NodeJS.Timeout | undefined;
  /** Subscriptions already reported as unusable (reported once, not every reconcile). */
  readonly #skipped = new Set<string>();
  #stopped = false;

  constructor(deps: TopicSubscriptionsDeps) {
    this.#deps = deps;
    this.#observers = [...(deps.observers ?? [])];
    this.#timings = { ...DEFAULT_LOOP_TIMINGS, ...deps.timings };
  }

  /** Starts consuming what this node should, and follows changes from now on. */
  start(): void {
    // Told from inside a deploy: a failure here must never fail the deploy, nor the timer.
    const reconcile = () => {
      try {
        this.reconcile();
      } catch (err) {
        log().error({ err }, "topic subscriptions could not be reconciled; retrying shortly");
      }
    };
    this.#deps.registry.onServicesChanged(reconcile);
    this.#timer = setInterval(reconcile, RECONCILE_MS);
    this.#timer.unref();
    reconcile();
  }

  /** Also told of every delivery outcome (metrics are one observer; benchmarks add theirs). */
  observe(observer: SubscriptionObserver): void {
    this.#observers.push(observer);
  }

  /** Subscriptions consumed here now, by id. */
  get running(): string[] {
    return [...this.#loops.keys()];
  }

  /** Starts the loops this node should run and stops the others (undeployed, changed, or moved to another node). */
  reconcile(): void {
    if (this.#stopped) return;
    const wanted = new Map<string, ActiveSubscription>();
    for (const sub of this.#declared()) if (this.#ownsHere(sub.id)) wanted.set(sub.id, sub);
    for (const [id, loop] of this.#loops) {
      const want = wanted.get(id);
      if (want && sameSubscription(want, loop.subscription)) continue;
      this.#loops.delete(id);
      this.#retire(id, loop);
      log().info({ subscription: id, topic: loop.subscription.topic, reason: want ? "changed" : "no longer consumed here" }, "topic subscription stopped");
    }
    for (const [id, sub] of wanted) {
      if (this.#loops.has(id)) continue;
      const loop = new SubscriptionLoop(sub, { topics: this.#deps.topics, consumer: this.#deps.consumer, deliver: this.#deps.deliver, observer: this.#fanOut, timings: this.#timings });
      this.#loops.set(id, loop);
      const start = () => {
        if (this.#loops.get(id) === loop) loop.start();
      };
      const predecessor = this.#stopping.get(id);
      if (predecessor) void predecessor.then(start);
      else start();
      log().info({ subscription: id, topic: sub.topic, service: sub.service, method: sub.method }, "topic subscription started");
    }
  }

  #retire(id: string, loop: SubscriptionLoop): void {
    const stopped = loop.stop().catch((err: unknown) => log().warn({ err, subscription: id }, "a topic subscription did not stop cleanly"));
    this.#stopping.set(id, stopped);
    void stopped.then(() => {
      if (this.#stopping.get(id) === stopped) this.#stopping.delete(id);
    });
  }

  /** Stops every loop (node shutdown); handlers in flight get a few seconds to finish. */
  async stop(): Promise<void> {
    this.#stopped = true;
    clearInterval(this.#timer);
    for (const [id, loop] of this.#loops) this.#retire(id, loop);
    this.#loops.clear();
    await Promise.all(this.#stopping.values());
  }

  /** Topic subscriptions of every deployed module (event-log subscriptions have their own runner). */
  *#declared(): Iterable<ActiveSubscription> {
    for (const module of this.#deps.registry.modules) {
      for (const sub of module.manifest.subscriptions ?? []) {
        // Deploys check subscriptions (runtime/subscriptions.ts); a name that still could not
        // make a stream key is skipped, loudly, rather than take the runner down.
        if (!sub.topic || sub.eventLog) continue;
        if (!TOPIC_NAME.test(sub.topic)) {
          const key = `${module.name}/${sub.topic}`;
          if (!this.#skipped.has(key)) log().error({ module: module.name, topic: sub.topic }, "topic subscription skipped: not a valid topic name");
          this.#skipped.add(key);
          continue;
        }
        yield {
          id: subscriptionId(module.name, sub),
          module: module.name,
          topic: sub.topic,
          service: sub.service,
          method: sub.method,
          maxAttempts: sub.maxAttempts > 0 ? sub.maxAttempts : DEFAULT_MAX_ATTEMPTS,
          fromStart: sub.fromStart,
        };
      }
    }
  }

  #ownsHere(id: string): boolean {
    const ownership = this.#deps.ownership;
    return ownership === undefined || ownership.serves(subscriptionShard(id, ownership.shardCount));
  }

  /** One observer that tells all of them; a throwing observer never breaks a delivery. */
  readonly #fanOut: SubscriptionObserver = {
    handled: (subscription, message, seconds) => this.#tell((o) => o.handled(subscription, message, seconds)),
    failed: (subscription) => this.#tell((o) => o.failed(subscription)),
    deadLettered: (subscription) => this.#tell((o) => o.deadLettered(subscription)),
  };

  #tell(call: (observer: SubscriptionObserver) => void): void {
    for (const observer of this.#observers) {
      try {
        call(observer);
      } catch (err) {
        log().warn({ err }, "a subscription observer failed");
      }
    }
  }
}

function sameSubscription(a: ActiveSubscription, b: ActiveSubscription): boolean {
  return a.topic === b.topic && a.service === b.service && a.method === b.method && a.maxAttempts === b.maxAttempts && a.fromStart === b.fromStart;
}
