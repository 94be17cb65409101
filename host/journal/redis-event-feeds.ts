// Event feeds on Redis: the append script (ksAppend) adds one stream entry per append to
// `ks:{s:<cluster>:<shard>}:f:<pid>`; offsets are stream ids, stored in one hash per shard;
// parked entities in one hash per (shard, subscription, pid). All in the shard's slot.
//
// Plain offsets rather than consumer groups: a subscription handles many entities of a
// shard at once and acknowledges in a batch's order anyway (one offset below which all is
// handled), and a shard that moves to another node resumes from that offset with nothing
// to claim from another consumer's pending list. Parked entities are the only exceptions.
import type { EventFeeds, FeedCursor, FeedEntry } from "./event-feeds.js";
import type { RedisClient } from "./redis-connection.js";
import type { RedisLayout } from "./redis-keys.js";
import { tagPart } from "./redis-keys.js";
import { guarded } from "./store-support.js";

/** Before any entry (XRANGE's exclusive start after it is the whole stream). */
const BEFORE_FIRST = "0-0";

/** One stream entry [id, [field, value, ...]] -> FeedEntry; the key comes tagPart-encoded from the script. */
function decodeFeedEntry([id, fields]: [string, string[]]): FeedEntry {
  let key = "";
  let firstSeq = 0;
  let count = 0;
  for (let i = 0; i + 1 < fields.length; i += 2) {
    const value = fields[i + 1]!;
    switch (fields[i]) {
      case "k":
        key = decodeURIComponent(value);
        break;
      case "s":
        firstSeq = Number(value);
        break;
      case "n":
        count = Number(value);
        break;
    }
  }
  // A stream id is `<ms>-<n>`, the ms being Redis's clock when the append ran.
  return { offset: id, key, firstSeq, count, time: Number.parseInt(id, 10) };
}

export class RedisEventFeeds implements EventFeeds {
  constructor(
    private readonly redis: RedisClient,
    /** The layout in force (a cluster changes it after the store opens). */
    private readonly layout: () => RedisLayout,
  ) {}

  read(persistenceId: string, shard: number, offset: string, limit: number): Promise<FeedEntry[]> {
    return guarded("event feed read", async () => {
      const entries = (await this.redis.xrange(this.layout().feedKey(shard, persistenceId), `(${offset}`, "+", "COUNT", limit)) as [string, string[]][];
      return entries.map(decodeFeedEntry);
    });
  }

  offset(cursor: FeedCursor, fromStart: boolean): Promise<string> {
    return guarded("event feed offset read", async () => {
      const hash = this.layout().feedOffsetsKey(cursor.shard);
      const field = offsetField(cursor);
      const stored = await this.redis.hget(hash, field);
      if (stored !== null) return stored;
      let start = BEFORE_FIRST;
      if (!fromStart) {
        const newest = (await this.redis.xrevrange(this.layout().feedKey(cursor.shard, cursor.persistenceId), "+", "-", "COUNT", 1)) as [string, string[]][];
        start = newest[0]?.[0] ?? BEFORE_FIRST;
      }
      // Another node may have started the cursor meanwhile (a shard moving): the first start stands.
      await this.redis.hsetnx(hash, field, start);
      return (await this.redis.hget(hash, field)) ?? start;
    });
  }

  commit(cursor: FeedCursor, offset: string): Promise<void> {
    return guarded("event feed offset write", async () => {
      await this.redis.hset(this.layout().feedOffsetsKey(cursor.shard), offsetField(cursor), offset);
    });
  }

  parked(cursor: FeedCursor): Promise<Map<string, number>> {
    return guarded("event feed parked read", async () => {
      const flat = await this.redis.hgetall(this.#parkedKey(cursor));
      return new Map(Object.entries(flat).map(([key, seq]) => [key, Number(seq)]));
    });
  }

  park(cursor: FeedCursor, key: string, fromSeq: number): Promise<void> {
    return guarded("event feed park", async () => {
      await this.redis.hset(this.#parkedKey(cursor), key, String(fromSeq));
    });
  }

  unpark(cursor: FeedCursor, key: string): Promise<void> {
    return guarded("event feed unpark", async () => {
      await this.redis.hdel(this.#parkedKey(cursor), key);
    });
  }

  #parkedKey(cursor: FeedCursor): string {
    return this.layout().feedParkedKey(cursor.shard, cursor.subscription, cursor.persistenceId);
  }
}

/** The offsets hash's field of a cursor: subscription and persistence id, each encoded (no "/" inside either). */
function offsetField(cursor: FeedCursor): string {
  return `${tagPart(cursor.subscription)}/${tagPart(cursor.persistenceId)}`;
}
