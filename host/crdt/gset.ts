// GSet: a grow-only set of byte strings. State and delta are sets; join is union.
import { bytesKey, copyBytes, type BytesKey } from "./bytes-key.js";
import { refuse } from "./errors.js";
import { ReplicatedData, type Lattice, type TypedDelta } from "./lattice.js";

/** Element key (hex) -> element. */
export type GSetData = Map<BytesKey, Uint8Array>;
export type GSetDelta = TypedDelta<"GSet", GSetData>;

const gsetLattice: Lattice<"GSet", GSetData> = {
  type: "GSet",
  empty: () => new Map(),
  joinInto(target, source) {
    // Stored elements are never changed in place, so sharing them is safe.
    for (const [key, element] of source) if (!target.has(key)) target.set(key, element);
  },
};

export class GSet extends ReplicatedData<"GSet", GSetData, Uint8Array[]> {
  constructor(replicaId: string, data?: GSetData) {
    super(gsetLattice, replicaId, data);
  }

  /** The elements in canonical (byte-lexicographic) order. */
  value(): Uint8Array[] {
    return [...this.data.keys()].sort().map((key) => copyBytes(this.data.get(key)!));
  }

  get size(): number {
    return this.data.size;
  }

  has(element: Uint8Array): boolean {
    return this.data.has(bytesKey(element));
  }

  add(element: Uint8Array): void {
    const key = bytesKey(element);
    if (this.data.has(key)) return;
    this.commit(new Map([[key, copyBytes(element)]]));
  }

  /** Refused: a GSet only grows. */
  remove(_element: Uint8Array): never {
    refuse("cannot remove from a GSet: it only grows (use an ORSet)");
  }

  /** Refused: a GSet only grows. */
  clear(): never {
    refuse("cannot clear a GSet: it only grows (use an ORSet)");
  }

  clone(replicaId = this.replicaId): this {
    return new GSet(replicaId, this.copyOf(this.data)) as this;
  }
}
