// The Redis key layout (one scheme for one node and for a cluster). Every key of an entity
// carries its shard's hash tag, and so does the shard's lease, so one Lua script can check
// the lease and write the entity atomically in one slot:
//   ks:{s:<cluster>:<shard>}:lease                  hash {owner, epoch, until}
//   ks:{s:<cluster>:<shard>}:<pid>/<key>:j | :s | :v journal stream, snapshot, value
//   ks:{s:<cluster>:<shard>}:f:<pid>                stream: the shard's appends of <pid> (event feed)
//   ks:{s:<cluster>:<shard>}:fo | :fp:<sub>/<pid>  feed offsets (hash) | parked entities (hash)
// Topics: ks:{t:<cluster>:<topic>} (a stream), with its dead-letter streams in the same slot.
// Modules live per cluster: ks:{m:<cluster>:<name>}:m | :b | :a, names in ks:{c:<cluster>}:modules.
import { KeystateError } from "../errors.js";
import { DEFAULT_SHARD_COUNT, shardOfId } from "./shards.js";
import type { EntityId } from "./types.js";

export const DEFAULT_CLUSTER_NAME = "default";
const CLUSTER_NAME = /^[A-Za-z0-9_.-]{1,64}$/;

export function checkClusterName(name: string): string {
  if (!CLUSTER_NAME.test(name)) {
    throw new Error(`the cluster name must be 1-64 letters, digits, '_', '.' or '-', got ${JSON.stringify(name)}`);
  }
  return name;
}

/**
 * encodeURIComponent escapes `{`, `}`, `/` and `%`, so an id can neither end the hash
 * tag early nor make two different (pid, key) pairs collide; it also rejects lone surrogates.
 */
export function tagPart(part: string): string {
  try {
    return encodeURIComponent(part);
  } catch {
    throw new KeystateError("INVALID_REQUEST", `storage key part is not well-formed Unicode: ${JSON.stringify(part)}`);
  }
}

export interface EntityKeys {
  readonly shard: number;
  readonly journal: string;
  readonly snapshot: string;
  readonly value: string;
  /** Replicated entities: one field per writing node, each its whole copy. */
  readonly replicas: string;
  /** The shard's per-writer save counters (one per shard). */
  readonly replicaCounters: string;
  /** The shard's outbox: undelivered asynchronous side effects (one hash per shard). */
  readonly outbox: string;
  /** The entity's idempotent replies (hash key -> reply) and when each key was stored (sorted set). */
  readonly replies: string;
  readonly replyTimes: string;
  /** The event feed of the entity's type in its shard (one stream per shard and persistence id). */
  readonly feed: string;
  readonly lease: string;
}

export class RedisLayout {
  constructor(
    readonly cluster: string = DEFAULT_CLUSTER_NAME,
    readonly shardCount: number = DEFAULT_SHARD_COUNT,
  ) {
    checkClusterName(cluster);
  }

  shardTag(shard: number): string {
    return `ks:{s:${this.cluster}:${shard}}`;
  }

  leaseKey(shard: number): string {
    return `${this.shardTag(shard)}:lease`;
  }

  entityKeys(id: EntityId): EntityKeys {
    const shard = shardOfId(id, this.shardCount);
    const tag = this.shardTag(shard);
    const pid = tagPart(id.persistenceId);
    const entity = `${tag}:${pid}/${tagPart(id.key)}`;
    return { shard, journal: `${entity}:j`, snapshot: `${entity}:s`, value: `${entity}:v`, replicas: `${entity}:r`, replicaCounters: `${tag}:rc`, outbox: `${tag}:ob`, replies: `${entity}:i`, replyTimes: `${entity}:it`, feed: `${tag}:f:${pid}`, lease: `${tag}:lease` };
  }

  /** A topic's stream; its consumer groups are the subscriptions, its dead letters `<stream>:dlq:<subscription>`. */
  topicKey(topic: string): string {
    return `ks:{t:${this.cluster}:${tagPart(topic)}}`;
  }

  /** The event feed of `persistenceId` in `shard`: entries k (entity key, as tagPart encodes it), s (first seq), n (count). */
  feedKey(shard: number, persistenceId: string): string {
    return `${this.shardTag(shard)}:f:${tagPart(persistenceId)}`;
  }

  /** The shard's feed offsets: field `<subscription>/<pid>` (both tagPart-encoded) = offset. */
  feedOffsetsKey(shard: number): string {
    return `${this.shardTag(shard)}:fo`;
  }

  /** One subscription's parked entities of `persistenceId` in `shard`: field entity key = first seq not yet handled. */
  feedParkedKey(shard: number, subscription: string, persistenceId: string): string {
    return `${this.shardTag(shard)}:fp:${tagPart(subscription)}/${tagPart(persistenceId)}`;
  }

  outboxKey(shard: number): string {
    return `${this.shardTag(shard)}:ob`;
  }

  replicaCountersKey(shard: number): string {
    return `${this.shardTag(shard)}:rc`;
  }

  moduleKeys(name: string): { meta: string; bytes: string; artifacts: string } {
    const tag = `ks:{m:${this.cluster}:${tagPart(name)}}`;
    return { meta: `${tag}:m`, bytes: `${tag}:b`, artifacts: `${tag}:a` };
  }

  /** Cluster-wide metadata shares one tag (one slot; small data). */
  clusterKey(suffix: string): string {
    return `ks:{c:${this.cluster}}:${suffix}`;
  }

  get moduleIndexKey(): string {
    return this.clusterKey("modules");
  }
}
