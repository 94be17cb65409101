// The embedded default backend: one LMDB environment in a local data directory.
// No server to install; commits are ACID and an append's check of the expected
// sequence number and its writes happen in one write transaction.
import { mkdir } from "node:fs/promises";
import { createRequire } from "node:module";
import type { Database, RootDatabase } from "lmdb";
import { KeystateError } from "../errors.js";
import { decodeArtifact, encodeArtifact } from "./module-artifact.js";
import { EmbeddedTopics } from "./embedded-topics.js";
import { EmbeddedEventFeeds } from "./embedded-event-feeds.js";
import { decodeOutboxEntry, encodeOutboxEntry, storedIdMarker } from "./outbox-codec.js";
import { SingleCopyReplicas } from "./single-copy-replicas.js";
import { checkSeq, guarded, versionsBeyond } from "./store-support.js";
import type {
  AddVersionOptions,
  EntityId,
  Journal,
  JournalEvent,
  ModuleArtifact,
  ModuleStore,
  ModuleVersionInfo,
  IdempotencyStore,
  IdempotentReply,
  Outbox,
  OutboxEntry,
  Recovered,
  ReplicaStore,
  WriteExtras,
  Snapshot,
  StoredEvent,
  StoredModuleSummary,
  Store,
  ValueStore,
  VersionedValue,
} from "./types.js";
import { DEFAULT_IDEMPOTENCY_LIMITS, type IdempotencyLimits } from "./types.js";
import { bufferOf } from "../buffer-of.js";

// lmdb's CommonJS build: one file (with msgpackr's), where its ES module build is ~20 files
// the ESM loader resolves and reads one by one; loading it was ~20 ms faster at a node's start.
const { open } = createRequire(import.meta.url)("lmdb") as typeof import("lmdb");

// LMDB's default maximum key size is 1978 bytes; a journal key adds 8 bytes of seq.
const MAX_ENTITY_KEY_BYTES = 1900;
const MAX_TYPE_NAME_BYTES = 0xffff;
const SEQ_BYTES = 8;
const LONE_SURROGATE = /\p{Cs}/u;

type BinaryDb = Database<Buffer, Buffer>;
type TextDb = Database<string, string>;

/** The outbox (one shard, 0): entry id -> encoded entry. Written inside the callers' transactions. */
class EmbeddedOutbox implements Outbox {
  constructor(
    private readonly env: RootDatabase,
    readonly entries: TextDb,
  ) {}

  /** Inside a write transaction. */
  store(extras: WriteExtras | undefined): void {
    for (const slot of extras?.cancelled ?? []) this.entries.remove(slot);
    for (const entry of extras?.outbox ?? []) this.entries.put(entry.slot ?? entry.id, encodeOutboxEntry(entry));
  }

  holds(_shard: number, entry: Pick<OutboxEntry, "id" | "slot">): Promise<boolean> {
    return guarded("outbox read", () => this.entries.get(entry.slot ?? entry.id)?.includes(storedIdMarker(entry.id)) === true);
  }

  add(_shard: number, outbox: readonly OutboxEntry[], cancelled: readonly string[] = []): Promise<void> {
    return guarded("outbox write", () => this.env.transaction(() => this.store({ outbox, cancelled })));
  }

  pending(_shard: number, limit: number): Promise<OutboxEntry[]> {
    return guarded("outbox read", () => {
      const entries = [...this.entries.getRange()].map(({ value }) => decodeOutboxEntry(value));
      return entries.sort((a, b) => a.createdAt - b.createdAt).slice(0, limit);
    });
  }

  done(_shard: number, entry: Pick<OutboxEntry, "id" | "slot">): Promise<void> {
    const slot = entry.slot ?? entry.id;
    return guarded("outbox delete", () =>
      this.env.transaction(() => {
        // Only while the slot still holds this entry (a named timer scheduled again keeps its new one).
        if (this.entries.get(slot)?.includes(storedIdMarker(entry.id))) this.entries.remove(slot);
      }),
    );
  }
}

