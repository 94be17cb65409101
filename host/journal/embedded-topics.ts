// Topics in the embedded store: an LMDB log per topic, row key [topic, sequence] (ordered),
// row = the message. A subscription has, in the "topic-subscriptions" db, the next sequence
// to hand out (["n", topic, subscription]), a row per message handed out and not yet
// acknowledged (["p", topic, subscription, sequence] = deliveries) and its dead letters
// (["d", topic, subscription, sequence]). The embedded store serves one process, so one
// consumer per subscription: a reader waiting for messages is woken in-process by publish.
import type { Database, RootDatabase } from "lmdb";
import { guarded } from "./store-support.js";
import type { DeadLetter, TopicConsumer, TopicDelivery, TopicMessage, Topics } from "./types.js";

/** A message as the topic log stores it: everything but its offset, which is its row key. */
type StoredMessage = Omit<TopicMessage, "offset">;

interface StoredDeadLetter {
  readonly message: StoredMessage;
  readonly reason: string;
  readonly attempts: number;
  readonly at: number;
}

type SubscriptionKey = [kind: "n", topic: string, subscription: string] | [kind: "p" | "d", topic: string, subscription: string, sequence: number];
type SubscriptionRow = number | StoredDeadLetter;

const LAST = Number.MAX_SAFE_INTEGER;

/** Offsets are zero-padded sequences, so they compare as strings in the order they were published. */
export function embeddedOffset(sequence: number): string {
  return String(sequence).padStart(16, "0");
}

function sequenceOf(offset: string): number {
  return Number(offset);
}

export class EmbeddedTopics implements Topics {
  /** Readers waiting for a topic's next message. */
  readonly #waiters = new Map<string, Set<() => void>>();

  constructor(
    private readonly env: RootDatabase,
    readonly messages: Database<StoredMessage, [string, number]>,
    private readonly subscriptions: Database<SubscriptionRow, SubscriptionKey>,
  ) {}

  async publish(topic: string, message: Omit<TopicMessage, "offset">): Promise<string> {
    const offset = await guarded(`publish to topic ${topic}`, () =>
      this.env.transaction(() => {
        const sequence = this.lastSequence(topic) + 1;
        const { id, source, type, time, partitionKey, payload } = message;
        this.messages.put([topic, sequence], { id, source, type, time, partitionKey, payload });
        return embeddedOffset(sequence);
      }),
    );
    // Committed: readers waiting on the topic can see it now.
    const waiting = this.#waiters.get(topic);
    if (waiting) for (const wake of [...waiting]) wake();
    return offset;
  }

  /** The topic's last sequence (0 when empty). */
  lastSequence(topic: string): number {
    for (const { key } of this.messages.getRange({ start: [topic, LAST], end: [topic, 0], reverse: true, limit: 1 })) {
      return key[1];
    }
    return 0;
  }

  async consume(topic: string, subscription: string, _consumer: string, options: { readonly fromStart: boolean }): Promise<TopicConsumer> {
    await guarded(`create subscription ${subscription} of topic ${topic}`, () =>
      this.env.transaction(() => {
        const position: SubscriptionKey = ["n", topic, subscription];
        if (this.subscriptions.get(position) === undefined) {
          this.subscriptions.put(position, options.fromStart ? 1 : this.lastSequence(topic) + 1);
        }
      }),
    );
    return new EmbeddedTopicConsumer(this, this.env, topic, subscription);
  }

  deadLetters(topic: string, subscription: string, limit: number): Promise<DeadLetter[]> {
    return guarded(`read dead letters of ${subscription}`, () => {
      const letters: DeadLetter[] = [];
      for (const { key, value } of this.subscriptions.getRange({ start: ["d", topic, subscription, 0], end: ["d", topic, subscription, LAST], limit })) {
        const row = value as StoredDeadLetter;
        const offset = embeddedOffset(key[3] as number);
        letters.push({ offset, message: { offset, ...row.message }, reason: row.reason, attempts: row.attempts, at: row.at });
      }
      return letters;
    });
  }

  /** Resolves at the next publish to `topic` (or when `cancel` is called). Registered at once, so a publish right after is not missed. */
  waitForPublish(topic: string): { readonly published: Promise<void>; cancel(): void } {
    let wake!: () => void;
    const published = new Promise<void>((resolve) => {
      wake = () => {
        this.#waiters.get(topic)?.delete(wake);
        resolve();
      };
    });
    let set = this.#waiters.get(topic);
    if (!set) this.#waiters.set(topic, (set = new Set()));
    set.add(wake);
    return { published, cancel: wake };
  }

