// The storage interface every backend implements: the event journal, snapshots,
// value-entity state, the outbox, topics and the module store. Backends: embedded (LMDB) and Redis.
// Everything stored is opaque bytes; the host never decodes user messages.
import type { EventFeeds } from "./event-feeds.js";

/** One entity's identity in storage: its persistence id (the entity type) and key. */
export interface EntityId {
  readonly persistenceId: string;
  readonly key: string;
}

export interface JournalEvent {
  /** Fully qualified protobuf message name of the payload. */
  readonly type: string;
  readonly payload: Uint8Array;
}

export interface StoredEvent extends JournalEvent {
  /** 1-based, gap-free per entity. */
  readonly seq: number;
}

export interface Snapshot {
  /** Sequence number of the last event folded into `state`. */
  readonly seq: number;
  readonly state: Uint8Array;
}

export interface Recovered {
  readonly snapshot: Snapshot | undefined;
  /** Events after the snapshot (or all events), in order. */
  readonly events: StoredEvent[];
  /** The last sequence number in the journal (0 for a new entity). */
  readonly lastSeq: number;
}

/**
 * An asynchronous side effect a command asked for. It is stored in the same atomic write as
 * the command's events or value (its "outbox"), so a crash after the reply cannot forget it:
 * whichever node owns the entity's shard delivers it, at least once, and deletes it.
 */
export interface OutboxEntry {
  /** Unique, and the idempotency key every delivery of it carries (a Keystate target applies it once). */
  readonly id: string;
  readonly service: string;
  readonly method: string;
  readonly payload: Uint8Array;
  /** How many forwards / side effects deep its delivery is. */
  readonly hops: number;
  /** When the command stored it (ms since the epoch). */
  readonly createdAt: number;
  /**
   * The outbox field it is stored under (default: `id`). A named timer's slot is one per
   * (issuer, name), so scheduling the name again replaces the entry and cancelling deletes it.
   */
  readonly slot?: string;
  /** Timers: not delivered before this time (ms since the epoch). */
  readonly dueAt?: number;
  /** Publications: appended to this topic instead of called (`service` and `method` are empty). */
  readonly publish?: PublishTarget;
}

/** Where and how an outbox entry publishes (the CloudEvents attributes besides id and time). */
export interface PublishTarget {
  readonly topic: string;
  /** Fully qualified message name of the payload. */
  readonly type: string;
  readonly partitionKey: string;
  /** Who published: "<module>/<service>" or "<persistence id>/<entity key>". */
  readonly source: string;
}

/** The reply a command with an idempotency key gave, stored with the command's write. */
export interface IdempotentReply {
  readonly key: string;
  readonly reply: Uint8Array;
}

/** What a command's write stores besides its events or value, in the same atomic write. */
export interface WriteExtras {
  readonly outbox?: readonly OutboxEntry[];
  /** Outbox slots deleted in the same write (named timers cancelled). */
  readonly cancelled?: readonly string[];
  readonly replies?: readonly IdempotentReply[];
}

/**
 * How long, and how many per entity, idempotency keys are remembered: a retry with a key
 * within both bounds gets the stored reply; older keys are forgotten (oldest first).
 */
export const IDEMPOTENCY_WINDOW_MS = 24 * 60 * 60 * 1000;
export const IDEMPOTENCY_KEYS_PER_ENTITY = 1000;

/** The bounds in force (`keystate serve --idempotency-window-ms`, `--idempotency-keys-per-entity`). */
export interface IdempotencyLimits {
  readonly windowMs: number;
  readonly keysPerEntity: number;
}

export const DEFAULT_IDEMPOTENCY_LIMITS: IdempotencyLimits = { windowMs: IDEMPOTENCY_WINDOW_MS, keysPerEntity: IDEMPOTENCY_KEYS_PER_ENTITY };

/** The replies stored under idempotency keys, per entity. */
export interface IdempotencyStore {
  /** For each key, the stored reply, or undefined (never seen, or forgotten). */
  replies(id: EntityId, keys: readonly string[]): Promise<Array<Uint8Array | undefined>>;
}

