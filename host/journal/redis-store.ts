// The Redis backend (ioredis): the production store and the cluster's shared state.
// Every key of one entity carries the same Redis Cluster hash tag, so the Lua scripts
// that check-and-write touch a single slot. Connection policy: fail fast with
// STORAGE_UNAVAILABLE while Redis is away (no offline queue, no resends), keep
// reconnecting in the background so the store works again without a restart.
import { Redis } from "ioredis";
import { KeystateError } from "../errors.js";
import { decodeArtifact, encodeArtifact } from "./module-artifact.js";
import { checkSeq, guarded } from "./store-support.js";
import type {
  AddVersionOptions,
  EntityId,
  Journal,
  JournalEvent,
  ModuleArtifact,
  ModuleStore,
  ModuleVersionInfo,
  Recovered,
  Snapshot,
  StoredEvent,
  StoredModuleSummary,
  Store,
  ValueStore,
} from "./types.js";

const CONNECT_TIMEOUT_MS = 1000;
/** A command without a reply by then fails (a hung or paused server must not hang calls). */
const COMMAND_TIMEOUT_MS = 1500;
const MAX_RECONNECT_DELAY_MS = 1000;
const MODULE_INDEX_KEY = "ks:modules";

/** Lua: the entity's last journal seq (0 when the stream is empty or missing) into `last`. */
const LUA_LAST_SEQ = `
local top = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
local last = 0
if #top > 0 then last = tonumber(string.match(top[1][1], '^%d+')) end
`;

const SCRIPTS = {
  // KEYS: journal stream. ARGV: expected seq, then type, payload per event.
  // Returns the journal's last seq before the call; the events were written iff it equals expected.
  ksAppend: {
    numberOfKeys: 1,
    lua: `${LUA_LAST_SEQ}
if last ~= tonumber(ARGV[1]) then return last end
for i = 2, #ARGV, 2 do
  redis.call('XADD', KEYS[1], string.format('%d-0', last + i / 2), 't', ARGV[i], 'p', ARGV[i + 1])
end
return last`,
  },
  // KEYS: journal stream, snapshot hash. ARGV: seq, state.
  // Returns the journal's last seq; nothing is stored when the snapshot is beyond it or older than the stored one.
  ksSaveSnapshot: {
    numberOfKeys: 2,
    lua: `${LUA_LAST_SEQ}
local seq = tonumber(ARGV[1])
if seq > last then return last end
local stored = redis.call('HGET', KEYS[2], 'seq')
if stored == false or tonumber(stored) <= seq then
  redis.call('HSET', KEYS[2], 'seq', ARGV[1], 'state', ARGV[2])
end
return last`,
  },
  // KEYS: module meta hash, module bytes hash, module artifacts hash. ARGV: bytes, info JSON,
  // '1' to also make it active, artifact key ('' for none), artifact row. Returns the new version.
  ksAddModuleVersion: {
    numberOfKeys: 3,
    lua: `local v = redis.call('HINCRBY', KEYS[1], 'latest', 1)
redis.call('HSET', KEYS[1], 'v:' .. v, ARGV[2])
redis.call('HSET', KEYS[2], v, ARGV[1])
if ARGV[4] ~= '' then redis.call('HSET', KEYS[3], v .. ':' .. ARGV[4], ARGV[5]) end
if ARGV[3] == '1' then redis.call('HSET', KEYS[1], 'active', v) end
return v`,
  },
  // KEYS: module meta hash. ARGV: version, or '' to undeploy. Returns 0 when no such module/version.
  ksSetActive: {
    numberOfKeys: 1,
    lua: `if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if ARGV[1] == '' then redis.call('HDEL', KEYS[1], 'active') return 1 end
if redis.call('HEXISTS', KEYS[1], 'v:' .. ARGV[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'active', ARGV[1])
return 1`,
  },
} as const;

/** The commands ioredis adds for SCRIPTS (EVALSHA, falling back to EVAL after a server restart). */
interface ScriptCommands {
  ksAppend(stream: string, expectedSeq: number, ...typeAndPayload: (string | Buffer)[]): Promise<number>;
  ksSaveSnapshot(stream: string, snapshotKey: string, seq: number, state: Buffer): Promise<number>;
  ksAddModuleVersion(
    metaKey: string,
    bytesKey: string,
    artifactsKey: string,
    bytes: Buffer,
    infoJson: string,
    activate: "1" | "0",
    artifactKey: string,
    artifactRow: Buffer,
  ): Promise<number>;
  ksSetActive(metaKey: string, version: string): Promise<number>;
}

