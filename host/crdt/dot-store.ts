// The causal core shared by ORSet and ORMap: byte-keyed entries, each holding the dots that
// keep it alive (with a payload per dot), plus the causal context of everything seen. An entry
// lives while it has a dot that no remove has observed. Joining two stores keeps a dot when
// both sides have it, or when the other side has never seen it; a dot one side has seen but
// no longer holds was removed there, and the remove wins over that (and only that) dot. This
// is what makes adds win over concurrent removes: a concurrent add brings a dot the remover
// had not seen.
import type { BytesKey } from "./bytes-key.js";
import { CausalContext, dotKey, type Dot, type DotKey } from "./causal-context.js";

/** One dot of an entry. Never changed once made, so stores may share it. */
export interface DottedPayload<P> {
  readonly dot: Dot;
  readonly payload: P;
}

export interface DotStoreEntry<P> {
  readonly bytes: Uint8Array;
  readonly dots: Map<DotKey, DottedPayload<P>>;
}

export interface CausalData<P> {
  readonly entries: Map<BytesKey, DotStoreEntry<P>>;
  readonly context: CausalContext;
}

export function emptyCausalData<P>(): CausalData<P> {
  return { entries: new Map(), context: new CausalContext() };
}

/** target := target ⊔ source. Shares only the immutable dotted payloads, never the maps. */
export function joinCausalData<P>(target: CausalData<P>, source: CausalData<P>): void {
  for (const [key, entry] of target.entries) {
    const sourceEntry = source.entries.get(key);
    for (const [k, dotted] of entry.dots) {
      const removedInSource = !sourceEntry?.dots.has(k) && source.context.has(dotted.dot);
      if (removedInSource) entry.dots.delete(k);
    }
    if (entry.dots.size === 0) target.entries.delete(key);
  }
  for (const [key, entry] of source.entries) {
    for (const [k, dotted] of entry.dots) {
      // Seen by target already: either it holds the dot, or it removed it.
      if (target.context.has(dotted.dot)) continue;
      entryFor(target, key, entry.bytes).dots.set(k, dotted);
    }
  }
  target.context.join(source.context);
}

export function entryFor<P>(data: CausalData<P>, key: BytesKey, bytes: Uint8Array): DotStoreEntry<P> {
  let entry = data.entries.get(key);
  if (entry === undefined) data.entries.set(key, (entry = { bytes, dots: new Map() }));
  return entry;
}

/**
 * A delta fragment: `added` entries (each with one fresh dot) and a context holding the
 * fresh dots plus the dots this change removes (`removed`). Joined into a state it inserts
 * the additions and drops exactly the removed dots.
 */
export function causalFragment<P>(
  added: ReadonlyArray<{ key: BytesKey; bytes: Uint8Array; dotted: DottedPayload<P> }>,
  removed: Iterable<Dot>,
): CausalData<P> {
  const fragment = emptyCausalData<P>();
  for (const { key, bytes, dotted } of added) {
    entryFor(fragment, key, bytes).dots.set(dotKey(dotted.dot), dotted);
    fragment.context.add(dotted.dot);
  }
  for (const dot of removed) fragment.context.add(dot);
  return fragment;
}

export function dotsOf<P>(entry: DotStoreEntry<P> | undefined): Dot[] {
  return entry === undefined ? [] : [...entry.dots.values()].map((dotted) => dotted.dot);
}

export function allDots<P>(data: CausalData<P>): Dot[] {
  return [...data.entries.values()].flatMap((entry) => dotsOf(entry));
}
