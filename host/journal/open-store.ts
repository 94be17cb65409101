// Chooses the storage backend: Redis when a URL is given (production, clusters),
// otherwise the embedded LMDB store in a local data directory (`keystate serve` out of the box).
// Each backend is imported only when chosen: loading ioredis costs a node ~0.1 s of start-up
// it never needs on the embedded store, and lmdb's native binding is not needed with Redis.
import type { RedisTarget } from "./redis-target.js";
import type { IdempotencyLimits, Store } from "./types.js";

export interface OpenStoreOptions {
  /** Directory of the embedded store; created if missing. Default: ./data */
  readonly dataDir?: string;
  /** redis://host:port[/db]; when set, the Redis backend is used and dataDir is ignored. */
  readonly redisUrl?: string;
  /** One Redis or a Redis Cluster's seeds (instead of redisUrl). */
  readonly redis?: RedisTarget;
  /** How long, and how many per entity, idempotency keys are remembered (default 24 h, 1,000). */
  readonly idempotency?: IdempotencyLimits;
}

export const DEFAULT_DATA_DIR = "data";

export async function openStore(options: OpenStoreOptions): Promise<Store> {
  const redis = options.redis ?? (options.redisUrl ? options.redisUrl : undefined);
  if (redis !== undefined) {
    const { RedisStore } = await import("./redis-store.js");
    return RedisStore.open(redis, { idempotency: options.idempotency });
  }
  const { EmbeddedStore } = await import("./embedded-store.js");
  return EmbeddedStore.open(options.dataDir ?? DEFAULT_DATA_DIR, { idempotency: options.idempotency });
}
