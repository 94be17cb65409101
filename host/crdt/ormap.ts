// ORMap: a map from byte keys to replicated values of any type here (ORMaps nest). Keys are
// add-wins like ORSet elements. What makes removal sound is that a value is not one merged
// object but a set of *versions*, one per writing replica, each under an outer dot:
//
//   - a replica's version holds the join of its own changes to that key; each update replaces
//     it under a new dot (the old dot goes into the delta's context, so it is dropped everywhere);
//   - the key's value is the join of its surviving versions;
//   - remove(key) drops the versions this replica has seen, and with them their contributions.
//
// So a removed-and-recreated key starts afresh, while an update concurrent with a remove keeps
// the key, holding what that updater contributed. Joining version sets is the ORSet join, hence
// commutative, associative and idempotent for any nesting.
//
// Each version is written under a *lineage id* "<replica>#<outer counter>" rather than the
// replica id: when a replica's version is removed and it later writes the key again, it starts a
// new lineage, so dots inside the new value can never collide with dots of the removed one that
// a concurrent version elsewhere may have observed.
import { bytesKey, copyBytes } from "./bytes-key.js";
import { compareDots } from "./causal-context.js";
import { allDots, causalFragment, dotsOf, emptyCausalData, joinCausalData, type CausalData, type DotStoreEntry, type DottedPayload } from "./dot-store.js";
import { refuse } from "./errors.js";
import { createCrdt } from "./factory.js";
import { ReplicatedData, type Lattice, type TypedDelta } from "./lattice.js";
import { isCrdtType, type AnyCrdt, type CrdtOfType, type CrdtType, type ORMapEntryValue } from "./types.js";

/** One writer's contribution to a key. Never changed once made: updates make a new version. */
export interface MapVersion {
  /** The lineage id the value was written under. */
  readonly writer: string;
  readonly value: AnyCrdt;
}

export type ORMapData = CausalData<MapVersion>;
export type ORMapDelta = TypedDelta<"ORMap", ORMapData>;

const ormapLattice: Lattice<"ORMap", ORMapData> = {
  type: "ORMap",
  empty: () => emptyCausalData<MapVersion>(),
  joinInto: joinCausalData,
};

type Versions = DotStoreEntry<MapVersion>;

export class ORMap extends ReplicatedData<"ORMap", ORMapData, ORMapEntryValue[]> {
  constructor(replicaId: string, data?: ORMapData) {
    super(ormapLattice, replicaId, data);
  }

  /** The entries in canonical (byte-lexicographic key) order, with their values. */
  value(): ORMapEntryValue[] {
    return this.sortedKeys().map((key) => {
      const view = this.view(this.data.entries.get(key)!);
      return { key: copyBytes(this.data.entries.get(key)!.bytes), type: view.type, value: view.value() };
    });
  }

  get size(): number {
    return this.data.entries.size;
  }

  has(key: Uint8Array): boolean {
    return this.data.entries.has(bytesKey(key));
  }

  keys(): Uint8Array[] {
    return this.sortedKeys().map((key) => copyBytes(this.data.entries.get(key)!.bytes));
  }

  /** A detached copy of the key's value: changing it does not change the map (use update). */
  get(key: Uint8Array): AnyCrdt | undefined {
    const versions = this.data.entries.get(bytesKey(key));
    return versions === undefined ? undefined : this.view(versions);
  }

  /** Adds the key with an empty value of `type` unless present; returns a detached copy of its value. */
  getOrCreate<T extends CrdtType>(key: Uint8Array, type: T): CrdtOfType<T> {
    this.update(key, type, () => {});
    return this.get(key) as CrdtOfType<T>;
  }

  /**
   * Changes the key's value (creating the key with an empty value of `type` if absent) by
   * running `mutate` on a working copy and recording what it changed. Refused when the key
   * holds another type. If `mutate` throws, the map is unchanged.
   */
  update<T extends CrdtType>(key: Uint8Array, type: T, mutate: (value: CrdtOfType<T>) => void): void {
    if (!isCrdtType(type)) refuse(`unknown CRDT type ${JSON.stringify(type)}`);
    const mapKey = bytesKey(key);
    const versions = this.data.entries.get(mapKey);
    if (versions !== undefined && this.visibleType(versions) !== type) {
      refuse(`ORMap key ${mapKey || "(empty)"} holds a ${this.visibleType(versions)}, not a ${type}`);
    }
    const own = versions === undefined ? undefined : this.ownVersion(versions);
    const dot = this.data.context.nextDot(this.replicaId);
    const continuesLineage = own !== undefined && own.payload.value.type === type;
    const writer = continuesLineage ? own.payload.writer : `${this.replicaId}#${dot.counter}`;

    const working = versions === undefined ? createCrdt(type, writer) : this.view(versions, writer);
    mutate(working as CrdtOfType<T>);
    const change = working.takeDelta();
    if (versions !== undefined && change === undefined) return;

    const value = continuesLineage ? own.payload.value.clone() : createCrdt(type, writer);
    if (change !== undefined) value.applyDelta(change);
    const dotted: DottedPayload<MapVersion> = Object.freeze({ dot, payload: Object.freeze({ writer, value }) });
    this.commit(causalFragment([{ key: mapKey, bytes: copyBytes(key), dotted }], own === undefined ? [] : [own.dot]));
  }

  /** Removes the key with every version of it this replica has seen. */
  remove(key: Uint8Array): void {
    const versions = this.data.entries.get(bytesKey(key));
    if (versions !== undefined) this.commit(causalFragment<MapVersion>([], dotsOf(versions)));
  }

  clear(): void {
    if (this.data.entries.size > 0) this.commit(causalFragment<MapVersion>([], allDots(this.data)));
  }

  clone(replicaId = this.replicaId): this {
    return new ORMap(replicaId, this.copyOf(this.data)) as this;
  }

  private sortedKeys(): string[] {
    return [...this.data.entries.keys()].sort();
  }

  /**
   * The key's value: the join of its surviving versions. If replicas concurrently created the
   * key with different types, the type of the version with the greatest dot wins (the same
   * choice everywhere) and versions of other types are not shown.
   */
  private view(versions: Versions, replicaId?: string): AnyCrdt {
    const type = this.visibleType(versions);
    const viewer = replicaId ?? this.ownVersion(versions)?.payload.writer ?? this.replicaId;
    const view = createCrdt(type, viewer);
    for (const { payload } of versions.dots.values()) if (payload.value.type === type) view.merge(payload.value);
    return view;
  }

  private visibleType(versions: Versions): CrdtType {
    return latest([...versions.dots.values()])!.payload.value.type;
  }

  private ownVersion(versions: Versions): DottedPayload<MapVersion> | undefined {
    return latest([...versions.dots.values()].filter(({ dot }) => dot.replicaId === this.replicaId));
  }
}

/** The replica a lineage id ("<replica>#<n>": voters and LWW writers inside a map) belongs to. */
export function replicaOfLineage(lineageId: string): string {
  const at = lineageId.lastIndexOf("#");
  return at < 0 ? lineageId : lineageId.slice(0, at);
}

function latest(versions: Array<DottedPayload<MapVersion>>): DottedPayload<MapVersion> | undefined {
  return versions.reduce<DottedPayload<MapVersion> | undefined>((best, v) => (best === undefined || compareDots(v.dot, best.dot) > 0 ? v : best), undefined);
}
