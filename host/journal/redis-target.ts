// Where Redis is, as `--redis` says it. Kept apart from redis-connection.ts so a node on the
// embedded store parses its settings without loading ioredis (~35 ms of its start-up).
/** Where Redis is: one URL (standalone), or seed URLs of a Redis Cluster. */
export interface RedisTarget {
  readonly urls: readonly string[];
  readonly cluster: boolean;
}

/** `--redis` value(s): comma-separated URLs; a Redis Cluster takes several seeds. */
export function parseRedisTarget(urls: string, cluster: boolean): RedisTarget {
  const list = urls.split(",").map((u) => u.trim()).filter((u) => u !== "");
  if (list.length === 0) throw new Error("--redis needs a URL like redis://127.0.0.1:6379");
  if (list.length > 1 && !cluster) throw new Error("several --redis URLs are seeds of a Redis Cluster: add --redis-cluster");
  return { urls: list, cluster };
}

export function describeTarget(target: RedisTarget): string {
  return target.cluster ? `Redis Cluster (${target.urls.join(", ")})` : target.urls[0]!;
}
