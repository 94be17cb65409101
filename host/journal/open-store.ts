// Chooses the storage backend: Redis when a URL is given (production, clusters),
// otherwise the embedded LMDB store in a local data directory (`keystate serve` out of the box).
import { EmbeddedStore } from "./embedded-store.js";
import { RedisStore } from "./redis-store.js";
import type { Store } from "./types.js";

export interface OpenStoreOptions {
  /** Directory of the embedded store; created if missing. Default: ./data */
  readonly dataDir?: string;
  /** redis://host:port[/db]; when set, the Redis backend is used and dataDir is ignored. */
  readonly redisUrl?: string;
}

export const DEFAULT_DATA_DIR = "data";

export function openStore(options: OpenStoreOptions): Promise<Store> {
  if (options.redisUrl !== undefined && options.redisUrl !== "") return RedisStore.open(options.redisUrl);
  return EmbeddedStore.open(options.dataDir ?? DEFAULT_DATA_DIR);
}