type KeystateRedis = Redis & ScriptCommands;

/**
 * encodeURIComponent escapes `{`, `}`, `/` and `%`, so an id can neither end the hash
 * tag early nor make two different (pid, key) pairs collide; it also rejects lone surrogates.
 */
function tagPart(part: string): string {
  try {
    return encodeURIComponent(part);
  } catch {
    throw new KeystateError("INVALID_REQUEST", `storage key part is not well-formed Unicode: ${JSON.stringify(part)}`);
  }
}

function entityKeys(id: EntityId): { journal: string; snapshot: string; value: string } {
  const tag = `ks:{${tagPart(id.persistenceId)}/${tagPart(id.key)}}`;
  return { journal: `${tag}:j`, snapshot: `${tag}:s`, value: `${tag}:v` };
}

function moduleKeys(name: string): { meta: string; bytes: string; artifacts: string } {
  const tag = `ks:mod:{${tagPart(name)}}`;
  return { meta: `${tag}:m`, bytes: `${tag}:b`, artifacts: `${tag}:a` };
}

/** The artifacts hash's field for one (version, artifact key). */
function artifactField(version: number, key: string): string {
  return `${version}:${key}`;
}

function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

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

class RedisJournal implements Journal {
  constructor(private readonly redis: KeystateRedis) {}

  append(id: EntityId, expectedSeq: number, events: readonly JournalEvent[]): Promise<void> {
    return guarded("journal append", async () => {
      checkSeq(expectedSeq, "expected seq");
      const args: (string | Buffer)[] = [];
      for (const event of events) args.push(event.type, asBuffer(event.payload));
      const journalSeq = await this.redis.ksAppend(entityKeys(id).journal, expectedSeq, ...args);
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
      const keys = entityKeys(id);
      const journalSeq = await this.redis.ksSaveSnapshot(keys.journal, keys.snapshot, snapshot.seq, asBuffer(snapshot.state));
      if (snapshot.seq > journalSeq) {
        throw new KeystateError("INVALID_REQUEST", `snapshot seq ${snapshot.seq} is beyond the journal's last seq ${journalSeq}`);
      }
    });
  }

