// Caps the memory held by resident entities. Each entity is charged a fixed overhead
// (its record and map entry) plus its key and the bytes of the state it
// keeps; when the total passes the budget, the least recently used idle entities are
// passivated first (their state is in the store; the next command reloads it). It also
// keeps the least-recently-used order, which the idle-timeout sweep walks too.

/** Default for --entity-memory-budget / KEYSTATE_ENTITY_MEMORY_BUDGET. */
export const DEFAULT_ENTITY_MEMORY_BUDGET_BYTES = 256 * 1024 * 1024;

/**
 * What one resident entity costs besides its key string and state bytes: its record
 * (entity-record.ts: mailbox, state, LRU links; 88 B in a heap snapshot, event-sourced
 * ones 16 B more, charged by the record) and its entry in its table's Map (~30 B). Measured with bench/density-entities.ts --store discard (heap
 * growth per resident counter, Node 20 x64): ~150 B in all, of which ~24 B key.
 */
export const ENTITY_OVERHEAD_BYTES = 128;

/** An entity as the budget sees it; the budget keeps the fields below up to date. */
export interface Charged {
  /** What this entity is charged now (0 until first measured). */
  charged: number;
  /** Neighbours in least-recently-used order (an intrusive list: no allocation per use). */
  older: Charged | undefined;
  newer: Charged | undefined;
  readonly mailbox: { readonly idle: boolean };
  /** The state bytes the entity keeps resident (absent: the entity keeps none). */
  readonly entity: { readonly residentBytes?: number };
}

/**
 * The charges of resident entities and their least-recently-used order. A linked list
 * rather than Map insertion order: deleting and re-inserting on every use leaves holes
 * that each scan from the front walks again, which made eviction quadratic.
 */
export class MemoryBudget<E extends Charged> {
  readonly limitBytes: number;
  #used = 0;
  #oldest: E | undefined;
  #newest: E | undefined;

  constructor(limitBytes = DEFAULT_ENTITY_MEMORY_BUDGET_BYTES) {
    this.limitBytes = limitBytes;
  }

  get usedBytes(): number {
    return this.#used;
  }

  /** Marks `entry` the most recently used (adding it when new). */
  touch(entry: E): void {
    if (this.#newest === entry) return;
    this.#unlink(entry);
    entry.older = this.#newest;
    if (this.#newest) this.#newest.newer = entry;
    this.#newest = entry;
    this.#oldest ??= entry;
  }

  /** Re-charges `entry` for what it holds now (after a batch changed its state). */
  measure(entry: E, idBytes: number): void {
    const now = ENTITY_OVERHEAD_BYTES + idBytes + (entry.entity.residentBytes ?? 0);
    this.#used += now - entry.charged;
    entry.charged = now;
  }

  /** Forgets an entity that left memory. */
  release(entry: E): void {
    this.#used -= entry.charged;
    entry.charged = 0;
    this.#unlink(entry);
  }

  /** Resident entries, least recently used first; releasing the current one while iterating is safe. */
  *oldestFirst(): Generator<E> {
    for (let entry = this.#oldest; entry !== undefined; ) {
      const newer = entry.newer as E | undefined;
      yield entry;
      entry = newer;
    }
  }

  /**
   * While over budget, releases idle entries from the least recently used end and hands
   * each to `evicted`. Busy entries stay: their commands are running. Returns how many left.
   */
  evict(evicted: (entry: E) => void): number {
    let count = 0;
    for (let entry = this.#oldest; entry !== undefined && this.#used > this.limitBytes; ) {
      const newer = entry.newer as E | undefined;
      if (entry.mailbox.idle) {
        this.release(entry);
        evicted(entry);
        count++;
      }
      entry = newer;
    }
    return count;
  }

  #unlink(entry: E): void {
    const { older, newer } = entry;
    if (older) older.newer = newer;
    else if (this.#oldest === entry) this.#oldest = newer as E | undefined;
    if (newer) newer.older = older;
    else if (this.#newest === entry) this.#newest = older as E | undefined;
    entry.older = entry.newer = undefined;
  }
}
