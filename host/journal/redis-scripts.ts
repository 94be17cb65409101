// The Lua scripts of the Redis store. Each touches the keys of one hash tag (one slot), so
// it runs atomically on one Redis and on Redis Cluster alike. Every entity write first
// checks its shard's lease (fencing): the epoch the writer holds must still be the lease's
// epoch and the lease unexpired in Redis's own clock, or nothing is written.

/** Fencing verdicts every write script can return instead of its normal result. */
export const FENCED = -1;

/**
 * Lua: `fenced(leaseKey, epoch)` is true when the write must be refused. An empty epoch
 * means an unfenced writer (a store opened without a cluster: tests and tools).
 */
const LUA_FENCE = `
local function fenced(leaseKey, epoch)
  if epoch == '' then return false end
  local lease = redis.call('HMGET', leaseKey, 'epoch', 'until')
  if lease[1] ~= epoch then return true end
  local untilMs = tonumber(lease[2])
  if not untilMs then return true end
  local t = redis.call('TIME')
  return untilMs < tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
`;

/**
 * Lua: stores ARGV[outboxAt] = n outbox entries (slot, entry pairs after it) in KEYS[2]; an
 * empty entry deletes its slot (a named timer cancelled). Sets firstEvent past them.
 */
const LUA_OUTBOX_AT = `
local outboxCount = tonumber(ARGV[outboxAt])
for i = outboxAt + 1, outboxAt + 2 * outboxCount, 2 do
  if ARGV[i + 1] == '' then redis.call('HDEL', KEYS[2], ARGV[i]) else redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1]) end
end
local firstEvent = outboxAt + 1 + 2 * outboxCount
`;

/**
 * Lua: after the outbox entries (from ARGV[firstEvent]): reply count m, window ms, keys kept
 * per entity, then m x (idempotency key, reply) into KEYS[3] (hash) and KEYS[4] (sorted set by
 * Redis time); keys past the window or the count are forgotten, oldest first. Moves
 * firstEvent past them.
 */
const LUA_REPLIES = `
local replyCount = tonumber(ARGV[firstEvent])
if replyCount > 0 then
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  local window = tonumber(ARGV[firstEvent + 1])
  local keep = tonumber(ARGV[firstEvent + 2])
  for i = firstEvent + 3, firstEvent + 2 + 2 * replyCount, 2 do
    redis.call('HSET', KEYS[3], ARGV[i], ARGV[i + 1])
    redis.call('ZADD', KEYS[4], now, ARGV[i])
  end
  local expired = redis.call('ZRANGEBYSCORE', KEYS[4], '-inf', '(' .. (now - window))
  local over = redis.call('ZCARD', KEYS[4]) - #expired - keep
  if over > 0 then
    local oldest = redis.call('ZRANGE', KEYS[4], #expired, #expired + over - 1)
    for _, key in ipairs(oldest) do table.insert(expired, key) end
  end
  for _, key in ipairs(expired) do
    redis.call('HDEL', KEYS[3], key)
    redis.call('ZREM', KEYS[4], key)
  end
end
firstEvent = firstEvent + 3 + 2 * replyCount
`;

/** LUA_OUTBOX_AT and LUA_REPLIES for the append's layout (the outbox count is ARGV[3]). */
const LUA_OUTBOX = `local outboxAt = 3
${LUA_OUTBOX_AT}
${LUA_REPLIES}`;

/** Lua: the entity's last journal seq (0 when the stream is empty or missing) into `last`. */
const LUA_LAST_SEQ = `
local top = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
local last = 0
if #top > 0 then last = tonumber(string.match(top[1][1], '^%d+')) end
`;

