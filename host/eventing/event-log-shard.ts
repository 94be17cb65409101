// One event-log subscription's cursor over one shard's feed of one persistence id. A pass
// reads a batch of feed entries after the stored offset, delivers each entity's events in
// sequence order (different entities at once), and stores the batch's last offset only when
// every entity of the batch is done (or parked, durably): the offset means "everything up to
// here is handled", so a crash redelivers at most the batch, never skips.
//
// An entity whose delivery failed maxAttempts times is parked: (key, first seq not handled)
// is stored, its later feed entries are passed over (the park covers them, up to the
// journal's end), and every PARKED_RETRY_MS a pass tries it again from that seq.
import type { EventFeeds, FeedCursor, FeedEntry } from "../journal/event-feeds.js";
import type { Journal } from "../journal/types.js";
import { log } from "../log.js";
import type { EventDeliverer, EventLogSubscription } from "./event-delivery.js";
import type { EventLogMetrics } from "./event-log-metrics.js";

/** Feed entries per pass (the offset is stored per pass: a crash redelivers at most this many appends per shard). */
const FEED_BATCH = 64;
/** Entities of one batch delivered at once (each one's events strictly in order). */
const ENTITIES_AT_ONCE = 32;
/** Events read from a journal at a time. */
const EVENTS_PER_READ = 128;
/** How long a parked entity waits before a pass tries it again. */
export const PARKED_RETRY_MS = 30_000;

export interface ShardDeps {
  readonly feeds: EventFeeds;
  readonly journal: Journal;
  readonly deliverer: EventDeliverer;
  readonly metrics: EventLogMetrics;
  /** Default PARKED_RETRY_MS. */
  readonly parkedRetryMs?: number;
}

type RangeResult = { readonly outcome: "done"; readonly next: number } | { readonly outcome: "parked" | "stopped" };

export class EventLogShard {
  readonly cursor: FeedCursor;
  /** Age of the oldest unhandled append the last pass found (0: caught up), ms. */
  lagMs = 0;
  #offset: string | undefined;
  /** Parked entities: key -> first seq not handled. */
  #parked = new Map<string, number>();
  /** When each parked entity is tried again (ms since the epoch; parked before this process: at once). */
  readonly #retryAt = new Map<string, number>();
  /** Entities unparked here: the next seq to deliver (their older feed entries were covered by the retry). */
  readonly #resumed = new Map<string, number>();
  #stopped = false;

  constructor(
    /** The subscription as it is now (a redeploy may change maxAttempts). */
    private readonly subscription: () => EventLogSubscription,
    shard: number,
    private readonly deps: ShardDeps,
  ) {
    const { id, persistenceId } = subscription();
    this.cursor = { subscription: id, persistenceId, shard };
  }

  /** From now on nothing is delivered and nothing committed (a delivery in flight finishes). */
  stop(): void {
    this.#stopped = true;
  }

  get stopped(): boolean {
    return this.#stopped;
  }

  get parkedCount(): number {
    return this.#parked.size;
  }

