// What a replicated entity needs from the cluster to be one of many replicas: the ids this
// process writes under, which replica ids belong to nodes that are gone for good, and a way
// to ship a batch's deltas to the other nodes and wait until enough of them applied it.
// A single node has none of this: its one replica is the whole truth.
import type { WriteConsistency } from "../abi/replicated-abi.js";
import type { CrdtDelta } from "../crdt/index.js";
import type { EntityId } from "../journal/types.js";

/** One batch's durable local change of one entity, as it travels to the other nodes. */
export interface ReplicatedChange {
  /** The entity's storage id (persistence id prefixed `replicated:`). */
  readonly id: EntityId;
  readonly shard: number;
  /** This node's save counter of the shard after the batch's write (anti-entropy finds gaps in it). */
  readonly counter: number;
  readonly deltas: readonly CrdtDelta[];
  /** The strongest write consistency a command of the batch asked for. */
  readonly consistency: WriteConsistency;
}

export interface ReplicaAcks {
  /** Resolves once `level` (majority / all of the live nodes, counting this one) applied the change; rejects at `deadline` (ms since the epoch) or the link's own limit. */
  wait(level: WriteConsistency, deadline: number | undefined): Promise<void>;
}

export interface ReplicaSync {
  /** What this node's stored copy is filed under: its node id (stable across restarts). */
  readonly writer: string;
  /** The CRDT replica id of this process (node id plus incarnation): never reused by a later process. */
  readonly replicaId: string;
  /** A replica id whose process is gone for good: its votes are retired. */
  isGone(replicaId: string): boolean;
  /** An entity of `shard` was read from the store with these save counters (where anti-entropy starts for the shard). */
  loaded(shard: number, counters: ReadonlyMap<string, number>): void;
  /** Ships the change to the other nodes (after it is durable here). */
  publish(change: ReplicatedChange): ReplicaAcks;
}