export const SCRIPTS = {
  // KEYS: journal stream, the shard's outbox hash, the entity's reply hash and reply times,
  // the event feed of the entity's type in its shard, lease (last, as in every entity write script). ARGV: epoch, expected seq, outbox entry count n, then n x (entry id, entry), reply
  // count m, window ms, keys kept, m x (key, reply), then type, payload per event.
  // Returns FENCED, or the journal's last seq before the call (the events, outbox entries and
  // replies were written iff it equals expected). An append with events also adds one feed
  // entry {k = the entity key as the journal key carries it (tagPart-encoded), s = first seq,
  // n = count}: one XADD, whatever the batch size, so projections find it without scanning.
  ksAppend: {
    numberOfKeys: 6,
    lua: `${LUA_FENCE}
if fenced(KEYS[6], ARGV[1]) then return ${FENCED} end
${LUA_LAST_SEQ}
if last ~= tonumber(ARGV[2]) then return last end
${LUA_OUTBOX}
for i = firstEvent, #ARGV, 2 do
  redis.call('XADD', KEYS[1], string.format('%d-0', last + 1 + (i - firstEvent) / 2), 't', ARGV[i], 'p', ARGV[i + 1])
end
local count = math.floor((#ARGV - firstEvent + 1) / 2)
if count > 0 then
  redis.call('XADD', KEYS[5], '*', 'k', string.match(KEYS[1], '/([^/]*):j$'), 's', last + 1, 'n', count)
end
return last`,
  },
  // KEYS: journal stream, snapshot hash, lease. ARGV: epoch, seq, state.
  // Returns FENCED, or the journal's last seq; nothing is stored when the snapshot is beyond it or older than the stored one.
  ksSaveSnapshot: {
    numberOfKeys: 3,
    lua: `${LUA_FENCE}
if fenced(KEYS[3], ARGV[1]) then return ${FENCED} end
${LUA_LAST_SEQ}
local seq = tonumber(ARGV[2])
if seq > last then return last end
local stored = redis.call('HGET', KEYS[2], 'seq')
if stored == false or tonumber(stored) <= seq then
  redis.call('HSET', KEYS[2], 'seq', ARGV[2], 'state', ARGV[3])
end
return last`,
  },
  // KEYS: value hash {d = bytes, n = version}, the shard's outbox hash, the entity's reply hash
  // and reply times, lease (last). ARGV: epoch, expected version ('' = any), 'put' or 'del', bytes,
  // outbox entry count n, n x (id, entry), reply count m, window ms, keys kept, m x (key, reply).
  // Returns {FENCED} | {0, current version} (stale) | {1, new version}.
  // A delete keeps the version counter (n) so versions only grow.
  ksWriteValue: {
    numberOfKeys: 5,
    lua: `${LUA_FENCE}
if fenced(KEYS[5], ARGV[1]) then return {${FENCED}} end
local current = tonumber(redis.call('HGET', KEYS[1], 'n') or '0')
if ARGV[2] ~= '' and tonumber(ARGV[2]) ~= current then return {0, current} end
local outboxAt = 5
${LUA_OUTBOX_AT}
${LUA_REPLIES}
local version = current + 1
if ARGV[3] == 'del' then
  redis.call('HDEL', KEYS[1], 'd')
  redis.call('HSET', KEYS[1], 'n', version)
else
  redis.call('HSET', KEYS[1], 'd', ARGV[4], 'n', version)
end
return {1, version}`,
  },
  // KEYS: the shard's outbox hash. ARGV: slot, the delivered entry's id as JSON ("id":"...").
  // Deletes the slot only while it still holds that entry (a named timer scheduled again keeps its new entry).
  ksOutboxDone: {
    numberOfKeys: 1,
    lua: `local entry = redis.call('HGET', KEYS[1], ARGV[1])
if entry and string.find(entry, ARGV[2], 1, true) then return redis.call('HDEL', KEYS[1], ARGV[1]) end
return 0`,
  },
  // KEYS: the shard's outbox hash. ARGV: n x (slot, entry); an empty entry deletes its slot. Unfenced (see Outbox.add).
  ksOutboxAdd: {
    numberOfKeys: 1,
    lua: `for i = 1, #ARGV, 2 do
  if ARGV[i + 1] == '' then redis.call('HDEL', KEYS[1], ARGV[i]) else redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
end
return 1`,
  },
  // KEYS: the entity's replica hash, the shard's replica counters. ARGV: writer, state bytes.
  // Stores the writer's copy and returns the writer's new save counter of the shard. No fencing:
  // each writer owns its field, and a copy only ever grows (it is a CRDT state).
  ksSaveReplica: {
    numberOfKeys: 2,
    lua: `redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return redis.call('HINCRBY', KEYS[2], ARGV[1], 1)`,
  },
  // KEYS: the entity's replica hash, the shard's replica counters, the entity's value hash (a
  // copy stored before replicas were per writer). Returns {copies (field, bytes, ...), counters
  // (writer, n, ...), legacy copy or false}: one atomic read, so the counters cover the copies.
  ksLoadReplicas: {
    numberOfKeys: 3,
    lua: `return {redis.call('HGETALL', KEYS[1]), redis.call('HGETALL', KEYS[2]), redis.call('HGET', KEYS[3], 'd')}`,
  },
  // KEYS: module meta hash, module bytes hash, module artifacts hash. ARGV: bytes, info JSON,
  // '1' to also make it active, artifact key ('' for none), artifact row, versions to keep ('0':
  // all; else the newest that many and the active one stay, older ones go with their uploads
  // and artifacts). Returns the new version.
  ksAddModuleVersion: {
    numberOfKeys: 3,
    lua: `local v = redis.call('HINCRBY', KEYS[1], 'latest', 1)
redis.call('HSET', KEYS[1], 'v:' .. v, ARGV[2])
redis.call('HSET', KEYS[2], v, ARGV[1])
if ARGV[4] ~= '' then redis.call('HSET', KEYS[3], v .. ':' .. ARGV[4], ARGV[5]) end
if ARGV[3] == '1' then redis.call('HSET', KEYS[1], 'active', v) end
local keep = tonumber(ARGV[6])
if keep > 0 then
  local active = tonumber(redis.call('HGET', KEYS[1], 'active') or '0')
  local gone = {}
  local any = false
  for _, field in ipairs(redis.call('HKEYS', KEYS[1])) do
    local n = tonumber(string.match(field, '^v:(%d+)$'))
    if n and n <= v - keep and n ~= active then
      redis.call('HDEL', KEYS[1], field)
      redis.call('HDEL', KEYS[2], n)
      gone[n] = true
      any = true
    end
  end
  if any then
    for _, field in ipairs(redis.call('HKEYS', KEYS[3])) do
      local n = tonumber(string.match(field, '^(%d+):'))
      if n and gone[n] then redis.call('HDEL', KEYS[3], field) end
    end
  end
end
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
export interface ScriptCommands {
  ksAppend(stream: string, outbox: string, replies: string, replyTimes: string, feed: string, lease: string, epoch: string, expectedSeq: number, ...extrasThenEvents: (string | number | Buffer)[]): Promise<number>;
  ksSaveSnapshot(stream: string, snapshotKey: string, lease: string, epoch: string, seq: number, state: Buffer): Promise<number>;
  ksWriteValue(valueKey: string, outbox: string, replies: string, replyTimes: string, lease: string, epoch: string, expectedVersion: string, op: "put" | "del", bytes: Buffer, ...extras: (string | number | Buffer)[]): Promise<number[]>;
  ksAddModuleVersion(
    metaKey: string,
    bytesKey: string,
    artifactsKey: string,
    bytes: Buffer,
    infoJson: string,
    activate: "1" | "0",
    artifactKey: string,
    artifactRow: Buffer,
    keepVersions: string,
  ): Promise<number>;
  ksSetActive(metaKey: string, version: string): Promise<number>;
  ksSaveReplica(replicas: string, counters: string, writer: string, state: Buffer): Promise<number>;
  ksOutboxDone(outbox: string, slot: string, idJson: string): Promise<number>;
  ksOutboxAdd(outbox: string, ...slotEntryPairs: string[]): Promise<number>;
  ksLoadReplicasBuffer(replicas: string, counters: string, value: string): Promise<[Buffer[], Buffer[], Buffer | null]>;
}
