// GCounter: a grow-only counter. Each replica counts its own increments; the value is the sum.
// State and delta are both a map replica -> that replica's total; join keeps the larger total.
import { checkedAmount, checkedTotal } from "./counter-amount.js";
import { refuse } from "./errors.js";
import { ReplicatedData, type Lattice, type TypedDelta } from "./lattice.js";
import { joinReplicaMaps, maxBigint, sumValues, type ReplicaMap } from "./replica-map.js";

export type GCounterData = ReplicaMap<bigint>;
export type GCounterDelta = TypedDelta<"GCounter", GCounterData>;

export const replicaTotalsLattice = {
  empty: (): ReplicaMap<bigint> => new Map(),
  joinInto: (target: ReplicaMap<bigint>, source: ReplicaMap<bigint>) => joinReplicaMaps(target, source, maxBigint),
};

const gcounterLattice: Lattice<"GCounter", GCounterData> = { type: "GCounter", ...replicaTotalsLattice };

export class GCounter extends ReplicatedData<"GCounter", GCounterData, bigint> {
  constructor(replicaId: string, data?: GCounterData) {
    super(gcounterLattice, replicaId, data);
  }

  value(): bigint {
    return sumValues(this.data);
  }

  increment(amount: number | bigint = 1): void {
    const by = checkedAmount(amount, "GCounter.increment");
    if (by === 0n) return;
    const total = checkedTotal((this.data.get(this.replicaId) ?? 0n) + by, "GCounter.increment");
    this.commit(new Map([[this.replicaId, total]]));
  }

  /** Refused: a GCounter only grows. Present so that a generic caller gets a clear answer. */
  decrement(_amount?: number | bigint): never {
    refuse("a GCounter cannot be decremented: it only grows (use a PNCounter)");
  }

  clone(replicaId = this.replicaId): this {
    return new GCounter(replicaId, this.copyOf(this.data)) as this;
  }
}
