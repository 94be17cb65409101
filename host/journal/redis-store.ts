// The Redis backend (ioredis): the production store and the cluster's shared state, on one
// Redis or a Redis Cluster. Keys follow redis-keys.ts (every key of an entity carries its
// shard's hash tag); the check-and-write Lua scripts (redis-scripts.ts) touch one slot each
// and, when the store is fenced, first check that this node still holds the shard's lease.
import { KeystateError } from "../errors.js";
import { decodeArtifact, encodeArtifact } from "./module-artifact.js";
import type { Redis } from "ioredis";
import { closeRedis, connectRedis, parseRedisTarget, type RedisClient, type RedisTarget } from "./redis-connection.js";
import { RedisLayout, type EntityKeys } from "./redis-keys.js";
import { RedisTopics } from "./redis-topics.js";
import { RedisEventFeeds } from "./redis-event-feeds.js";
import { decodeOutboxEntry, encodeOutboxEntry, storedIdMarker } from "./outbox-codec.js";
import { FENCED, SCRIPTS, type ScriptCommands } from "./redis-scripts.js";
import { checkSeq, guarded } from "./store-support.js";
import { coalesceTurnWrites } from "./redis-turn-writes.js";
import type {
  AddVersionOptions,
  EntityId,
  Journal,
  JournalEvent,
  ModuleArtifact,
  ModuleStore,
  ModuleVersionInfo,
  IdempotencyStore,
  Outbox,
  OutboxEntry,
  Recovered,
  WriteExtras,
  ReplicaCopies,
  ReplicaStore,
  ShardFencing,
  Snapshot,
  StoredEvent,
  StoredModuleSummary,
  Store,
  ValueStore,
  VersionedValue,
} from "./types.js";
import { DEFAULT_IDEMPOTENCY_LIMITS, type IdempotencyLimits } from "./types.js";
import { bufferOf } from "../buffer-of.js";

/** A store command without a reply by then fails (a hung or paused server must not hang calls). */
const COMMAND_TIMEOUT_MS = 1500;

type KeystateRedis = RedisClient & ScriptCommands;


/** One stream entry as xrangeBuffer returns it: id `<seq>-0`, fields t=<type>, p=<payload>. */
function decodeEntry([id, fields]: [Buffer, Buffer[]]): StoredEvent {
  let type = "";
  let payload: Buffer = Buffer.alloc(0);
  for (let i = 0; i + 1 < fields.length; i += 2) {
    const field = fields[i]!.toString();
    if (field === "t") type = fields[i + 1]!.toString("utf8");
    else if (field === "p") payload = fields[i + 1]!;
  }
  return { seq: Number.parseInt(id.toString(), 10), type, payload };
}

/** The key layout and the fencing in force; shared by the journal and the values, set once the node knows its cluster. */
class Keys {
  layout = new RedisLayout();
  idempotency: IdempotencyLimits = DEFAULT_IDEMPOTENCY_LIMITS;
  fencing: ShardFencing | undefined;

  of(id: EntityId): EntityKeys {
    return this.layout.entityKeys(id);
  }

  /** The epoch to write under ('' when unfenced); throws NOT_OWNER, touching nothing, when this node holds no lease of the shard. */
  epoch(keys: EntityKeys, id: EntityId): string {
    if (this.fencing === undefined) return "";
    const epoch = this.fencing.epochFor(keys.shard);
    if (epoch === undefined) {
      throw new KeystateError("NOT_OWNER", `this node does not own shard ${keys.shard} of ${id.persistenceId}/${id.key}; nothing was written`);
    }
    return String(epoch);
  }

  refused(keys: EntityKeys, epoch: string, id: EntityId, what: string): KeystateError {
    this.fencing?.refused(keys.shard, Number(epoch));
    return new KeystateError("FENCED", `${what} of ${id.persistenceId}/${id.key} refused: epoch ${epoch} of shard ${keys.shard} is no longer current; nothing was written`);
  }
}

class RedisJournal implements Journal {
  constructor(
    private readonly redis: KeystateRedis,
    private readonly keys: Keys,
  ) {}

