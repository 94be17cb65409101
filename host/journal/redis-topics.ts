// Topics on Redis Streams: one stream per topic, one consumer group per subscription (its
// offset and its pending list), a dead-letter stream per subscription in the topic's slot.
// A message's fields: i (CloudEvents id), s (source), y (type), t (time, ms), k (partition key), p (payload);
// a dead letter adds o (the message's offset in the topic), r (reason), n (attempts), d (when).
// Every command of a topic names only keys with the topic's hash tag, so on a Redis Cluster
// they all run on one node (the dead-letter MULTI included).
import { KeystateError } from "../errors.js";
import type { RedisClient } from "./redis-connection.js";
import { tagPart, type RedisLayout } from "./redis-keys.js";
import { guarded } from "./store-support.js";
import type { DeadLetter, TopicConsumer, TopicDelivery, TopicMessage, Topics } from "./types.js";
import { bufferOf } from "../buffer-of.js";

/** Opens a connection of its own (no auto-pipelining) whose commands time out after `commandTimeoutMs`. */
export type ConnectDedicated = (commandTimeoutMs: number) => Promise<RedisClient>;

/** A blocking read's reply may come this long after its BLOCK time before the connection gives up on it. */
const BLOCK_GRACE_MS = 5000;
/** Claimed per XAUTOCLAIM round trip. */
const CLAIM_BATCH = 100;

export class RedisTopics implements Topics {
  constructor(
    private readonly redis: RedisClient,
    /** The layout in force (a cluster changes it after the store opens). */
    private readonly layout: () => RedisLayout,
    /**
     * Where a consumer's blocking reads go: never the store's connection, whose auto-pipelining
     * would queue every journal write behind an XREADGROUP BLOCK, and whose command timeout
     * is shorter than a block.
     */
    private readonly connectDedicated?: ConnectDedicated,
  ) {}

  publish(topic: string, message: Omit<TopicMessage, "offset">): Promise<string> {
    return guarded(`publish to topic ${topic}`, async () => {
      const offset = await this.redis.xadd(this.layout().topicKey(topic), "*", ...messageFields(message));
      return offset ?? "";
    });
  }

  async consume(topic: string, subscription: string, consumer: string, options: { readonly fromStart: boolean }): Promise<TopicConsumer> {
    const connect = this.connectDedicated;
    if (connect === undefined) throw new KeystateError("INVALID_REQUEST", "this Redis store was opened without a way to connect consumers");
    const keys = topicKeys(this.layout(), topic, subscription);
    await guarded(`create subscription ${subscription} of topic ${topic}`, async () => {
      try {
        // "0": every message the stream still holds; "$": only those published from now on.
        await this.redis.xgroup("CREATE", keys.stream, subscription, options.fromStart ? "0" : "$", "MKSTREAM");
      } catch (err) {
        if (!/BUSYGROUP/.test((err as Error).message)) throw err;
      }
    });
    return new RedisTopicConsumer(this.redis, connect, keys, subscription, consumer);
  }

  deadLetters(topic: string, subscription: string, limit: number): Promise<DeadLetter[]> {
    const keys = topicKeys(this.layout(), topic, subscription);
    return guarded(`read dead letters of ${subscription}`, async () => {
      const entries = await this.redis.xrangeBuffer(keys.deadLetters, "-", "+", "COUNT", limit);
      return entries.map(([id, fields]) => {
        const f = fieldMap(fields);
        return {
          offset: id.toString(),
          message: decodeMessage(text(f, "o"), f),
          reason: text(f, "r"),
          attempts: Number(text(f, "n")),
          at: Number(text(f, "d")),
        };
      });
    });
  }
}

interface TopicKeys {
  readonly topic: string;
  readonly stream: string;
  readonly deadLetters: string;
}

function topicKeys(layout: RedisLayout, topic: string, subscription: string): TopicKeys {
  const stream = layout.topicKey(topic);
  return { topic, stream, deadLetters: `${stream}:dlq:${tagPart(subscription)}` };
}

class RedisTopicConsumer implements TopicConsumer {
  /** The blocking reads' connection, opened on the first `next`. */
  #reader: Promise<RedisClient> | undefined;
  #closed = false;

  constructor(
    private readonly redis: RedisClient,
    private readonly connect: ConnectDedicated,
    private readonly keys: TopicKeys,
    private readonly group: string,
    private readonly consumer: string,
  ) {}

  pending(count: number): Promise<TopicDelivery[]> {
    return guarded(`read pending messages of ${this.group}`, async () => {
      // Reading the history ("0") re-delivers: Redis counts it, and XPENDING then says how often.
      const reply = await this.redis.xreadgroupBuffer("GROUP", this.group, this.consumer, "COUNT", count, "STREAMS", this.keys.stream, "0");
      const entries = streamEntries(reply);
      if (entries.length === 0) return [];
      const counts = new Map<string, number>();
      const first = entries[0]![0];
      const last = entries[entries.length - 1]![0];
      for (const row of (await this.redis.xpending(this.keys.stream, this.group, first, last, entries.length, this.consumer)) as Array<[string, string, number, number]>) {
        counts.set(String(row[0]), Number(row[3]));
      }
      // An entry trimmed from the stream comes back without fields: nothing is left to deliver.
      const gone = entries.filter(([, fields]) => fields === null).map(([id]) => id);
      if (gone.length > 0) await this.redis.xack(this.keys.stream, this.group, ...gone);
      return entries.filter(([, fields]) => fields !== null).map(([id, fields]) => ({ ...decodeMessage(id, fieldMap(fields!)), deliveries: counts.get(id) ?? 1 }));
    });
  }