/**
 * Replies stored under idempotency keys: row key = entity prefix + the key's UTF-8 bytes
 * (the length-prefixed entity prefix keeps one entity's rows apart from another's), row =
 * 8-byte store time + the reply. Trimmed on write to the window and the count per entity.
 */
class EmbeddedIdempotency implements IdempotencyStore {
  constructor(
    private readonly rows: BinaryDb,
    private readonly limits: IdempotencyLimits,
  ) {}

  replies(id: EntityId, keys: readonly string[]): Promise<Array<Uint8Array | undefined>> {
    return guarded("idempotency read", () => {
      const prefix = entityPrefix(id);
      return keys.map((key) => this.rows.get(Buffer.concat([prefix, Buffer.from(key, "utf8")]))?.subarray(SEQ_BYTES));
    });
  }

  /** Inside a write transaction: stores `replies` of the entity and forgets what is past the bounds. */
  store(id: EntityId, replies: readonly IdempotentReply[] | undefined): void {
    if (replies === undefined || replies.length === 0) return;
    const prefix = entityPrefix(id);
    const now = Date.now();
    for (const { key, reply } of replies) {
      const row = Buffer.allocUnsafe(SEQ_BYTES + reply.length);
      writeSeq(row, 0, now);
      row.set(reply, SEQ_BYTES);
      this.rows.put(Buffer.concat([prefix, Buffer.from(key, "utf8")]), row);
    }
    const stored = [...this.rows.getRange({ start: prefix, end: Buffer.concat([prefix, Buffer.from([0xff, 0xff, 0xff, 0xff])]) })]
      .filter(({ key }) => key.subarray(0, prefix.length).equals(prefix))
      .map(({ key, value }) => ({ key, at: readSeq(value, 0) }))
      .sort((a, b) => a.at - b.at);
    const over = stored.length - this.limits.keysPerEntity;
    stored.forEach((row, i) => {
      if (i < over || now - row.at > this.limits.windowMs) this.rows.remove(row.key);
    });
  }
}


/** What the module-metadata db stores per module name (msgpack-encoded; small). */
interface ModuleRecord {
  name: string;
  activeVersion: number | null;
  versions: ModuleVersionInfo[];
}

/**
 * Both environments' key prefix for one entity: u16 length + utf8 persistence id,
 * u16 length + utf8 key. Length prefixes make it binary-safe (no separator a string
 * could contain) and keep an entity's rows contiguous, so a range read is one scan.
 */
function lengthPrefixed(parts: readonly string[]): Buffer {
  const encoded = parts.map((part) => {
    if (LONE_SURROGATE.test(part)) {
      throw new KeystateError("INVALID_REQUEST", `storage key part is not well-formed Unicode: ${JSON.stringify(part)}`);
    }
    return Buffer.from(part, "utf8");
  });
  const total = encoded.reduce((sum, b) => sum + 2 + b.length, 0);
  if (total > MAX_ENTITY_KEY_BYTES) {
    throw new KeystateError("INVALID_REQUEST", `storage key is ${total} bytes; the embedded store allows ${MAX_ENTITY_KEY_BYTES}`);
  }
  const out = Buffer.allocUnsafe(total);
  let at = 0;
  for (const b of encoded) {
    at = out.writeUInt16BE(b.length, at);
    at += b.copy(out, at);
  }
  return out;
}

function entityPrefix(id: EntityId): Buffer {
  return lengthPrefixed([id.persistenceId, id.key]);
}

/** Prefix + big-endian seq: byte order equals numeric order, so ranges come back in seq order. */
function withSeq(prefix: Buffer, seq: number): Buffer {
  const out = Buffer.allocUnsafe(prefix.length + SEQ_BYTES);
  prefix.copy(out, 0);
  writeSeq(out, prefix.length, seq);
  return out;
}

function writeSeq(buf: Buffer, at: number, seq: number): void {
  buf.writeUInt32BE(Math.floor(seq / 0x1_0000_0000), at);
  buf.writeUInt32BE(seq >>> 0, at + 4);
}