  append(id: EntityId, expectedSeq: number, events: readonly JournalEvent[], extras?: WriteExtras): Promise<void> {
    return guarded("journal append", async () => {
      checkSeq(expectedSeq, "expected seq");
      const keys = this.keys.of(id);
      const epoch = this.keys.epoch(keys, id);
      const args = extrasArgs(extras, this.keys.idempotency);
      for (const event of events) args.push(event.type, bufferOf(event.payload));
      const journalSeq = await this.redis.ksAppend(keys.journal, keys.outbox, keys.replies, keys.replyTimes, keys.feed, keys.lease, epoch, expectedSeq, ...args);
      if (journalSeq === FENCED) throw this.keys.refused(keys, epoch, id, "append");
      if (journalSeq !== expectedSeq) {
        throw new KeystateError(
          "SEQUENCE_CONFLICT",
          `append to ${id.persistenceId}/${id.key} expected seq ${expectedSeq} but the journal is at ${journalSeq}`,
        );
      }
    });
  }

  saveSnapshot(id: EntityId, snapshot: Snapshot): Promise<void> {
    return guarded("snapshot save", async () => {
      checkSeq(snapshot.seq, "snapshot seq");
      const keys = this.keys.of(id);
      const epoch = this.keys.epoch(keys, id);
      const journalSeq = await this.redis.ksSaveSnapshot(keys.journal, keys.snapshot, keys.lease, epoch, snapshot.seq, bufferOf(snapshot.state));
      if (journalSeq === FENCED) throw this.keys.refused(keys, epoch, id, "snapshot");
      if (snapshot.seq > journalSeq) {
        throw new KeystateError("INVALID_REQUEST", `snapshot seq ${snapshot.seq} is beyond the journal's last seq ${journalSeq}`);
      }
    });
  }

  recover(id: EntityId): Promise<Recovered> {
    return guarded("journal recover", async () => {
      const keys = this.keys.of(id);
      // Snapshot first: events only grow, so "snapshot + events after it" stays consistent.
      const stored = await this.redis.hgetallBuffer(keys.snapshot);
      const snapshot: Snapshot | undefined =
        stored.seq === undefined || stored.state === undefined
          ? undefined
          : { seq: Number.parseInt(stored.seq.toString(), 10), state: stored.state };
      const start = snapshot === undefined ? "-" : `${snapshot.seq + 1}-0`;
      const entries = (await this.redis.xrangeBuffer(keys.journal, start, "+")) as [Buffer, Buffer[]][];
      const events = entries.map(decodeEntry);
      const lastSeq = events.length > 0 ? events[events.length - 1]!.seq : (snapshot?.seq ?? 0);
      return { snapshot, events, lastSeq };
    });
  }

  readEvents(id: EntityId, fromSeq: number, limit?: number): Promise<StoredEvent[]> {
    return guarded("journal read", async () => {
      const key = this.keys.of(id).journal;
      const start = `${Math.max(1, fromSeq)}-0`;
      const entries = (limit === undefined ? await this.redis.xrangeBuffer(key, start, "+") : await this.redis.xrangeBuffer(key, start, "+", "COUNT", limit)) as [Buffer, Buffer[]][];
      return entries.map(decodeEntry);
    });
  }

  lastSeq(id: EntityId): Promise<number> {
    return guarded("journal read", async () => {
      // Entry ids are `<seq>-0`: the newest entry's id is the last seq.
      const newest = (await this.redis.xrevrangeBuffer(this.keys.of(id).journal, "+", "-", "COUNT", 1)) as [Buffer, Buffer[]][];
      return newest.length === 0 ? 0 : decodeEntry(newest[0]!).seq;
    });
  }
}

/** Values are hashes {d: bytes, n: version}; every write is a fenced script. */
class RedisValues implements ValueStore {
  constructor(
    private readonly redis: KeystateRedis,
    private readonly keys: Keys,
  ) {}

  get(id: EntityId): Promise<Uint8Array | undefined> {
    return guarded("value get", async () => (await this.redis.hgetBuffer(this.keys.of(id).value, "d")) ?? undefined);
  }

  read(id: EntityId): Promise<VersionedValue> {
    return guarded("value get", async () => {
      const [value, version] = await this.redis.hmgetBuffer(this.keys.of(id).value, "d", "n");
      return { value: value ?? undefined, version: version === null ? 0 : Number(version.toString()) };
    });
  }

  write(id: EntityId, value: Uint8Array | undefined, expectedVersion: number, extras?: WriteExtras): Promise<number> {
    return guarded("value write", async () => {
      checkSeq(expectedVersion, "expected version");
      return this.#write(id, value, String(expectedVersion), extras);
    });
  }

  put(id: EntityId, value: Uint8Array): Promise<void> {
    return guarded("value put", async () => {
      await this.#write(id, value, "");
    });
  }

  delete(id: EntityId): Promise<void> {
    return guarded("value delete", async () => {
      await this.#write(id, undefined, "");
    });
  }

