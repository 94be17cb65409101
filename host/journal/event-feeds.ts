// Event feeds: what lets a projection find new events without scanning journals. Every
// journal append that writes events also records, in the same atomic write, one entry in the
// feed of its entity type and shard: (entity key, first seq, count). A subscription reads a
// feed after its stored offset, reads the events from the entities' journals, and stores
// the offset once they are handled. Redis: a stream per (shard, persistence id) in the
// shard's slot; embedded: an LMDB db keyed [persistence id, n] (one shard, 0).

/** One append of an event-sourced entity, as the feed of its type and shard records it. */
export interface FeedEntry {
  /** Its position in the feed: what a subscription stores once it (and everything before it) is handled. */
  readonly offset: string;
  readonly key: string;
  /** The append's first sequence number; its events are firstSeq .. firstSeq + count - 1. */
  readonly firstSeq: number;
  readonly count: number;
  /** When the append was written (ms since the epoch; Redis: the server's clock). */
  readonly time: number;
}

/** Whose offset: one per subscription, event log (persistence id) and shard. */
export interface FeedCursor {
  readonly subscription: string;
  readonly persistenceId: string;
  readonly shard: number;
}

export interface EventFeeds {
  /** Up to `limit` entries of the feed of (persistenceId, shard) after `offset`, oldest first. */
  read(persistenceId: string, shard: number, offset: string, limit: number): Promise<FeedEntry[]>;
  /**
   * The cursor's stored offset. A cursor never stored before starts before the feed's first
   * entry (`fromStart`) or at its newest entry, and that start is stored at once, so a
   * restart does not move a "now" subscription forward past events it has not handled.
   */
  offset(cursor: FeedCursor, fromStart: boolean): Promise<string>;
  /** Stores `offset`: every entry up to it is handled. Unfenced: a stale writer can only move it back (redelivery), never skip. */
  commit(cursor: FeedCursor, offset: string): Promise<void>;
  /** Entities whose delivery was given up for now: entity key -> first sequence number not yet handled. */
  parked(cursor: FeedCursor): Promise<Map<string, number>>;
  /** Parks `key` from `fromSeq` on (kept until unpark): its events are delivered again from there later, never skipped. */
  park(cursor: FeedCursor, key: string, fromSeq: number): Promise<void>;
  unpark(cursor: FeedCursor, key: string): Promise<void>;
}
