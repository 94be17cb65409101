// Dots and causal contexts: the bookkeeping that lets ORSet and ORMap remove only what a
// replica had observed. A dot names one add (replica, counter); a causal context is the set of
// dots a state has seen, kept as a contiguous prefix per replica (1..n) plus the "cloud" of
// dots seen past a gap. Gaps only exist while deltas arrive out of order; they close, and the
// cloud folds into the prefix, once the missing deltas arrive.
import { compareStrings } from "./bytes-key.js";

export interface Dot {
  readonly replicaId: string;
  readonly counter: number;
}

export type DotKey = string;

/** Injective: the counter has no "@", so the first "@" separates it from the replica id. */
export function dotKey(dot: Dot): DotKey {
  return `${dot.counter}@${dot.replicaId}`;
}

export function compareDots(a: Dot, b: Dot): number {
  return compareStrings(a.replicaId, b.replicaId) || a.counter - b.counter;
}

export class CausalContext {
  private readonly contiguous = new Map<string, number>();
  private readonly cloud = new Map<string, Set<number>>();

  static of(dots: Iterable<Dot>): CausalContext {
    const context = new CausalContext();
    for (const dot of dots) context.add(dot);
    return context;
  }

  has(dot: Dot): boolean {
    if (dot.counter <= (this.contiguous.get(dot.replicaId) ?? 0)) return true;
    return this.cloud.get(dot.replicaId)?.has(dot.counter) ?? false;
  }

  add(dot: Dot): void {
    if (this.has(dot)) return;
    let pending = this.cloud.get(dot.replicaId);
    if (pending === undefined) this.cloud.set(dot.replicaId, (pending = new Set()));
    pending.add(dot.counter);
    this.compact(dot.replicaId);
  }

  /** Records a whole prefix 1..counter as seen (the compact form a version vector entry has). */
  addPrefix(replicaId: string, counter: number): void {
    if (counter <= (this.contiguous.get(replicaId) ?? 0)) return;
    this.contiguous.set(replicaId, counter);
    this.compact(replicaId);
  }

  join(other: CausalContext): void {
    const source = other === this ? other.clone() : other;
    for (const [replicaId, counter] of source.contiguous) this.addPrefix(replicaId, counter);
    for (const [replicaId, counters] of source.cloud) {
      for (const counter of counters) this.add({ replicaId, counter });
    }
  }

  /** The dot for this replica's next add: one past every counter of it seen so far. */
  nextDot(replicaId: string): Dot {
    let highest = this.contiguous.get(replicaId) ?? 0;
    for (const counter of this.cloud.get(replicaId) ?? []) highest = Math.max(highest, counter);
    return { replicaId, counter: highest + 1 };
  }

  clone(): CausalContext {
    const copy = new CausalContext();
    copy.join(this);
    return copy;
  }

  /** The contiguous prefixes, in replica order. */
  versionVector(): Array<[string, number]> {
    return [...this.contiguous.entries()].sort(([a], [b]) => compareStrings(a, b));
  }

  /** The dots past a gap, in canonical order. */
  cloudDots(): Dot[] {
    const dots: Dot[] = [];
    for (const [replicaId, counters] of this.cloud) {
      for (const counter of counters) dots.push({ replicaId, counter });
    }
    return dots.sort(compareDots);
  }

  /** Folds cloud dots that now extend the prefix into it, so equal contexts look equal. */
  private compact(replicaId: string): void {
    const pending = this.cloud.get(replicaId);
    if (pending === undefined) return;
    let prefix = this.contiguous.get(replicaId) ?? 0;
    for (const counter of [...pending]) if (counter <= prefix) pending.delete(counter);
    while (pending.has(prefix + 1)) pending.delete(++prefix);
    if (prefix > 0) this.contiguous.set(replicaId, prefix);
    if (pending.size === 0) this.cloud.delete(replicaId);
  }
}
