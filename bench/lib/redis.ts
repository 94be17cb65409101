// The Redis every durable row of a run shares: a real redis-server (the test helper
// starts it on a free loopback port, in a temp dir) with the append-only file fsynced
// before each write is acknowledged.
import { startRedis, type RunningRedis } from "../../test/helpers/redis-server.js";

export const REDIS_DURABILITY = "Redis AOF, appendfsync always (fsync before the write is acknowledged)";

export function startBenchRedis(): Promise<RunningRedis> {
  return startRedis({ appendOnly: true });
}

export type { RunningRedis };