/** The stored outboxes: one per shard (the embedded store has one shard, 0). */
export interface Outbox {
  /** Up to `limit` undelivered entries of `shard`, oldest first. */
  pending(shard: number, limit: number): Promise<OutboxEntry[]>;
  /**
   * Delivered (or given up): removed, unless its slot now holds another entry (a named timer
   * scheduled again meanwhile). Unfenced: deleting a delivered entry is right whoever does it.
   */
  done(shard: number, entry: Pick<OutboxEntry, "id" | "slot">): Promise<void>;
  /**
   * Stores entries (and deletes `cancelled` slots) on their own, not with an entity's write:
   * the effects of actions and replicated entities, whose state is not journaled with them.
   */
  add(shard: number, entries: readonly OutboxEntry[], cancelled?: readonly string[]): Promise<void>;
  /** True while the entry's slot still holds it: a timer checks this before it fires (it may have been cancelled or replaced since). */
  holds(shard: number, entry: Pick<OutboxEntry, "id" | "slot">): Promise<boolean>;
}

export interface Journal {
  /**
   * Appends `events` as seq expectedSeq+1, expectedSeq+2, ... atomically.
   * Rejects with KeystateError SEQUENCE_CONFLICT, writing nothing, when the journal's
   * last seq is not `expectedSeq`. Resolves only once the events are durable. `extras`
   * (outbox entries, idempotent replies) are stored in the same atomic write (events may then be empty).
   */
  append(id: EntityId, expectedSeq: number, events: readonly JournalEvent[], extras?: WriteExtras): Promise<void>;
  /** Stores a snapshot; a snapshot older than the stored one is ignored. */
  saveSnapshot(id: EntityId, snapshot: Snapshot): Promise<void>;
  /** The latest snapshot plus the events after it. */
  recover(id: EntityId): Promise<Recovered>;
  /** Events with seq >= fromSeq, in order, at most `limit` of them (default: all) (for audits, projections, inspection and tests). */
  readEvents(id: EntityId, fromSeq: number, limit?: number): Promise<StoredEvent[]>;
  /** The journal's last sequence number (0 for a new entity), without reading any event. */
  lastSeq(id: EntityId): Promise<number>;
}

export interface VersionedValue {
  /** undefined when never written or deleted. */
  readonly value: Uint8Array | undefined;
  /** Grows by one with every write or delete; 0 for an entity never written. */
  readonly version: number;
}

/** Value (key-value) entity state, and CRDT state. */
export interface ValueStore {
  get(id: EntityId): Promise<Uint8Array | undefined>;
  /** The value and its version (value entities write with the version they read). */
  read(id: EntityId): Promise<VersionedValue>;
  /**
   * Stores `value` (undefined: deletes it) iff the stored version is `expectedVersion`, and
   * resolves the new version. Rejects with SEQUENCE_CONFLICT, writing nothing, otherwise:
   * a writer that read a value another node has since replaced can never overwrite it.
   * `extras` (outbox entries, idempotent replies) are stored in the same atomic write.
   */
  write(id: EntityId, value: Uint8Array | undefined, expectedVersion: number, extras?: WriteExtras): Promise<number>;
  /** Unconditional writes (CRDT state: one writer per shard, merged, not versioned). */
  put(id: EntityId, value: Uint8Array): Promise<void>;
  delete(id: EntityId): Promise<void>;
}

/** Every stored copy of one replicated entity, and its shard's change counters per writer. */
export interface ReplicaCopies {
  readonly shard: number;
  /** One copy per writer (each a whole replica, as `encodeCrdtState` made it); their join is the entity's state. */
  readonly copies: Uint8Array[];
  /** Per writer: how many times it has saved any entity of this shard (empty on a single node). */
  readonly counters: Map<string, number>;
}

/**
 * Replicated (CRDT) entity state. Every node that writes an entity keeps its own copy, which
 * only it writes (no fencing, no version check: many writers at once is the point); a read
 * joins all copies. Each save also counts, per writer and shard, so a node can tell from
 * the counters alone that it missed a change (anti-entropy).
 */
