// What every replicated data type shares. Each type is a join-semilattice: `joinInto` merges
// two states, and is commutative, associative and idempotent. A local operation builds a small
// state fragment (the delta) and joins it into the state, so a delta is itself a lattice
// element: applying deltas is a join, which is why they may arrive in any order, repeated.
import { refuse } from "./errors.js";
import { validReplicaId } from "./replica-map.js";
import type { AnyCrdt, CrdtDelta, CrdtType } from "./types.js";

export interface Lattice<T extends CrdtType, D> {
  readonly type: T;
  empty(): D;
  /** target := target ⊔ source. Must not keep references to mutable parts of `source`. */
  joinInto(target: D, source: D): void;
}

export interface TypedDelta<T extends CrdtType, D> {
  readonly type: T;
  readonly data: D;
}

export abstract class ReplicatedData<T extends CrdtType, D, V> {
  readonly replicaId: string;
  protected readonly data: D;
  /** The join of this replica's own changes since the last resetDelta(). */
  private pending: D | undefined;

  protected constructor(
    private readonly lattice: Lattice<T, D>,
    replicaId: string,
    data: D | undefined,
  ) {
    if (!validReplicaId(replicaId)) refuse("a replica id must be a non-empty string");
    this.replicaId = replicaId;
    this.data = data ?? lattice.empty();
  }

  get type(): T {
    return this.lattice.type;
  }

  abstract value(): V;

  /** A copy of this state owned by `replicaId` (default: the same replica), with no delta. */
  abstract clone(replicaId?: string): this;

  /** The local changes since the last resetDelta(), or undefined when there are none. */
  delta(): TypedDelta<T, D> | undefined {
    return this.pending === undefined ? undefined : { type: this.type, data: this.copyOf(this.pending) };
  }

  hasDelta(): boolean {
    return this.pending !== undefined;
  }

  resetDelta(): void {
    this.pending = undefined;
  }

  /** delta() then resetDelta(): hands the changes over for replication exactly once. */
  takeDelta(): TypedDelta<T, D> | undefined {
    const taken = this.pending === undefined ? undefined : { type: this.type, data: this.pending };
    this.pending = undefined;
    return taken;
  }

  /** Joins a delta from any replica. Remote deltas do not become part of this replica's delta. */
  applyDelta(delta: CrdtDelta): void {
    if (delta.type !== this.type) refuse(`cannot apply a ${delta.type} delta to a ${this.type}`);
    this.lattice.joinInto(this.data, delta.data as D);
  }

  /** Joins another replica's full state of the same type. */
  merge(other: AnyCrdt): void {
    if (other.type !== this.type) refuse(`cannot merge a ${other.type} state into a ${this.type}`);
    const source = (other as unknown as ReplicatedData<T, D, V>).data;
    this.lattice.joinInto(this.data, source === this.data ? this.copyOf(source) : source);
  }

  /** The state itself, for the codec and for composite types. Callers must not change it. */
  stateData(): D {
    return this.data;
  }

  /** Makes a local change: joins the fragment into the state and into the pending delta. */
  protected commit(fragment: D): void {
    this.lattice.joinInto(this.data, fragment);
    if (this.pending === undefined) this.pending = this.lattice.empty();
    this.lattice.joinInto(this.pending, fragment);
  }

  protected copyOf(data: D): D {
    const copy = this.lattice.empty();
    this.lattice.joinInto(copy, data);
    return copy;
  }
}