  recover(id: EntityId): Promise<Recovered> {
    return guarded("journal recover", async () => {
      const keys = entityKeys(id);
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

  readEvents(id: EntityId, fromSeq: number): Promise<StoredEvent[]> {
    return guarded("journal read", async () => {
      const entries = (await this.redis.xrangeBuffer(entityKeys(id).journal, `${Math.max(1, fromSeq)}-0`, "+")) as [Buffer, Buffer[]][];
      return entries.map(decodeEntry);
    });
  }
}

class RedisValues implements ValueStore {
  constructor(private readonly redis: KeystateRedis) {}

  get(id: EntityId): Promise<Uint8Array | undefined> {
    return guarded("value get", async () => (await this.redis.getBuffer(entityKeys(id).value)) ?? undefined);
  }

  put(id: EntityId, value: Uint8Array): Promise<void> {
    return guarded("value put", async () => {
      await this.redis.set(entityKeys(id).value, asBuffer(value));
    });
  }

  delete(id: EntityId): Promise<void> {
    return guarded("value delete", async () => {
      await this.redis.del(entityKeys(id).value);
    });
  }
}

/**
 * Per module: meta hash {latest, active, v:<n> = info JSON}, bytes hash {<n> = bytes} and
 * artifacts hash {<n>:<artifact key> = artifact row}; names in one set.
 */
class RedisModules implements ModuleStore {
  constructor(private readonly redis: KeystateRedis) {}

  addVersion(name: string, bytes: Uint8Array, hash: string, options?: AddVersionOptions): Promise<ModuleVersionInfo> {
    return guarded("module add", async () => {
      const keys = moduleKeys(name);
      const deployedAt = Date.now();
      // The name index lives in another slot, so it is written first and on its own:
      // list() skips a name whose versions are not there (yet).
      await this.redis.sadd(MODULE_INDEX_KEY, name);
      const infoJson = JSON.stringify({ hash, size: bytes.length, deployedAt });
      const activate = options?.activate === true ? "1" : "0";
      const artifact = options?.artifact;
      const version = await this.redis.ksAddModuleVersion(
        keys.meta,
        keys.bytes,
        keys.artifacts,
        asBuffer(bytes),
        infoJson,
        activate,
        artifact?.key ?? "",
        artifact ? encodeArtifact(artifact) : Buffer.alloc(0),
      );
      return { name, version, hash, size: bytes.length, deployedAt };
    });
  }

  setActive(name: string, version: number | undefined): Promise<void> {
    return guarded("module activate", async () => {
      const found = await this.redis.ksSetActive(moduleKeys(name).meta, version === undefined ? "" : String(version));
      if (found !== 1) {
        throw new KeystateError("MODULE_NOT_FOUND", `no module ${name}${version === undefined ? "" : ` version ${version}`}`);
      }
    });
  }

  getBytes(name: string, version: number): Promise<Uint8Array | undefined> {
    return guarded("module read", async () => (await this.redis.hgetBuffer(moduleKeys(name).bytes, String(version))) ?? undefined);
  }

  getArtifact(name: string, version: number, key: string): Promise<ModuleArtifact | undefined> {
    return guarded("module artifact read", async () => {
      const row = await this.redis.hgetBuffer(moduleKeys(name).artifacts, artifactField(version, key));
      return row === null ? undefined : decodeArtifact(row);
    });
  }

  putArtifact(name: string, version: number, artifact: ModuleArtifact): Promise<void> {
    return guarded("module artifact write", async () => {
      await this.redis.hset(moduleKeys(name).artifacts, artifactField(version, artifact.key), encodeArtifact(artifact));
    });
  }

  list(): Promise<StoredModuleSummary[]> {
    return guarded("module list", async () => {
      const names = (await this.redis.smembers(MODULE_INDEX_KEY)).sort();
      const pipeline = this.redis.pipeline();
      for (const name of names) pipeline.hgetall(moduleKeys(name).meta);
      const replies = (await pipeline.exec()) ?? [];
      const summaries: StoredModuleSummary[] = [];
      names.forEach((name, i) => {
        const [err, meta] = replies[i] ?? [null, {}];
        if (err) throw err;
        const summary = summaryFromMeta(name, meta as Record<string, string>);
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
  readonly modules: ModuleStore;

  private constructor(private readonly redis: KeystateRedis) {
    this.journal = new RedisJournal(redis);
    this.values = new RedisValues(redis);
    this.modules = new RedisModules(redis);
  }

  /** Connects to `url` (redis://host:port/db); rejects with STORAGE_UNAVAILABLE when it cannot. */
  static async open(url: string): Promise<RedisStore> {
    const redis = new Redis(url, {
      lazyConnect: true,
      connectTimeout: CONNECT_TIMEOUT_MS,
      commandTimeout: COMMAND_TIMEOUT_MS,
      // The commands of one tick (appends of many entities' batches) go out in one socket
      // write instead of one write each, and reach Redis together.
      enableAutoPipelining: true,
      // Fail instead of queueing while disconnected, and never replay a command whose
      // outcome is unknown: the caller gets STORAGE_UNAVAILABLE and decides.
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      autoResendUnfulfilledCommands: false,
      retryStrategy: (attempt) => Math.min(attempt * 100, MAX_RECONNECT_DELAY_MS),
      scripts: SCRIPTS,
    }) as KeystateRedis;
    // Without a listener ioredis prints every reconnect failure; callers see errors per call.
    redis.on("error", () => {});
    try {
      await redis.connect();
    } catch (err) {
      redis.disconnect();
      throw KeystateError.fromStorage(err, `connect to ${url}`);
    }
    return new RedisStore(redis);
  }

  ping(): Promise<void> {
    return guarded("ping", async () => {
      await this.redis.ping();
    });
  }

  async close(): Promise<void> {
    if (this.redis.status === "ready") {
      // quit lets replies in flight arrive; disconnect is the fallback when that fails.
      await this.redis.quit().catch(() => this.redis.disconnect());
    } else {
      this.redis.disconnect();
    }
  }
}