function readSeq(buf: Buffer, at: number): number {
  return buf.readUInt32BE(at) * 0x1_0000_0000 + buf.readUInt32BE(at + 4);
}

/** Journal row value: u16 length + utf8 type name, then the payload bytes as they came. */
function encodeEvent(event: JournalEvent): Buffer {
  const type = Buffer.from(event.type, "utf8");
  if (type.length > MAX_TYPE_NAME_BYTES) throw new KeystateError("INVALID_REQUEST", "event type name is too long");
  const out = Buffer.allocUnsafe(2 + type.length + event.payload.length);
  out.writeUInt16BE(type.length, 0);
  type.copy(out, 2);
  out.set(event.payload, 2 + type.length);
  return out;
}

function decodeEvent(seq: number, row: Buffer): StoredEvent {
  const typeLength = row.readUInt16BE(0);
  return {
    seq,
    type: row.toString("utf8", 2, 2 + typeLength),
    payload: row.subarray(2 + typeLength),
  };
}

class EmbeddedJournal implements Journal {
  constructor(
    private readonly env: RootDatabase,
    private readonly events: BinaryDb,
    private readonly snapshots: BinaryDb,
    private readonly outbox: EmbeddedOutbox,
    private readonly idempotency: EmbeddedIdempotency,
    private readonly feeds: EmbeddedEventFeeds,
  ) {}

  append(id: EntityId, expectedSeq: number, events: readonly JournalEvent[], extras?: WriteExtras): Promise<void> {
    return guarded("journal append", async () => {
      checkSeq(expectedSeq, "expected seq");
      const prefix = entityPrefix(id);
      // Encode before entering the transaction: the write lock is held while the callback runs.
      const rows = events.map(encodeEvent);
      const journalSeq = await this.env.transaction(() => {
        const last = this.lastSeqInTxn(prefix);
        if (last === expectedSeq) {
          rows.forEach((row, i) => this.events.put(withSeq(prefix, last + 1 + i), row));
          if (rows.length > 0) this.feeds.record(id, last + 1, rows.length);
          this.outbox.store(extras);
          this.idempotency.store(id, extras?.replies);
        }
        return last;
      });
      if (journalSeq !== expectedSeq) {
        throw new KeystateError(
          "SEQUENCE_CONFLICT",
          `append to ${id.persistenceId}/${id.key} expected seq ${expectedSeq} but the journal is at ${journalSeq}`,
        );
      }
      // With overlapping sync (lmdb-js's default on Linux) a commit resolves once visible;
      // waiting for `flushed` makes a resolved append durable on disk, as the interface promises.
      await this.env.flushed;
    });
  }

  saveSnapshot(id: EntityId, snapshot: Snapshot): Promise<void> {
    return guarded("snapshot save", async () => {
      checkSeq(snapshot.seq, "snapshot seq");
      const prefix = entityPrefix(id);
      const row = Buffer.allocUnsafe(SEQ_BYTES + snapshot.state.length);
      writeSeq(row, 0, snapshot.seq);
      row.set(snapshot.state, SEQ_BYTES);
      const journalSeq = await this.env.transaction(() => {
        const last = this.lastSeqInTxn(prefix);
        if (snapshot.seq > last) return last;
        const stored = this.snapshots.get(prefix);
        // An older snapshot never replaces a newer one (a slow writer may finish late).
        if (stored === undefined || readSeq(stored, 0) <= snapshot.seq) this.snapshots.put(prefix, row);
        return last;
      });
      if (snapshot.seq > journalSeq) {
        throw new KeystateError("INVALID_REQUEST", `snapshot seq ${snapshot.seq} is beyond the journal's last seq ${journalSeq}`);
      }
      await this.env.flushed;
    });
  }

