// The Redis every durable row of a run shares: a real redis-server (the test helper
// starts it on a free loopback port, in a temp dir) with the append-only file fsynced
// before each write is acknowledged.
import { startRedis, type RunningRedis } from "../../test/helpers/redis-server.js";

export const REDIS_DURABILITY = "Redis AOF, appendfsync always (fsync before the write is acknowledged)";
export const REDIS_EVERYSEC = "Redis AOF, appendfsync everysec (a crash of the machine can lose ~1 s of writes; a crash of Redis alone loses none)";

/** Switches a running server's fsync policy (CONFIG SET), e.g. to compare with and without fsync per write. */
export async function setAppendFsync(url: string, policy: "always" | "everysec"): Promise<void> {
  // Imported here, not at the top: a process that has loaded ioredis runs the in-process
  // command path 6-12% slower (bench/lib/results-notes.md), and the rows that stand for a
  // node on the embedded store must not pay for a client that node never loads.
  const { Redis } = await import("ioredis");
  const client = new Redis(url);
  try {
    await client.config("SET", "appendfsync", policy);
  } finally {
    client.disconnect();
  }
}

export function startBenchRedis(): Promise<RunningRedis> {
  return startRedis({ appendOnly: true });
}

export type { RunningRedis };
