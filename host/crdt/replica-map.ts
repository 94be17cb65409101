// Per-replica maps (replica id -> a value only that replica writes) are the building block of
// the counters, the vote and version vectors. They join pointwise: for each replica keep the
// greater of the two values, which is commutative, associative and idempotent as long as
// `greater` is a total order choice that does not depend on argument order.
import { compareStrings } from "./bytes-key.js";

export type ReplicaMap<T> = Map<string, T>;

/** target := target ⊔ source, keeping for each replica the value `winner` picks. */
export function joinReplicaMaps<T>(target: ReplicaMap<T>, source: ReadonlyMap<string, T>, winner: (a: T, b: T) => T): void {
  for (const [replicaId, incoming] of source) {
    const current = target.get(replicaId);
    target.set(replicaId, current === undefined ? incoming : winner(current, incoming));
  }
}

export function maxBigint(a: bigint, b: bigint): bigint {
  return a >= b ? a : b;
}

export function sumValues(map: ReadonlyMap<string, bigint>): bigint {
  let total = 0n;
  for (const value of map.values()) total += value;
  return total;
}

/** Entries in replica-id order, so that encodings of equal maps are equal bytes. */
export function sortedReplicaEntries<T>(map: ReadonlyMap<string, T>): Array<[string, T]> {
  return [...map.entries()].sort(([a], [b]) => compareStrings(a, b));
}

export function validReplicaId(replicaId: string): boolean {
  return typeof replicaId === "string" && replicaId.length > 0;
}
