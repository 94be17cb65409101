// Flag: a boolean that starts false and, once enabled anywhere, is enabled everywhere.
// Join is logical or.
import { refuse } from "./errors.js";
import { ReplicatedData, type Lattice, type TypedDelta } from "./lattice.js";

export interface FlagData {
  enabled: boolean;
}
export type FlagDelta = TypedDelta<"Flag", FlagData>;

const flagLattice: Lattice<"Flag", FlagData> = {
  type: "Flag",
  empty: () => ({ enabled: false }),
  joinInto(target, source) {
    target.enabled ||= source.enabled;
  },
};

export class Flag extends ReplicatedData<"Flag", FlagData, boolean> {
  constructor(replicaId: string, data?: FlagData) {
    super(flagLattice, replicaId, data);
  }

  value(): boolean {
    return this.data.enabled;
  }

  enable(): void {
    if (!this.data.enabled) this.commit({ enabled: true });
  }

  /** Refused: enabling cannot be undone, replicas would not agree on when it was. */
  disable(): never {
    refuse("a Flag cannot be disabled once enabled");
  }

  clone(replicaId = this.replicaId): this {
    return new Flag(replicaId, this.copyOf(this.data)) as this;
  }
}
