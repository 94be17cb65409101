// Conversions of the small shared messages (64-bit integers, replica counts, dots, causal
// contexts) between the data model and protobufjs plain objects. Decoding validates what the
// types rely on and refuses anything else: a state that breaks an invariant must not load.
import { bytesKey, compareStrings } from "../bytes-key.js";
import { CausalContext, compareDots, dotKey, type Dot } from "../causal-context.js";
import type { CausalData, DottedPayload } from "../dot-store.js";
import { refuse } from "../errors.js";
import { sortedReplicaEntries, type ReplicaMap } from "../replica-map.js";
import type { WireCausalContext, WireDot, WireInt64, WireReplicaCount } from "./wire-types.js";

export function invalid(what: string): never {
  refuse(`cannot decode CRDT data: ${what}`);
}

export function int64ToWire(value: bigint | number): string {
  return value.toString();
}

export function wireToBigint(value: WireInt64 | undefined): bigint {
  return BigInt(value ?? 0);
}

/** Counters, versions and clocks are JavaScript numbers here, so they must be safe integers. */
export function wireToSafeInteger(value: WireInt64 | undefined, what: string): number {
  const parsed = Number(value ?? 0);
  if (!Number.isSafeInteger(parsed)) invalid(`${what} ${String(value)} is not a safe integer`);
  return parsed;
}

export function wireToReplicaId(replicaId: string | undefined, what: string): string {
  if (!replicaId) invalid(`${what} has an empty replica id`);
  return replicaId;
}

export function bytesFromWire(bytes: Uint8Array | undefined): Uint8Array {
  // protobufjs hands out Buffers (views into the input); keep plain private copies.
  return new Uint8Array(bytes ?? []);
}

export function totalsToWire(totals: ReadonlyMap<string, bigint>): WireReplicaCount[] {
  return sortedReplicaEntries(totals).map(([replicaId, count]) => ({ replicaId, count: int64ToWire(count) }));
}

export function totalsFromWire(wire: WireReplicaCount[] | undefined): ReplicaMap<bigint> {
  const totals: ReplicaMap<bigint> = new Map();
  for (const entry of wire ?? []) {
    const count = wireToBigint(entry.count);
    const replicaId = wireToReplicaId(entry.replicaId, "a counter total");
    // A zero total is the same as no entry; dropping it keeps encodings canonical.
    if (count > 0n && count > (totals.get(replicaId) ?? 0n)) totals.set(replicaId, count);
  }
  return totals;
}

export function dotToWire(dot: Dot): WireDot {
  return { replicaId: dot.replicaId, counter: int64ToWire(dot.counter) };
}

export function dotFromWire(wire: WireDot | undefined): Dot {
  const counter = wireToSafeInteger(wire?.counter, "a dot counter");
  if (counter < 1) invalid("a dot counter must be at least 1");
  return { replicaId: wireToReplicaId(wire?.replicaId, "a dot"), counter };
}

export function contextToWire(context: CausalContext): WireCausalContext {
  return {
    versionVector: context.versionVector().map(([replicaId, count]) => ({ replicaId, count: int64ToWire(count) })),
    cloud: context.cloudDots().map(dotToWire),
  };
}

export function contextFromWire(wire: WireCausalContext | undefined): CausalContext {
  const context = CausalContext.of((wire?.cloud ?? []).map(dotFromWire));
  for (const entry of wire?.versionVector ?? []) {
    const replicaId = wireToReplicaId(entry.replicaId, "a version vector entry");
    context.addPrefix(replicaId, wireToSafeInteger(entry.count, "a version vector count"));
  }
  return context;
}

/** Entries in key order, each entry's dots in dot order: the canonical listing of a dot store. */
export function sortedCausalEntries<P>(data: CausalData<P>): Array<{ bytes: Uint8Array; dotted: Array<DottedPayload<P>> }> {
  return [...data.entries.entries()]
    .sort(([a], [b]) => compareStrings(a, b))
    .map(([, entry]) => ({ bytes: entry.bytes, dotted: [...entry.dots.values()].sort((a, b) => compareDots(a.dot, b.dot)) }));
}

/** Rebuilds a dot store entry by entry, refusing dots the context has not seen. */
export function addDecodedEntry<P>(data: CausalData<P>, bytes: Uint8Array, dotted: Array<DottedPayload<P>>): void {
  if (dotted.length === 0) invalid("an entry has no dots");
  const key = bytesKey(bytes);
  let entry = data.entries.get(key);
  if (entry === undefined) data.entries.set(key, (entry = { bytes, dots: new Map() }));
  for (const item of dotted) {
    if (!data.context.has(item.dot)) invalid(`dot ${dotKey(item.dot)} of an entry is missing from the causal context`);
    entry.dots.set(dotKey(item.dot), item);
  }
}
