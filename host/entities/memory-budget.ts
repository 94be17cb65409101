// Caps the memory held by resident entities. Each entity is charged a fixed overhead
// (its record and index entry) plus its key and the bytes of the state it
// keeps; when the total passes the budget, the least recently used idle entities are
// passivated first (their state is in the store; the next command reloads it). This one
// keeps an exact least-recently-used order, for the replicated entities (a few objects
// each already, so two links more are small); the entity manager's compact records use an
// approximated order that costs them nothing (sampled-lru-budget.ts).

/** Default for --entity-memory-budget / KEYSTATE_ENTITY_MEMORY_BUDGET. */
export const DEFAULT_ENTITY_MEMORY_BUDGET_BYTES = 256 * 1024 * 1024;

/**
 * What one resident entity costs besides its key string and state bytes: its record
 * (entity-record.ts: state, key, last use, index chain, mailbox queue; 64 B in a heap snapshot, value ones
 * 8 B more and event-sourced ones 16 B more, charged by the record; its table is on its
 * class, not in a field) and its slot in its table's bucket array (record-index.ts: 4-8 B).
 * Measured with `npm run bench:density` (heap growth per resident counter, Node 20 x64):
 * ~102 B in all, of which ~32 B key (a 13-character key) and 8 B version, before the
 * mailbox's queue became a field of the record (8 B more).
 */
export const ENTITY_OVERHEAD_BYTES = 72;

/**
 * What one parked (idle, compact) entity costs besides its key's and state's bytes (one per
 * character): its row of parked-entities.ts (state, version or sequence number, last use,
 * chain and key offset 4 B each, table and key length 2 B each, and 4 B more for an
 * event-sourced entity's snapshot sequence number) and its share of the bucket array
 * (2-4 B), with room for the columns' and bytes' slack.
 */
export const PARKED_OVERHEAD_BYTES = 32;

/** An entity in least-recently-used order; the list keeps `older` and `newer` up to date. */
export interface Listed {
  /** Neighbours in least-recently-used order (an intrusive list: no allocation per use). */
  older: Listed | undefined;
  newer: Listed | undefined;
  readonly mailbox: { readonly idle: boolean };
}

/** An entity whose charge the budget keeps in it (MemoryBudget). */
export interface Charged extends Listed {
  /** What this entity is charged now (0 until first measured). */
  charged: number;
  older: Charged | undefined;
  newer: Charged | undefined;
  /** The state bytes the entity keeps resident (absent: the entity keeps none). */
  readonly entity: { readonly residentBytes?: number };
}

/**
 * The charges of resident entities and their least-recently-used order. A linked list
 * rather than Map insertion order: deleting and re-inserting on every use leaves holes
 * that each scan from the front walks again, which made eviction quadratic. Where an
 * entry's own charge is kept is the subclass's.
 */
abstract class ResidentList<E extends Listed> {
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

  /** What `entry` is charged now. */
  protected abstract chargeOf(entry: E): number;

  /** Called as `entry` leaves, after its charge was given back. */
  protected uncharged(_entry: E): void {}

  protected addUsed(bytes: number): void {
    this.#used += bytes;
  }

  /** Whether `entry` is in the list (touched and not released since). */
  holds(entry: E): boolean {
    return entry.older !== undefined || entry.newer !== undefined || this.#oldest === entry;
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

  /** Forgets an entity that left memory. */
  release(entry: E): void {
    this.#used -= this.chargeOf(entry);
    this.uncharged(entry);
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

/** A budget that keeps each entry's charge in the entry (`charged`), set by `measure`. */
export class MemoryBudget<E extends Charged> extends ResidentList<E> {
  /** Re-charges `entry` for what it holds now (after a batch changed its state). */
  measure(entry: E, idBytes: number): void {
    const now = ENTITY_OVERHEAD_BYTES + idBytes + (entry.entity.residentBytes ?? 0);
    this.addUsed(now - entry.charged);
    entry.charged = now;
  }

  protected chargeOf(entry: E): number {
    return entry.charged;
  }

  protected override uncharged(entry: E): void {
    entry.charged = 0;
  }
}