  async next(count: number, blockMs: number): Promise<TopicDelivery[]> {
    if (this.#closed) return [];
    const reader = await guarded(`connect a consumer of ${this.group}`, () => this.#readerFor(blockMs));
    try {
      const reply = await reader.xreadgroupBuffer("GROUP", this.group, this.consumer, "COUNT", count, "BLOCK", blockMs, "STREAMS", this.keys.stream, ">");
      return streamEntries(reply).map(([id, fields]) => ({ ...decodeMessage(id, fieldMap(fields ?? [])), deliveries: 1 }));
    } catch (err) {
      // close() drops the connection under a waiting read: that is an empty read, not a failure.
      if (this.#closed) return [];
      throw KeystateError.fromStorage(err, `read topic ${this.keys.topic} for ${this.group}`);
    }
  }

  /** The reader connection; a failed connect is forgotten, so the next read tries again. */
  #readerFor(blockMs: number): Promise<RedisClient> {
    if (this.#reader === undefined) {
      const opening = this.#open(blockMs);
      this.#reader = opening;
      opening.catch(() => {
        if (this.#reader === opening) this.#reader = undefined;
      });
    }
    return this.#reader;
  }

  async #open(blockMs: number): Promise<RedisClient> {
    const client = await this.connect(blockMs + BLOCK_GRACE_MS);
    if (this.#closed) client.disconnect();
    return client;
  }

  ack(offsets: readonly string[]): Promise<void> {
    if (offsets.length === 0) return Promise.resolve();
    return guarded(`acknowledge messages of ${this.group}`, async () => {
      await this.redis.xack(this.keys.stream, this.group, ...offsets);
    });
  }

  deadLetter(message: TopicMessage, reason: string, attempts: number): Promise<void> {
    return guarded(`dead-letter a message of ${this.group}`, async () => {
      const fields = [...messageFields(message), "o", message.offset, "r", reason, "n", String(attempts), "d", String(Date.now())];
      const results = await this.redis.multi().xadd(this.keys.deadLetters, "*", ...fields).xack(this.keys.stream, this.group, message.offset).exec();
      const failed = results?.find(([err]) => err !== null)?.[0];
      if (results === null || failed) throw failed ?? new Error("the dead-letter transaction was discarded");
    });
  }

  claim(minIdleMs: number): Promise<number> {
    return guarded(`claim pending messages of ${this.group}`, async () => {
      let claimed = 0;
      let cursor = "0-0";
      do {
        // JUSTID: a claim is not a delivery (the delivery count stays), the later `pending` read is.
        const reply = (await this.redis.xautoclaim(this.keys.stream, this.group, this.consumer, minIdleMs, cursor, "COUNT", CLAIM_BATCH, "JUSTID")) as [string, string[]];
        cursor = String(reply[0]);
        claimed += reply[1].length;
      } while (cursor !== "0-0");
      return claimed;
    });
  }

  async close(): Promise<void> {
    this.#closed = true;
    const reader = await this.#reader?.catch(() => undefined);
    // disconnect, not quit: a QUIT would wait for a blocked XREADGROUP to time out first.
    reader?.disconnect();
  }
}

function messageFields(message: Omit<TopicMessage, "offset">): Array<string | Buffer> {
  return [
    "i", message.id,
    "s", message.source,
    "y", message.type,
    "t", String(message.time),
    "k", message.partitionKey,
    "p", bufferOf(message.payload),
  ];
}

type Entry = [id: string, fields: Buffer[] | null];

/**
 * The entries of a one-stream XREADGROUP reply: RESP2 [[key, [[id, fields], ...]]], or the
 * map RESP3 answers with (ioredis flattens it to [key, [[id, fields], ...]]); null when none.
 */
function streamEntries(reply: unknown): Entry[] {
  if (!Array.isArray(reply) || reply.length === 0) return [];
  const stream = (Array.isArray(reply[0]) ? reply[0] : reply) as [Buffer, Array<[Buffer, Buffer[] | null]>];
  return stream[1].map(([id, fields]) => [id.toString(), fields]);
}

function fieldMap(fields: readonly Buffer[]): Map<string, Buffer> {
  const map = new Map<string, Buffer>();
  for (let i = 0; i + 1 < fields.length; i += 2) map.set(fields[i]!.toString(), fields[i + 1]!);
  return map;
}

function text(fields: Map<string, Buffer>, name: string): string {
  return fields.get(name)?.toString() ?? "";
}

function decodeMessage(offset: string, f: Map<string, Buffer>): TopicMessage {
  const payload = f.get("p") ?? Buffer.alloc(0);
  return {
    offset,
    id: text(f, "i"),
    source: text(f, "s"),
    type: text(f, "y"),
    time: Number(text(f, "t")),
    partitionKey: text(f, "k"),
    payload: new Uint8Array(payload.buffer, payload.byteOffset, payload.byteLength),
  };
}
