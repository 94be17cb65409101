// Replicated entities on a store only one node opens (the embedded store): one copy per
// entity, kept as its value, and no counters (there is nobody to have missed a change).
import type { EntityId, ReplicaCopies, ReplicaStore, ValueStore } from "./types.js";

export class SingleCopyReplicas implements ReplicaStore {
  constructor(private readonly values: ValueStore) {}

  async load(id: EntityId): Promise<ReplicaCopies> {
    const copy = await this.values.get(id);
    return { shard: 0, copies: copy === undefined ? [] : [copy], counters: new Map() };
  }

  async save(id: EntityId, _writer: string, state: Uint8Array): Promise<number> {
    await this.values.put(id, state);
    return 0;
  }

  copyOf(id: EntityId): Promise<Uint8Array | undefined> {
    return this.values.get(id);
  }

  async shardCounters(): Promise<Map<string, number>> {
    return new Map();
  }
}