  /** Inside a write transaction: hands out up to `count` messages after the subscription's position. */
  takeNew(topic: string, subscription: string, count: number): TopicDelivery[] {
    const position: SubscriptionKey = ["n", topic, subscription];
    const from = (this.subscriptions.get(position) as number | undefined) ?? 1;
    const taken: TopicDelivery[] = [];
    for (const { key, value } of this.messages.getRange({ start: [topic, from], end: [topic, LAST], limit: count })) {
      this.subscriptions.put(["p", topic, subscription, key[1]], 1);
      taken.push({ offset: embeddedOffset(key[1]), ...value, deliveries: 1 });
    }
    if (taken.length > 0) this.subscriptions.put(position, sequenceOf(taken[taken.length - 1]!.offset) + 1);
    return taken;
  }

  /** Inside a write transaction: up to `count` handed-out messages, each counted as delivered again. */
  takePending(topic: string, subscription: string, count: number): TopicDelivery[] {
    const taken: TopicDelivery[] = [];
    for (const { key, value } of this.subscriptions.getRange({ start: ["p", topic, subscription, 0], end: ["p", topic, subscription, LAST], limit: count })) {
      const sequence = key[3] as number;
      const message = this.messages.get([topic, sequence]);
      if (message === undefined) {
        this.subscriptions.remove(key);
        continue;
      }
      const deliveries = (value as number) + 1;
      this.subscriptions.put(key, deliveries);
      taken.push({ offset: embeddedOffset(sequence), ...message, deliveries });
    }
    return taken;
  }

  /** Inside a write transaction. */
  settle(topic: string, subscription: string, offset: string, deadLetter?: StoredDeadLetter): void {
    const sequence = sequenceOf(offset);
    if (deadLetter !== undefined) this.subscriptions.put(["d", topic, subscription, sequence], deadLetter);
    this.subscriptions.remove(["p", topic, subscription, sequence]);
  }
}

class EmbeddedTopicConsumer implements TopicConsumer {
  #closed = false;
  #cancelWait: (() => void) | undefined;

  constructor(
    private readonly topics: EmbeddedTopics,
    private readonly env: RootDatabase,
    private readonly topic: string,
    private readonly subscription: string,
  ) {}

  pending(count: number): Promise<TopicDelivery[]> {
    return guarded(`read pending messages of ${this.subscription}`, () => this.env.transaction(() => this.topics.takePending(this.topic, this.subscription, count)));
  }

  async next(count: number, blockMs: number): Promise<TopicDelivery[]> {
    const deadline = performance.now() + blockMs;
    while (!this.#closed) {
      const wait = this.topics.waitForPublish(this.topic);
      this.#cancelWait = wait.cancel;
      try {
        const taken = await guarded(`read topic ${this.topic} for ${this.subscription}`, () => this.env.transaction(() => this.topics.takeNew(this.topic, this.subscription, count)));
        const left = deadline - performance.now();
        if (taken.length > 0 || left <= 0 || this.#closed) return taken;
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([wait.published, new Promise<void>((resolve) => (timer = setTimeout(resolve, left)))]);
        clearTimeout(timer);
      } finally {
        wait.cancel();
        this.#cancelWait = undefined;
      }
    }
    return [];
  }

  ack(offsets: readonly string[]): Promise<void> {
    if (offsets.length === 0) return Promise.resolve();
    return guarded(`acknowledge messages of ${this.subscription}`, () =>
      this.env.transaction(() => {
        for (const offset of offsets) this.topics.settle(this.topic, this.subscription, offset);
      }),
    );
  }

  deadLetter(message: TopicMessage, reason: string, attempts: number): Promise<void> {
    return guarded(`dead-letter a message of ${this.subscription}`, () =>
      this.env.transaction(() => {
        const { id, source, type, time, partitionKey, payload } = message;
        this.topics.settle(this.topic, this.subscription, message.offset, { message: { id, source, type, time, partitionKey, payload }, reason, attempts, at: Date.now() });
      }),
    );
  }

  /** One process, one consumer: nothing is held by anyone else. */
  claim(): Promise<number> {
    return Promise.resolve(0);
  }

  close(): Promise<void> {
    this.#closed = true;
    this.#cancelWait?.();
    return Promise.resolve();
  }
}
