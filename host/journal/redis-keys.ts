// The Redis key layout (one scheme for one node and for a cluster). Every key of an entity
// carries its shard's hash tag, and so does the shard's lease, so one Lua script can check
// the lease and write the entity atomically in one slot:
//   ks:{s:<cluster>:<shard>}:lease                  hash {owner, epoch, until}
//   ks:{s:<cluster>:<shard>}:<pid>/<key>:j | :s | :v journal stream, snapshot, value
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
    const entity = `${tag}:${tagPart(id.persistenceId)}/${tagPart(id.key)}`;
    return { shard, journal: `${entity}:j`, snapshot: `${entity}:s`, value: `${entity}:v`, replicas: `${entity}:r`, replicaCounters: `${tag}:rc`, outbox: `${tag}:ob`, replies: `${entity}:i`, replyTimes: `${entity}:it`, lease: `${tag}:lease` };
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