  async #write(id: EntityId, value: Uint8Array | undefined, expected: string, extras?: WriteExtras): Promise<number> {
    const keys = this.keys.of(id);
    const epoch = this.keys.epoch(keys, id);
    const op = value === undefined ? "del" : "put";
    const bytes = value === undefined ? Buffer.alloc(0) : bufferOf(value);
    const [verdict, version] = await this.redis.ksWriteValue(keys.value, keys.outbox, keys.replies, keys.replyTimes, keys.lease, epoch, expected, op, bytes, ...extrasArgs(extras, this.keys.idempotency));
    if (verdict === FENCED) throw this.keys.refused(keys, epoch, id, "value write");
    if (verdict === 0) {
      throw new KeystateError("SEQUENCE_CONFLICT", `value write to ${id.persistenceId}/${id.key} expected version ${expected} but the store is at ${version}`);
    }
    return version!;
  }
}

/** The write scripts' extras: outbox count and (id, entry) pairs, then reply count, window, keys kept and (key, reply) pairs. */
function extrasArgs(extras: WriteExtras | undefined, limits: IdempotencyLimits): (string | number | Buffer)[] {
  const outbox = extras?.outbox ?? [];
  const replies = extras?.replies ?? [];
  const args: (string | number | Buffer)[] = [outbox.length + (extras?.cancelled?.length ?? 0)];
  args.push(...outboxArgs(outbox, extras?.cancelled));
  args.push(replies.length, limits.windowMs, limits.keysPerEntity);
  for (const { key, reply } of replies) args.push(key, bufferOf(reply));
  return args;
}

/** Replies stored under idempotency keys: a hash per entity (its times in a sorted set, for trimming). */
class RedisIdempotency implements IdempotencyStore {
  constructor(
    private readonly redis: KeystateRedis,
    private readonly keys: Keys,
  ) {}

  replies(id: EntityId, keys: readonly string[]): Promise<Array<Uint8Array | undefined>> {
    return guarded("idempotency read", async () => {
      if (keys.length === 0) return [];
      const stored = await this.redis.hmgetBuffer(this.keys.of(id).replies, ...keys);
      return stored.map((reply) => reply ?? undefined);
    });
  }
}

/** The outboxes: a hash per shard, field = entry id. */
class RedisOutbox implements Outbox {
  constructor(
    private readonly redis: KeystateRedis,
    private readonly keys: Keys,
  ) {}

  pending(shard: number, limit: number): Promise<OutboxEntry[]> {
    return guarded("outbox read", async () => {
      const stored = await this.redis.hgetall(this.keys.layout.outboxKey(shard));
      // Small unless deliveries fail for long; a hash keeps no order, so sort here.
      return Object.values(stored)
        .map(decodeOutboxEntry)
        .sort((a, b) => a.createdAt - b.createdAt)
        .slice(0, limit);
    });
  }

  done(shard: number, entry: Pick<OutboxEntry, "id" | "slot">): Promise<void> {
    return guarded("outbox delete", async () => {
      await this.redis.ksOutboxDone(this.keys.layout.outboxKey(shard), entry.slot ?? entry.id, storedIdMarker(entry.id));
    });
  }

  holds(shard: number, entry: Pick<OutboxEntry, "id" | "slot">): Promise<boolean> {
    return guarded("outbox read", async () => {
      const stored = await this.redis.hget(this.keys.layout.outboxKey(shard), entry.slot ?? entry.id);
      return stored !== null && stored.includes(storedIdMarker(entry.id));
    });
  }

  add(shard: number, entries: readonly OutboxEntry[], cancelled: readonly string[] = []): Promise<void> {
    if (entries.length === 0 && cancelled.length === 0) return Promise.resolve();
    return guarded("outbox write", async () => {
      await this.redis.ksOutboxAdd(this.keys.layout.outboxKey(shard), ...outboxArgs(entries, cancelled));
    });
  }
}

/** (slot, encoded entry) pairs, then (slot, "") for each cancelled slot: what the scripts store or delete. */
function outboxArgs(entries: readonly OutboxEntry[], cancelled: readonly string[] = []): string[] {
  const args: string[] = [];
  for (const slot of cancelled) args.push(slot, "");
  for (const entry of entries) args.push(entry.slot ?? entry.id, encodeOutboxEntry(entry));
  return args;
}

/** Replicated entities: a hash of copies per entity (field = writer), counters per shard. */
class RedisReplicas implements ReplicaStore {
  constructor(
    private readonly redis: KeystateRedis,
    private readonly keys: Keys,
  ) {}

