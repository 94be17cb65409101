// ORSet: an observed-remove set of byte strings with add-wins semantics. Every add tags the
// element with a fresh dot; remove and clear drop the dots this replica has observed. An add
// concurrent with a remove brings a dot the remover never saw, so the element stays.
import { bytesKey, copyBytes } from "./bytes-key.js";
import { allDots, causalFragment, dotsOf, emptyCausalData, joinCausalData, type CausalData } from "./dot-store.js";
import { ReplicatedData, type Lattice, type TypedDelta } from "./lattice.js";

/** An ORSet dot carries no payload; its presence alone keeps the element. */
export type ORSetData = CausalData<true>;
export type ORSetDelta = TypedDelta<"ORSet", ORSetData>;

export const orsetLattice: Lattice<"ORSet", ORSetData> = {
  type: "ORSet",
  empty: () => emptyCausalData<true>(),
  joinInto: joinCausalData,
};

export class ORSet extends ReplicatedData<"ORSet", ORSetData, Uint8Array[]> {
  constructor(replicaId: string, data?: ORSetData) {
    super(orsetLattice, replicaId, data);
  }

  /** The elements in canonical (byte-lexicographic) order. */
  value(): Uint8Array[] {
    return [...this.data.entries.keys()].sort().map((key) => copyBytes(this.data.entries.get(key)!.bytes));
  }

  get size(): number {
    return this.data.entries.size;
  }

  has(element: Uint8Array): boolean {
    return this.data.entries.has(bytesKey(element));
  }

  /**
   * Adds the element under a fresh dot, replacing the dots it had here (they are covered by
   * the new one, and keeping state small). Adding a present element still takes a new dot,
   * so that it wins over removes concurrent with this add.
   */
  add(element: Uint8Array): void {
    const key = bytesKey(element);
    const dot = this.data.context.nextDot(this.replicaId);
    const replaced = dotsOf(this.data.entries.get(key));
    const bytes = copyBytes(element);
    this.commit(causalFragment([{ key, bytes, dotted: { dot, payload: true } }], replaced));
  }

  /** Removes the element as observed here; adds elsewhere that this replica has not seen win. */
  remove(element: Uint8Array): void {
    const entry = this.data.entries.get(bytesKey(element));
    if (entry === undefined) return;
    this.commit(causalFragment<true>([], dotsOf(entry)));
  }

  clear(): void {
    if (this.data.entries.size === 0) return;
    this.commit(causalFragment<true>([], allDots(this.data)));
  }

  clone(replicaId = this.replicaId): this {
    return new ORSet(replicaId, this.copyOf(this.data)) as this;
  }
}
