// Opens ioredis connections to one Redis or to a Redis Cluster, with one connection policy:
// fail fast with STORAGE_UNAVAILABLE while Redis is away (no offline queue, no resend of a
// command whose outcome is unknown), keep reconnecting in the background so the node works
// again without a restart. The store, the cluster's control plane and its subscriber each
// open their own connection, so a slow journal write never delays a lease renewal.
import { Cluster, Redis, type RedisOptions } from "ioredis";
import { KeystateError } from "../errors.js";
import { describeTarget, type RedisTarget } from "./redis-target.js";

export { describeTarget, parseRedisTarget, type RedisTarget } from "./redis-target.js";

export type RedisClient = Redis | Cluster;

export interface ConnectOptions {
  /** A command without a reply by then fails (a hung or paused server must not hang calls). */
  readonly commandTimeoutMs: number;
  readonly connectTimeoutMs?: number;
  /** Lua scripts to define as commands (ioredis uses EVALSHA, falling back to EVAL). */
  readonly scripts?: Record<string, { numberOfKeys: number; lua: string }>;
  /** Group the commands of one tick into one socket write (ioredis auto-pipelining; off by default). */
  readonly autoPipelining?: boolean;
  /** Longest wait between reconnect attempts (default 1000 ms; lease renewals want less). */
  readonly maxReconnectDelayMs?: number;
}

const MAX_RECONNECT_DELAY_MS = 1000;

function baseOptions(options: ConnectOptions): RedisOptions {
  return {
    lazyConnect: true,
    connectTimeout: options.connectTimeoutMs ?? 1000,
    commandTimeout: options.commandTimeoutMs,
    maxRetriesPerRequest: 0,
    autoResendUnfulfilledCommands: false,
  };
}

/** Connects; rejects with STORAGE_UNAVAILABLE when Redis cannot be reached. */
export async function connectRedis(target: RedisTarget, options: ConnectOptions): Promise<RedisClient> {
  let client: RedisClient;
  if (target.cluster) {
    const seeds = target.urls.map((url) => {
      const parsed = new URL(url);
      return { host: parsed.hostname, port: Number(parsed.port || 6379) };
    });
    client = new Cluster(seeds, {
      lazyConnect: true,
      enableOfflineQueue: false,
      enableAutoPipelining: options.autoPipelining ?? false,
      scripts: options.scripts,
      clusterRetryStrategy: (attempt) => Math.min(attempt * 100, options.maxReconnectDelayMs ?? MAX_RECONNECT_DELAY_MS),
      // No resend of a command whose connection closed (its outcome is unknown); MOVED/ASK are still followed.
      retryDelayOnFailover: 0,
      redisOptions: baseOptions(options),
    });
  } else {
    client = new Redis(target.urls[0]!, {
      ...baseOptions(options),
      enableOfflineQueue: false,
      enableAutoPipelining: options.autoPipelining ?? false,
      retryStrategy: (attempt) => Math.min(attempt * 100, options.maxReconnectDelayMs ?? MAX_RECONNECT_DELAY_MS),
      scripts: options.scripts,
    });
  }
  // Without a listener ioredis prints every reconnect failure; callers see errors per call.
  client.on("error", () => {});
  try {
    await client.connect();
  } catch (err) {
    client.disconnect();
    throw KeystateError.fromStorage(err, `connect to ${describeTarget(target)}`);
  }
  return client;
}

/** Closes gracefully when connected (replies in flight arrive), else drops the connection. */
export async function closeRedis(client: RedisClient): Promise<void> {
  if (client.status === "ready") await client.quit().catch(() => client.disconnect());
  else client.disconnect();
}