  load(id: EntityId): Promise<ReplicaCopies> {
    return guarded("replica load", async () => {
      const keys = this.keys.of(id);
      const [fields, counters, legacy] = await this.redis.ksLoadReplicasBuffer(keys.replicas, keys.replicaCounters, keys.value);
      const copies: Uint8Array[] = [];
      for (let i = 1; i < fields.length; i += 2) copies.push(fields[i]!);
      // A copy written by a version that kept one state per entity: still part of the join.
      if (legacy) copies.push(legacy);
      return { shard: keys.shard, copies, counters: countersOf(counters) };
    });
  }

  save(id: EntityId, writer: string, state: Uint8Array): Promise<number> {
    return guarded("replica save", async () => {
      const keys = this.keys.of(id);
      return await this.redis.ksSaveReplica(keys.replicas, keys.replicaCounters, writer, bufferOf(state));
    });
  }

  copyOf(id: EntityId, writer: string): Promise<Uint8Array | undefined> {
    return guarded("replica read", async () => (await this.redis.hgetBuffer(this.keys.of(id).replicas, writer)) ?? undefined);
  }

  shardCounters(shard: number): Promise<Map<string, number>> {
    return guarded("replica counters", async () => {
      const flat = await this.redis.hgetall(this.keys.layout.replicaCountersKey(shard));
      return new Map(Object.entries(flat).map(([writer, n]) => [writer, Number(n)]));
    });
  }
}

function countersOf(flat: Buffer[]): Map<string, number> {
  const counters = new Map<string, number>();
  for (let i = 0; i + 1 < flat.length; i += 2) counters.set(flat[i]!.toString(), Number(flat[i + 1]!.toString()));
  return counters;
}

/**
 * Per module: meta hash {latest, active, v:<n> = info JSON}, bytes hash {<n> = bytes} and
 * artifacts hash {<n>:<artifact key> = artifact row}; names in one set per cluster.
 */
class RedisModules implements ModuleStore {
  constructor(
    private readonly redis: KeystateRedis,
    private readonly keys: Keys,
  ) {}

  addVersion(name: string, bytes: Uint8Array, hash: string, options?: AddVersionOptions): Promise<ModuleVersionInfo> {
    return guarded("module add", async () => {
      const keys = this.keys.layout.moduleKeys(name);
      const deployedAt = Date.now();
      // The name index lives in another slot, so it is written first and on its own:
      // list() skips a name whose versions are not there (yet).
      await this.redis.sadd(this.keys.layout.moduleIndexKey, name);
      const infoJson = JSON.stringify({ hash, size: bytes.length, deployedAt });
      const activate = options?.activate === true ? "1" : "0";
      const artifact = options?.artifact;
      const version = await this.redis.ksAddModuleVersion(
        keys.meta,
        keys.bytes,
        keys.artifacts,
        bufferOf(bytes),
        infoJson,
        activate,
        artifact?.key ?? "",
        artifact ? encodeArtifact(artifact) : Buffer.alloc(0),
        String(options?.keepVersions ?? 0),
      );
      return { name, version, hash, size: bytes.length, deployedAt };
    });
  }

  setActive(name: string, version: number | undefined): Promise<void> {
    return guarded("module activate", async () => {
      const found = await this.redis.ksSetActive(this.keys.layout.moduleKeys(name).meta, version === undefined ? "" : String(version));
      if (found !== 1) {
        throw new KeystateError("MODULE_NOT_FOUND", `no module ${name}${version === undefined ? "" : ` version ${version}`}`);
      }
    });
  }

  getBytes(name: string, version: number): Promise<Uint8Array | undefined> {
    return guarded("module read", async () => (await this.redis.hgetBuffer(this.keys.layout.moduleKeys(name).bytes, String(version))) ?? undefined);
  }

  getArtifact(name: string, version: number, key: string): Promise<ModuleArtifact | undefined> {
    return guarded("module artifact read", async () => {
      const row = await this.redis.hgetBuffer(this.keys.layout.moduleKeys(name).artifacts, `${version}:${key}`);
      return row === null ? undefined : decodeArtifact(row);
    });
  }

  putArtifact(name: string, version: number, artifact: ModuleArtifact): Promise<void> {
    return guarded("module artifact write", async () => {
      await this.redis.hset(this.keys.layout.moduleKeys(name).artifacts, `${version}:${artifact.key}`, encodeArtifact(artifact));
    });
  }