  recover(id: EntityId): Promise<Recovered> {
    return guarded("journal recover", () => {
      const prefix = entityPrefix(id);
      const stored = this.snapshots.get(prefix);
      const snapshot: Snapshot | undefined =
        stored === undefined ? undefined : { seq: readSeq(stored, 0), state: stored.subarray(SEQ_BYTES) };
      // The snapshot is read first; events only grow, so "snapshot + events after it" stays consistent.
      const events: StoredEvent[] = [];
      const range = this.events.getRange({
        start: withSeq(prefix, (snapshot?.seq ?? 0) + 1),
        end: withSeq(prefix, Number.MAX_SAFE_INTEGER),
      });
      for (const { key, value } of range) events.push(decodeEvent(readSeq(key, prefix.length), value));
      const lastSeq = events.length > 0 ? events[events.length - 1]!.seq : (snapshot?.seq ?? 0);
      return { snapshot, events, lastSeq };
    });
  }

  readEvents(id: EntityId, fromSeq: number, limit?: number): Promise<StoredEvent[]> {
    return guarded("journal read", () => {
      const prefix = entityPrefix(id);
      const range = this.events.getRange({ start: withSeq(prefix, Math.max(1, fromSeq)), end: withSeq(prefix, Number.MAX_SAFE_INTEGER), limit });
      return [...range].map(({ key, value }) => decodeEvent(readSeq(key, prefix.length), value));
    });
  }

  lastSeq(id: EntityId): Promise<number> {
    return guarded("journal read", () => this.lastSeqInTxn(entityPrefix(id)));
  }

  /** Highest seq stored for the entity (0 when none); inside a write transaction, or alone as a read. */
  private lastSeqInTxn(prefix: Buffer): number {
    const newest = this.events.getKeys({
      start: withSeq(prefix, Number.MAX_SAFE_INTEGER),
      end: withSeq(prefix, 0),
      reverse: true,
      limit: 1,
    });
    for (const key of newest) return readSeq(key, prefix.length);
    return 0;
  }
}

/** Values in one db; their versions (8-byte big-endian) in another, so value rows stay the bare bytes. */
class EmbeddedValues implements ValueStore {
  constructor(
    private readonly env: RootDatabase,
    private readonly values: BinaryDb,
    private readonly versions: BinaryDb,
    private readonly outbox: EmbeddedOutbox,
    private readonly idempotency: EmbeddedIdempotency,
  ) {}

  get(id: EntityId): Promise<Uint8Array | undefined> {
    return guarded("value get", () => this.values.get(entityPrefix(id)));
  }

  read(id: EntityId): Promise<VersionedValue> {
    return guarded("value get", () => {
      const key = entityPrefix(id);
      return { value: this.values.get(key), version: this.#version(key) };
    });
  }

  write(id: EntityId, value: Uint8Array | undefined, expectedVersion: number, extras?: WriteExtras): Promise<number> {
    return guarded("value write", async () => {
      checkSeq(expectedVersion, "expected version");
      const key = entityPrefix(id);
      const outcome = await this.env.transaction(() => {
        const current = this.#version(key);
        if (current !== expectedVersion) return { ok: false, version: current };
        this.#store(key, value, current + 1);
        this.outbox.store(extras);
        this.idempotency.store(id, extras?.replies);
        return { ok: true, version: current + 1 };
      });
      if (!outcome.ok) {
        throw new KeystateError("SEQUENCE_CONFLICT", `value write to ${id.persistenceId}/${id.key} expected version ${expectedVersion} but the store is at ${outcome.version}`);
      }
      await this.env.flushed;
      return outcome.version;
    });
  }

  put(id: EntityId, value: Uint8Array): Promise<void> {
    return this.#unconditional(id, value, "value put");
  }

  delete(id: EntityId): Promise<void> {
    return this.#unconditional(id, undefined, "value delete");
  }

  #unconditional(id: EntityId, value: Uint8Array | undefined, what: string): Promise<void> {
    return guarded(what, async () => {
      const key = entityPrefix(id);
      await this.env.transaction(() => this.#store(key, value, this.#version(key) + 1));
      await this.env.flushed;
    });
  }

  #version(key: Buffer): number {
    const stored = this.versions.get(key);
    return stored === undefined ? 0 : readSeq(stored, 0);
  }

