// Event feeds in the embedded store (one shard, 0): db `event-feed` keyed [persistence id, n]
// (n = 1, 2, ... per persistence id, ordered) -> [entity key, first seq, count, time], written
// by the journal inside its append transaction; db `event-feed-cursors` holds the offsets,
// ["o", subscription, pid] -> n, and the parked entities, ["p", subscription, pid, key] -> seq.
import type { Database, RootDatabase } from "lmdb";
import type { EventFeeds, FeedCursor, FeedEntry } from "./event-feeds.js";
import { guarded } from "./store-support.js";
import type { EntityId } from "./types.js";

type FeedRow = [key: string, firstSeq: number, count: number, time: number];
type CursorKey = ["o", string, string] | ["p", string, string, string];

const LAST = Number.MAX_SAFE_INTEGER;

export class EmbeddedEventFeeds implements EventFeeds {
  constructor(
    private readonly env: RootDatabase,
    private readonly feed: Database<FeedRow, [string, number]>,
    private readonly cursors: Database<number, CursorKey>,
  ) {}

  /** Inside the append's write transaction: one entry for `count` events of `id` from `firstSeq`. */
  record(id: EntityId, firstSeq: number, count: number): void {
    this.feed.put([id.persistenceId, this.#last(id.persistenceId) + 1], [id.key, firstSeq, count, Date.now()]);
  }

  read(persistenceId: string, _shard: number, offset: string, limit: number): Promise<FeedEntry[]> {
    return guarded("event feed read", () =>
      [...this.feed.getRange({ start: [persistenceId, Number(offset) + 1], end: [persistenceId, LAST], limit })].map(({ key, value }) => ({
        offset: String(key[1]),
        key: value[0],
        firstSeq: value[1],
        count: value[2],
        time: value[3],
      })),
    );
  }

  offset(cursor: FeedCursor, fromStart: boolean): Promise<string> {
    return guarded("event feed offset read", async () => {
      const key: CursorKey = ["o", cursor.subscription, cursor.persistenceId];
      const n = await this.env.transaction(() => {
        const stored = this.cursors.get(key);
        if (stored !== undefined) return stored;
        const start = fromStart ? 0 : this.#last(cursor.persistenceId);
        this.cursors.put(key, start);
        return start;
      });
      await this.env.flushed;
      return String(n);
    });
  }

  commit(cursor: FeedCursor, offset: string): Promise<void> {
    return this.#write("event feed offset write", ["o", cursor.subscription, cursor.persistenceId], Number(offset));
  }

  parked(cursor: FeedCursor): Promise<Map<string, number>> {
    return guarded("event feed parked read", () => {
      const parked = new Map<string, number>();
      const range = this.cursors.getRange({ start: ["p", cursor.subscription, cursor.persistenceId], end: ["p", cursor.subscription, `${cursor.persistenceId}\uffff`] });
      for (const { key, value } of range) {
        if (key[0] === "p" && key[2] === cursor.persistenceId) parked.set(key[3], value);
      }
      return parked;
    });
  }

  park(cursor: FeedCursor, key: string, fromSeq: number): Promise<void> {
    return this.#write("event feed park", ["p", cursor.subscription, cursor.persistenceId, key], fromSeq);
  }

  unpark(cursor: FeedCursor, key: string): Promise<void> {
    return this.#write("event feed unpark", ["p", cursor.subscription, cursor.persistenceId, key], undefined);
  }

  /** Durable, as every embedded write is before it resolves. */
  #write(what: string, key: CursorKey, value: number | undefined): Promise<void> {
    return guarded(what, async () => {
      if (value === undefined) await this.cursors.remove(key);
      else await this.cursors.put(key, value);
      await this.env.flushed;
    });
  }

  /** The feed's newest n for `persistenceId` (0 when empty); inside a transaction or alone. */
  #last(persistenceId: string): number {
    for (const key of this.feed.getKeys({ start: [persistenceId, LAST], end: [persistenceId, 0], reverse: true, limit: 1 })) return key[1];
    return 0;
  }
}