  list(): Promise<StoredModuleSummary[]> {
    return guarded("module list", async () => {
      const names = (await this.redis.smembers(this.keys.layout.moduleIndexKey)).sort();
      // One command per module (their keys live in different slots); auto-pipelining sends them together.
      const metas = await Promise.all(names.map((name) => this.redis.hgetall(this.keys.layout.moduleKeys(name).meta)));
      const summaries: StoredModuleSummary[] = [];
      names.forEach((name, i) => {
        const summary = summaryFromMeta(name, metas[i] ?? {});
        if (summary.versions.length > 0) summaries.push(summary);
      });
      return summaries;
    });
  }
}

function summaryFromMeta(name: string, meta: Record<string, string>): StoredModuleSummary {
  const versions: ModuleVersionInfo[] = [];
  for (const [field, json] of Object.entries(meta)) {
    if (!field.startsWith("v:")) continue;
    const info = JSON.parse(json) as { hash: string; size: number; deployedAt: number };
    versions.push({ name, version: Number(field.slice(2)), ...info });
  }
  versions.sort((a, b) => a.version - b.version);
  const activeVersion = meta.active === undefined ? undefined : Number(meta.active);
  return { name, activeVersion, versions };
}

export class RedisStore implements Store {
  readonly kind = "redis" as const;
  readonly journal: Journal;
  readonly values: ValueStore;
  readonly replicas: ReplicaStore;
  readonly outbox: Outbox;
  readonly idempotency: IdempotencyStore;
  readonly modules: ModuleStore;
  readonly topics: RedisTopics;
  readonly eventFeeds: RedisEventFeeds;
  readonly #keys = new Keys();

  private constructor(
    private readonly redis: KeystateRedis,
    readonly target: RedisTarget,
  ) {
    this.journal = new RedisJournal(redis, this.#keys);
    this.values = new RedisValues(redis, this.#keys);
    this.replicas = new RedisReplicas(redis, this.#keys);
    this.outbox = new RedisOutbox(redis, this.#keys);
    this.idempotency = new RedisIdempotency(redis, this.#keys);
    this.modules = new RedisModules(redis, this.#keys);
    this.topics = new RedisTopics(redis, () => this.#keys.layout, (commandTimeoutMs) => connectRedis(target, { commandTimeoutMs }));
    this.eventFeeds = new RedisEventFeeds(redis, () => this.#keys.layout);
  }

  /**
   * Connects to `url` (redis://host:port/db; comma-separated seeds with `cluster`); rejects
   * with STORAGE_UNAVAILABLE when it cannot. The layout is cluster `default` with 256 shards
   * and no fencing until `useCluster` says otherwise.
   */
  static async open(url: string | RedisTarget, options: { cluster?: boolean; idempotency?: IdempotencyLimits } = {}): Promise<RedisStore> {
    const target = typeof url === "string" ? parseRedisTarget(url, options.cluster ?? false) : url;
    // One Redis: no auto-pipelining. It would send the commands of one tick in one socket
    // write, but it builds an ioredis Pipeline (with its own promises and command copies) for
    // each tick's commands, and a node's mailboxes already put each entity's batch in one
    // write. Measured on and off, alternating (2026-12-06, counter, appendfsync always): one
    // call in flight over gRPC 0.53-0.60 -> 0.42-0.45 ms of node CPU per call; 64 in flight
    // over gRPC 13.4-14.3k -> 15.2-15.7k req/s; in-process, 256 in flight on 10,000 keys,
    // 30.8-31.8k -> 32.8-40.3k commands/s. Redis Cluster keeps it: ioredis's cluster client
    // sends the first commands to a master whose connection is not up yet only through its
    // pipelines (without them they fail "Connection is closed"), and it groups them per master.
    const redis = await connectRedis(target, { commandTimeoutMs: COMMAND_TIMEOUT_MS, scripts: SCRIPTS, autoPipelining: target.cluster });
    // One Redis: the commands of one turn still leave in one write, by corking the socket.
    if (!target.cluster) coalesceTurnWrites(redis as Redis);
    const store = new RedisStore(redis as KeystateRedis, target);
    if (options.idempotency !== undefined) store.#keys.idempotency = options.idempotency;
    return store;
  }

  get layout(): RedisLayout {
    return this.#keys.layout;
  }

  /** Keys of cluster `layout.cluster` with its shard count; every entity write checked against `fencing` from now on. */
  useCluster(layout: RedisLayout, fencing: ShardFencing | undefined): void {
    this.#keys.layout = layout;
    this.#keys.fencing = fencing;
  }

  ping(): Promise<void> {
    return guarded("ping", async () => {
      await this.redis.ping();
    });
  }

  close(): Promise<void> {
    return closeRedis(this.redis);
  }
}