  /** Inside a write transaction. A delete keeps the version row, so versions only grow. */
  #store(key: Buffer, value: Uint8Array | undefined, version: number): void {
    if (value === undefined) this.values.remove(key);
    else this.values.put(key, bufferOf(value));
    this.versions.put(key, withSeq(Buffer.alloc(0), version));
  }
}

/** One artifact row per (module, artifact key, version). */
function artifactRowKey(name: string, version: number, key: string): Buffer {
  return withSeq(lengthPrefixed([name, key]), version);
}

class EmbeddedModules implements ModuleStore {
  constructor(
    private readonly env: RootDatabase,
    private readonly records: Database<ModuleRecord, Buffer>,
    private readonly bytes: BinaryDb,
    private readonly artifacts: BinaryDb,
  ) {}

  addVersion(name: string, bytes: Uint8Array, hash: string, options?: AddVersionOptions): Promise<ModuleVersionInfo> {
    return guarded("module add", async () => {
      const nameKey = lengthPrefixed([name]);
      const deployedAt = Date.now();
      const info = await this.env.transaction(() => {
        const record = this.records.get(nameKey) ?? { name, activeVersion: null, versions: [] };
        const version = (record.versions.at(-1)?.version ?? 0) + 1;
        const added: ModuleVersionInfo = { name, version, hash, size: bytes.length, deployedAt };
        this.bytes.put(withSeq(nameKey, version), bufferOf(bytes));
        if (options?.artifact) this.artifacts.put(artifactRowKey(name, version, options.artifact.key), encodeArtifact(options.artifact));
        const activeVersion = options?.activate === true ? version : record.activeVersion;
        const versions = [...record.versions, added];
        const removed = versionsBeyond(versions.map((v) => v.version), options?.keepVersions, activeVersion);
        if (removed.size > 0) this.#removeVersions(nameKey, removed);
        this.records.put(nameKey, { ...record, activeVersion, versions: versions.filter((v) => !removed.has(v.version)) });
        return added;
      });
      await this.env.flushed;
      return info;
    });
  }

  /** Deletes the uploads and artifacts (under every key) of `versions`; inside a write transaction. */
  #removeVersions(nameKey: Buffer, versions: ReadonlySet<number>): void {
    for (const version of versions) this.bytes.remove(withSeq(nameKey, version));
    // An artifact row is (name, artifact key, version): every row of this module starts with
    // its length-prefixed name, and no other module's does. Listed first, removed after.
    const end = Buffer.concat([nameKey, Buffer.from([0xff])]);
    const rows = [...this.artifacts.getKeys({ start: nameKey, end })];
    for (const key of rows) {
      if (versions.has(readSeq(key, key.length - SEQ_BYTES))) this.artifacts.remove(key);
    }
  }

  setActive(name: string, version: number | undefined): Promise<void> {
    return guarded("module activate", async () => {
      const nameKey = lengthPrefixed([name]);
      const found = await this.env.transaction(() => {
        const record = this.records.get(nameKey);
        if (record === undefined) return false;
        if (version !== undefined && !record.versions.some((v) => v.version === version)) return false;
        this.records.put(nameKey, { ...record, activeVersion: version ?? null });
        return true;
      });
      if (!found) throw new KeystateError("MODULE_NOT_FOUND", `no module ${name}${version === undefined ? "" : ` version ${version}`}`);
      await this.env.flushed;
    });
  }

  getBytes(name: string, version: number): Promise<Uint8Array | undefined> {
    return guarded("module read", () => this.bytes.get(withSeq(lengthPrefixed([name]), version)));
  }

  getArtifact(name: string, version: number, key: string): Promise<ModuleArtifact | undefined> {
    return guarded("module artifact read", () => {
      // Not getBinaryFast, though `get` makes a new zeroed buffer for every value over 32 KiB
      // (the cart's ~90 KB row: ~240 us against ~160 us on this VM, mostly page faults;
      // bench/RESULTS.md): lmdb's reused read buffer grows to twice the largest value read and
      // never shrinks, and a JavaScript component's artifact is megabytes.
      const row = this.artifacts.get(artifactRowKey(name, version, key));
      return row === undefined ? undefined : decodeArtifact(row);
    });
  }

  putArtifact(name: string, version: number, artifact: ModuleArtifact): Promise<void> {
    return guarded("module artifact write", async () => {
      await this.artifacts.put(artifactRowKey(name, version, artifact.key), encodeArtifact(artifact));
      await this.env.flushed;
    });
  }

  list(): Promise<StoredModuleSummary[]> {
    return guarded("module list", () => {
      const summaries: StoredModuleSummary[] = [];
      for (const { value } of this.records.getRange({})) {
        summaries.push({ name: value.name, activeVersion: value.activeVersion ?? undefined, versions: value.versions });
      }
      return summaries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    });
  }
}

