// The storage interface every backend implements: the event journal, snapshots,
// value-entity state and the module store. Backends: embedded (LMDB) and Redis.
// Everything stored is opaque bytes; the host never decodes user messages.

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
}

/** The reply a command with an idempotency key gave, stored with the command's write. */
export interface IdempotentReply {
  readonly key: string;
  readonly reply: Uint8Array;
}

/** What a command's write stores besides its events or value, in the same atomic write. */
export interface WriteExtras {
  readonly outbox?: readonly OutboxEntry[];
  readonly replies?: readonly IdempotentReply[];
}

/**
 * How long, and how many per entity, idempotency keys are remembered: a retry with a key
 * within both bounds gets the stored reply; older keys are forgotten (oldest first).
 */
export const IDEMPOTENCY_WINDOW_MS = 24 * 60 * 60 * 1000;
export const IDEMPOTENCY_KEYS_PER_ENTITY = 1000;

/** The replies stored under idempotency keys, per entity. */
export interface IdempotencyStore {
  /** For each key, the stored reply, or undefined (never seen, or forgotten). */
  replies(id: EntityId, keys: readonly string[]): Promise<Array<Uint8Array | undefined>>;
}

/** The stored outboxes: one per shard (the embedded store has one shard, 0). */
export interface Outbox {
  /** Up to `limit` undelivered entries of `shard`, oldest first. */
  pending(shard: number, limit: number): Promise<OutboxEntry[]>;
  /** Delivered (or given up): removed. Unfenced: deleting a delivered entry is right whoever does it. */
  done(shard: number, id: string): Promise<void>;
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
  /** Resolves when the backend answers; rejects with STORAGE_UNAVAILABLE otherwise. */
  ping(): Promise<void>;
  close(): Promise<void>;
}
