// Lua scripts of the cluster's control plane: shard leases and node heartbeats. Leases use
// Redis's TIME, never a node's clock. Epochs only grow: an acquisition increments the epoch,
// a renewal keeps it, a release clears owner and until but keeps it.

const LUA_NOW = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
`;

export const CONTROL_SCRIPTS = {
  // KEYS: lease. ARGV: node id, lease ms.
  // Returns {1, epoch, until} when acquired; {0, owner, until} when another lease is live.
  ksLeaseAcquire: {
    numberOfKeys: 1,
    lua: `${LUA_NOW}
local lease = redis.call('HMGET', KEYS[1], 'owner', 'until')
local untilMs = tonumber(lease[2])
if lease[1] and lease[1] ~= '' and untilMs and untilMs >= now then return {0, lease[1], untilMs} end
local epoch = redis.call('HINCRBY', KEYS[1], 'epoch', 1)
local newUntil = now + tonumber(ARGV[2])
redis.call('HSET', KEYS[1], 'owner', ARGV[1], 'until', newUntil)
return {1, epoch, newUntil}`,
  },
  // KEYS: lease. ARGV: node id, epoch, lease ms. Returns the new until, or 0 when the lease is no longer ours (or expired).
  ksLeaseRenew: {
    numberOfKeys: 1,
    lua: `${LUA_NOW}
local lease = redis.call('HMGET', KEYS[1], 'owner', 'epoch', 'until')
local untilMs = tonumber(lease[3])
if lease[1] ~= ARGV[1] or lease[2] ~= ARGV[2] or not untilMs or untilMs < now then return 0 end
local newUntil = now + tonumber(ARGV[3])
redis.call('HSET', KEYS[1], 'until', newUntil)
return newUntil`,
  },
  // KEYS: lease. ARGV: node id, epoch. Returns 1 when released, 0 when it was not ours.
  ksLeaseRelease: {
    numberOfKeys: 1,
    lua: `local lease = redis.call('HMGET', KEYS[1], 'owner', 'epoch')
if lease[1] ~= ARGV[1] or lease[2] ~= ARGV[2] then return 0 end
redis.call('HSET', KEYS[1], 'owner', '', 'until', 0)
return 1`,
  },
  // KEYS: heartbeat. ARGV: instance token, ttl ms.
  // Returns 1 when the heartbeat is ours and was refreshed, 2 when it had lapsed and is set
  // again (the others may have taken this node for dead meanwhile), 0 when another process holds it.
  ksHeartbeat: {
    numberOfKeys: 1,
    lua: `local holder = redis.call('GET', KEYS[1])
if holder and holder ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
if holder then return 1 end
return 2`,
  },
} as const;

export interface ControlCommands {
  ksLeaseAcquire(lease: string, nodeId: string, leaseMs: number): Promise<[number, number | string, number]>;
  ksLeaseRenew(lease: string, nodeId: string, epoch: number, leaseMs: number): Promise<number>;
  ksLeaseRelease(lease: string, nodeId: string, epoch: number): Promise<number>;
  ksHeartbeat(heartbeat: string, token: string, ttlMs: number): Promise<number>;
}