  /** One batch; resolves true when it handled entries (another pass may find more at once). */
  async pass(now = Date.now()): Promise<boolean> {
    const { feeds } = this.deps;
    const subscription = this.subscription();
    if (this.#offset === undefined) {
      const offset = await feeds.offset(this.cursor, subscription.fromStart);
      this.#parked = await feeds.parked(this.cursor);
      this.#offset = offset;
      if (this.#parked.size > 0) log().warn({ ...this.cursor, parked: [...this.#parked.keys()].slice(0, 20) }, "event-log subscription: entities parked earlier are retried shortly");
    }
    if (this.#parked.size > 0) await this.#retryParked(subscription, now);
    if (this.#stopped) return false;
    const entries = await feeds.read(this.cursor.persistenceId, this.cursor.shard, this.#offset, FEED_BATCH);
    this.lagMs = entries.length === 0 ? 0 : Math.max(0, now - entries[0]!.time);
    if (entries.length === 0) return false;
    if (!(await this.#deliverBatch(subscription, entries)) || this.#stopped) return false;
    const last = entries[entries.length - 1]!.offset;
    await feeds.commit(this.cursor, last);
    this.#offset = last;
    return true;
  }

  /** True when every entity of the batch is handled or parked. */
  async #deliverBatch(subscription: EventLogSubscription, entries: readonly FeedEntry[]): Promise<boolean> {
    const byEntity = new Map<string, FeedEntry[]>();
    for (const entry of entries) {
      const list = byEntity.get(entry.key);
      if (list) list.push(entry);
      else byEntity.set(entry.key, [entry]);
    }
    const queue = [...byEntity];
    let complete = true;
    const worker = async () => {
      for (let next = queue.shift(); next !== undefined; next = queue.shift()) {
        if (!(await this.#deliverEntity(subscription, next[0], next[1]))) complete = false;
      }
    };
    // Settled, not all(): a pass that failed must not end while some of its deliveries go on
    // (the next pass would deliver the same entity's events at the same time).
    const results = await Promise.allSettled(Array.from({ length: Math.min(ENTITIES_AT_ONCE, queue.length) }, worker));
    for (const result of results) if (result.status === "rejected") throw result.reason;
    return complete;
  }

  /** One entity's entries of a batch, in order; true when handled or parked. */
  async #deliverEntity(subscription: EventLogSubscription, key: string, entries: readonly FeedEntry[]): Promise<boolean> {
    for (const entry of entries) {
      // A parked entity's events wait for its retry, which reads its journal to the end.
      if (this.#parked.has(key)) return true;
      let from = entry.firstSeq;
      const to = entry.firstSeq + entry.count - 1;
      const resumedAt = this.#resumed.get(key);
      if (resumedAt !== undefined) {
        if (resumedAt <= entry.firstSeq) this.#resumed.delete(key);
        else from = resumedAt;
      }
      if (from > to) continue;
      const result = await this.#deliverRange(subscription, key, from, to, entry.time);
      if (result.outcome === "stopped") return false;
    }
    return true;
  }

  /** Delivers `key`'s events from..to (to: the journal's end when undefined), each with retries; parks on a failure. */
  async #deliverRange(subscription: EventLogSubscription, key: string, from: number, to: number | undefined, time: number | undefined): Promise<RangeResult> {
    const { journal, deliverer, metrics } = this.deps;
    const id = { persistenceId: this.cursor.persistenceId, key };
    let next = from;
    while (to === undefined || next <= to) {
      const limit = to === undefined ? EVENTS_PER_READ : Math.min(EVENTS_PER_READ, to - next + 1);
      const events = await journal.readEvents(id, next, limit);
      if (events.length === 0) {
        if (to !== undefined) log().error({ ...this.cursor, entityKey: key, from: next, to }, "event-log subscription: the feed names events the journal does not hold; passing over them");
        break;
      }
      for (const event of events) {
        const outcome = await deliverer.deliver({ subscription, key, event, time }, () => this.#stopped);
        if (outcome === "stopped") return { outcome };
        if (outcome === "failed") {
          await this.deps.feeds.park(this.cursor, key, event.seq);
          this.#parked.set(key, event.seq);
          this.#retryAt.set(key, Date.now() + (this.deps.parkedRetryMs ?? PARKED_RETRY_MS));
          this.#resumed.delete(key);
          return { outcome: "parked" };
        }
        if (outcome === "delivered") metrics.delivered(subscription.id);
        else metrics.skipped(subscription.id);
        next = event.seq + 1;
      }
    }
    return { outcome: "done", next };
  }

  /** Each parked entity that is due, from its parked seq to its journal's end; unparked when all of it is handled. */
  async #retryParked(subscription: EventLogSubscription, now: number): Promise<void> {
    for (const [key, fromSeq] of [...this.#parked]) {
      if (this.#stopped) return;
      if ((this.#retryAt.get(key) ?? 0) > now) continue;
      this.#parked.delete(key);
      const result = await this.#deliverRange(subscription, key, fromSeq, undefined, undefined).catch((err: unknown) => {
        this.#parked.set(key, fromSeq);
        throw err;
      });
      if (result.outcome === "stopped") {
        this.#parked.set(key, fromSeq);
        return;
      }
      if (result.outcome === "done") {
        this.#retryAt.delete(key);
        this.#resumed.set(key, result.next);
        await this.deps.feeds.unpark(this.cursor, key);
        log().info({ ...this.cursor, entityKey: key, from: fromSeq, to: result.next - 1 }, "event-log subscription: a parked entity's events were delivered; it is no longer parked");
      }
    }
  }
}