/** The embedded store: journal, snapshots, values and modules in one LMDB environment. */
export class EmbeddedStore implements Store {
  readonly kind = "embedded" as const;
  readonly journal: Journal;
  readonly values: ValueStore;
  readonly replicas: ReplicaStore;
  readonly outbox: EmbeddedOutbox;
  readonly idempotency: IdempotencyStore;
  readonly modules: ModuleStore;
  readonly topics: EmbeddedTopics;
  readonly eventFeeds: EmbeddedEventFeeds;
  private closed = false;

  private constructor(
    private readonly env: RootDatabase,
    idempotencyLimits: IdempotencyLimits,
  ) {
    const binary = { encoding: "binary", keyEncoding: "binary" } as const;
    this.outbox = new EmbeddedOutbox(env, env.openDB<string, string>("outbox", { encoding: "string", keyEncoding: "ordered-binary" }));
    const idempotency = new EmbeddedIdempotency(env.openDB("idempotency", binary), idempotencyLimits);
    this.idempotency = idempotency;
    const ordered = { encoding: "msgpack", keyEncoding: "ordered-binary" } as const;
    this.eventFeeds = new EmbeddedEventFeeds(env, env.openDB("event-feed", ordered), env.openDB("event-feed-cursors", ordered));
    this.journal = new EmbeddedJournal(env, env.openDB("journal", binary), env.openDB("snapshots", binary), this.outbox, idempotency, this.eventFeeds);
    this.values = new EmbeddedValues(env, env.openDB("values", binary), env.openDB("value-versions", binary), this.outbox, idempotency);
    this.replicas = new SingleCopyReplicas(this.values);
    this.topics = new EmbeddedTopics(
      env,
      env.openDB("topics", { encoding: "msgpack", keyEncoding: "ordered-binary" }),
      env.openDB("topic-subscriptions", { encoding: "msgpack", keyEncoding: "ordered-binary" }),
    );
    this.modules = new EmbeddedModules(
      env,
      env.openDB<ModuleRecord, Buffer>("modules", { encoding: "msgpack", keyEncoding: "binary" }),
      env.openDB("module-bytes", binary),
      env.openDB("module-artifacts", binary),
    );
  }

  /** Opens (creating if needed) the store in `dataDir`. Durable sync stays on: never noSync. */
  static async open(dataDir: string, options: { idempotency?: IdempotencyLimits } = {}): Promise<EmbeddedStore> {
    return guarded(`open ${dataDir}`, async () => {
      await mkdir(dataDir, { recursive: true });
      // noSubdir: false, or lmdb-js takes a directory with a dot in its name ("my.data") for a file.
      return new EmbeddedStore(open({ path: dataDir, maxDbs: 16, noSubdir: false }), options.idempotency ?? DEFAULT_IDEMPOTENCY_LIMITS);
    });
  }

  ping(): Promise<void> {
    return guarded("ping", () => {
      if (this.closed) throw new KeystateError("STORAGE_UNAVAILABLE", "the embedded store is closed");
      // A real read, so a broken environment shows here rather than on the first call.
      this.env.getStats();
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await guarded("close", () => this.env.close());
  }
}