export interface ReplicaStore {
  load(id: EntityId): Promise<ReplicaCopies>;
  /** Stores `writer`'s copy; resolves `writer`'s change counter of the entity's shard after this save (0 on a single node). */
  save(id: EntityId, writer: string, state: Uint8Array): Promise<number>;
  /** One writer's copy (what anti-entropy pulls). */
  copyOf(id: EntityId, writer: string): Promise<Uint8Array | undefined>;
  /** A shard's change counters per writer (empty on a single node). */
  shardCounters(shard: number): Promise<Map<string, number>>;
}

/**
 * What a cluster tells the store about shard ownership: the fencing epoch this node holds
 * for a shard (undefined when it holds none: the write is refused before touching
 * storage), and a report when storage refused a write because the epoch is stale.
 */
export interface ShardFencing {
  epochFor(shard: number): number | undefined;
  refused(shard: number, epoch: number): void;
}

export interface ModuleVersionInfo {
  readonly name: string;
  readonly version: number;
  /** sha256 of the uploaded bytes, hex. */
  readonly hash: string;
  readonly size: number;
  /** Milliseconds since the epoch. */
  readonly deployedAt: number;
}

export interface StoredModuleSummary {
  readonly name: string;
  /** The version that serves calls; undefined when the module is undeployed. */
  readonly activeVersion: number | undefined;
  readonly versions: ModuleVersionInfo[];
}

export interface AddVersionOptions {
  /** Make the new version the active one in the same atomic write. */
  readonly activate?: boolean;
  /** Store this deploy-time artifact of the version in the same atomic write. */
  readonly artifact?: ModuleArtifact;
  /**
   * Keep at most this many newest versions (the new one included), and the active one:
   * older versions, their uploads and artifacts, are removed in the same atomic write.
   * Absent or 0: every version is kept.
   */
  readonly keepVersions?: number;
}

/**
 * What a deploy made of a version's uploaded bytes (the instrumented module), kept next to
 * them so a node that loads the version later skips validating, instrumenting and hashing.
 * The store keeps one per (version, key) and never interprets it; the uploaded bytes stay
 * what users download and roll back to.
 */
export interface ModuleArtifact {
  /** What determines the artifact (instrumenter version, memory cap, fuel metering); opaque here. */
  readonly key: string;
  /** sha256 of the uploaded bytes it was made from, hex, and their length. */
  readonly uploadHash: string;
  readonly uploadSize: number;
  readonly bytes: Uint8Array;
  /** Whatever else the maker needs back (JSON); opaque here. */
  readonly detail: string;
}

export interface ModuleStore {
  /**
   * Stores the bytes as the next version of `name` (1, 2, ...) and returns its info. Does not
   * activate it unless `options.activate`: then the new version is also made the active one
   * in the same atomic write (one durable commit instead of addVersion + setActive).
   */
  addVersion(name: string, bytes: Uint8Array, hash: string, options?: AddVersionOptions): Promise<ModuleVersionInfo>;
  /** Makes `version` the active one; undefined undeploys the module (its versions stay). */
  setActive(name: string, version: number | undefined): Promise<void>;
  getBytes(name: string, version: number): Promise<Uint8Array | undefined>;
  /** The artifact stored for `version` under exactly `key`, if any. */
  getArtifact(name: string, version: number, key: string): Promise<ModuleArtifact | undefined>;
  /** Stores (or replaces) the artifact of an existing version under `artifact.key`. */
  putArtifact(name: string, version: number, artifact: ModuleArtifact): Promise<void>;
  list(): Promise<StoredModuleSummary[]>;
}

export interface Store {
  readonly kind: "embedded" | "redis";
  readonly journal: Journal;
  readonly values: ValueStore;
  readonly replicas: ReplicaStore;
  readonly outbox: Outbox;
  readonly idempotency: IdempotencyStore;
  readonly modules: ModuleStore;
  /** Topics (Redis Streams with consumer groups; embedded: an LMDB log). */
  readonly topics: Topics;
  /** Per shard and event-sourced type, the appends that wrote events, in order (what event-log subscriptions read). */
  readonly eventFeeds: EventFeeds;
  /** Resolves when the backend answers; rejects with STORAGE_UNAVAILABLE otherwise. */
  ping(): Promise<void>;
  close(): Promise<void>;
}

