// PNCounter: a counter that goes both ways, built from two grow-only halves: the totals of
// increments and of decrements per replica. The value is their difference (may be negative).
import { checkedAmount, checkedTotal } from "./counter-amount.js";
import { replicaTotalsLattice } from "./gcounter.js";
import { ReplicatedData, type Lattice, type TypedDelta } from "./lattice.js";
import { sumValues, type ReplicaMap } from "./replica-map.js";

export interface PNCounterData {
  readonly increments: ReplicaMap<bigint>;
  readonly decrements: ReplicaMap<bigint>;
}
export type PNCounterDelta = TypedDelta<"PNCounter", PNCounterData>;

const pncounterLattice: Lattice<"PNCounter", PNCounterData> = {
  type: "PNCounter",
  empty: () => ({ increments: new Map(), decrements: new Map() }),
  joinInto(target, source) {
    replicaTotalsLattice.joinInto(target.increments, source.increments);
    replicaTotalsLattice.joinInto(target.decrements, source.decrements);
  },
};

export class PNCounter extends ReplicatedData<"PNCounter", PNCounterData, bigint> {
  constructor(replicaId: string, data?: PNCounterData) {
    super(pncounterLattice, replicaId, data);
  }

  value(): bigint {
    return sumValues(this.data.increments) - sumValues(this.data.decrements);
  }

  increment(amount: number | bigint = 1): void {
    this.grow("increments", checkedAmount(amount, "PNCounter.increment"), "PNCounter.increment");
  }

  decrement(amount: number | bigint = 1): void {
    this.grow("decrements", checkedAmount(amount, "PNCounter.decrement"), "PNCounter.decrement");
  }

  clone(replicaId = this.replicaId): this {
    return new PNCounter(replicaId, this.copyOf(this.data)) as this;
  }

  private grow(half: keyof PNCounterData, by: bigint, operation: string): void {
    if (by === 0n) return;
    const total = checkedTotal((this.data[half].get(this.replicaId) ?? 0n) + by, operation);
    const fragment = pncounterLattice.empty();
    fragment[half].set(this.replicaId, total);
    this.commit(fragment);
  }
}