/** A message in a topic, as a subscriber's delivery sees it (CloudEvents attributes included). */
export interface TopicMessage {
  /** Its position in the topic (a Redis stream id; embedded: a zero-padded sequence): what is acknowledged. */
  readonly offset: string;
  /** CloudEvents id: the publishing outbox entry's id, the same on every try of one publication. */
  readonly id: string;
  readonly source: string;
  readonly type: string;
  /** When it was published (ms since the epoch). */
  readonly time: number;
  readonly partitionKey: string;
  readonly payload: Uint8Array;
}

/** A message handed to a subscription's consumer. */
export interface TopicDelivery extends TopicMessage {
  /**
   * How many times the message has been handed to a consumer of this subscription, this time
   * included (1: the first). A redelivery after a crash or a hand-off counts, so a message that
   * takes its handler's process down is still dead-lettered after its subscription's attempts.
   */
  readonly deliveries: number;
}

/** A message a subscription gave up on, with why. */
export interface DeadLetter {
  /** Its position in the subscription's dead-letter log. */
  readonly offset: string;
  readonly message: TopicMessage;
  /** The last failure's message. */
  readonly reason: string;
  /** Deliveries tried before it was given up. */
  readonly attempts: number;
  /** When it was dead-lettered (ms since the epoch). */
  readonly at: number;
}

/**
 * Topics and their subscriptions' positions. Redis: one stream per topic
 * (`ks:{t:<cluster>:<topic>}`), one consumer group per subscription, a dead-letter stream per
 * subscription in the topic's hash slot. Embedded: an LMDB log per topic, positions and
 * pending messages per subscription. The subscription runner (host/eventing) builds on these.
 */
export interface Topics {
  /** Appends `message` to `topic`; resolves its offset. */
  publish(topic: string, message: Omit<TopicMessage, "offset">): Promise<string>;
  /**
   * Joins `subscription` of `topic` as `consumer`, creating the subscription first when it is
   * new: from the oldest retained message (`fromStart`) or from the next one published.
   */
  consume(topic: string, subscription: string, consumer: string, options: { readonly fromStart: boolean }): Promise<TopicConsumer>;
  /** The subscription's dead letters, oldest first, at most `limit`. */
  deadLetters(topic: string, subscription: string, limit: number): Promise<DeadLetter[]>;
}

/**
 * One consumer of one subscription. A message it is handed stays pending (redelivered to this
 * consumer by `pending`, or claimed by another) until it is acknowledged or dead-lettered.
 */
export interface TopicConsumer {
  /** This consumer's pending messages, oldest first, at most `count`; each one counts as delivered again. */
  pending(count: number): Promise<TopicDelivery[]>;
  /**
   * Up to `count` messages no consumer of the subscription has had, in publication order,
   * waiting up to `blockMs` for the first; [] when none came or the consumer was closed.
   */
  next(count: number, blockMs: number): Promise<TopicDelivery[]>;
  /** Done with these messages (handled): they are never delivered to this subscription again. */
  ack(offsets: readonly string[]): Promise<void>;
  /** Appends `message` to the dead-letter log with `reason` and `attempts`, and acknowledges it, in one atomic step. */
  deadLetter(message: TopicMessage, reason: string, attempts: number): Promise<void>;
  /**
   * Takes over the messages other consumers of the subscription were handed and have not
   * acknowledged for at least `minIdleMs` (a former owner's, a crashed process's): they become
   * this consumer's pending messages. Resolves how many. (One consumer per subscription on
   * the embedded store: always 0.)
   */
  claim(minIdleMs: number): Promise<number>;
  /** Wakes a waiting `next` (it resolves []) and frees what the consumer holds; the other methods keep working. */
  close(): Promise<void>;
}
