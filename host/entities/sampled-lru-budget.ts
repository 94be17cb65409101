// The memory budget of the entity manager's resident records, and the walks over them
// (eviction, the idle sweep). The records keep no order of use: an intrusive
// least-recently-used list costs two links per record (16 B of ~126 B per resident
// counter), and moving a record to the list's head is six pointer writes per command.
// Instead each record keeps when it was last used (lastUsed, a small integer of
// milliseconds), and over budget the budget looks at the next SAMPLE records of the
// tables' bucket arrays from where its last look ended and evicts the idle one used least
// recently: approximated LRU, as Redis does it. With few records resident (EXACT_UP_TO)
// the look covers them all, so the order is exact; with many it evicts from the oldest
// part, which is what a budget needs (an evicted entity is only reloaded from the store).
// The idle sweep walks the same buckets a slice at a time.
import { DEFAULT_ENTITY_MEMORY_BUDGET_BYTES } from "./memory-budget.js";
import type { Indexed, RecordIndex } from "./record-index.js";

/**
 * How many records one eviction looks at (Redis's maxmemory-samples is 5). Each look costs:
 * with a million counters touched once each under a small budget (an eviction per command),
 * 8 cost ~6% of the command rate and 16 ~20%.
 */
export const SAMPLE = 8;

/** Up to this many resident records an eviction looks at them all: exact order, at little cost. */
export const EXACT_UP_TO = 64;

/** lastUsed of a record the budget does not hold (released, or never admitted). */
export const RELEASED = -(2 ** 30);

/** What the budget needs of a record. */
export interface Budgeted {
  /** When it was last used (the manager's clock); RELEASED while not charged. */
  lastUsed: number;
  /** What the budget charges it now; it reports each change (`recharge`) while held. */
  readonly charge: number;
  readonly idle: boolean;
}

/** A place in the ring of every table's buckets: table number, then bucket number. */
export class RingCursor {
  table = 0;
  bucket = 0;
}

export class SampledLruBudget<R extends Budgeted & Indexed> {
  readonly limitBytes: number;
  #used = 0;
  /** Every table's index, in the order they were made: together, one ring. */
  readonly #tables: RecordIndex<R>[] = [];
  readonly #evictionHand = new RingCursor();
  /** The sample's oldest idle record so far (a field and a bound visitor: no closure per eviction). */
  #oldestIdle: R | undefined;
  readonly #sampleOne = (record: R): void => {
    if (record.idle && (this.#oldestIdle === undefined || record.lastUsed < this.#oldestIdle.lastUsed)) this.#oldestIdle = record;
  };

  constructor(limitBytes = DEFAULT_ENTITY_MEMORY_BUDGET_BYTES) {
    this.limitBytes = limitBytes;
  }

  get usedBytes(): number {
    return this.#used;
  }

  /** How many records the tables hold. */
  get size(): number {
    let size = 0;
    for (const table of this.#tables) size += table.size;
    return size;
  }

  /** Makes `records` part of the ring the budget and the sweep walk. */
  addTable(records: RecordIndex<R>): void {
    this.#tables.push(records);
  }

  /** Whether the charges are over the limit. */
  get over(): boolean {
    return this.#used > this.limitBytes;
  }

  /** Charges `bytes` held outside the records (parked entities: parked-entities.ts). */
  charge(bytes: number): void {
    this.#used += bytes;
  }

  /** Gives back `bytes` charged with `charge`. */
  uncharge(bytes: number): void {
    this.#used -= bytes;
  }

  /** Whether `record` is charged (admitted and not released since). */
  holds(record: R): boolean {
    return record.lastUsed !== RELEASED;
  }

  /** Charges a new record, used at `now`. */
  admit(record: R, now: number): void {
    record.lastUsed = now;
    this.#used += record.charge;
  }

  /** `record`'s charge changed by `bytes`; nothing when it is not held. */
  recharge(record: R, bytes: number): void {
    if (this.holds(record)) this.#used += bytes;
  }

  /** Gives back what `record` was charged; it is no longer held. */
  release(record: R): void {
    if (!this.holds(record)) return;
    this.#used -= record.charge;
    record.lastUsed = RELEASED;
  }

  /**
   * While over budget, releases the idle record used least recently among the next SAMPLE
   * (all of them, when there are few) and hands it to `evicted` (which must take it out of its table). Busy records stay:
   * their commands are running. Stops when a whole ring holds nothing idle. Returns how many left.
   */
  evict(evicted: (record: R) => void): number {
    let count = 0;
    let lookedWithoutIdle = 0;
    while (this.#used > this.limitBytes) {
      const resident = this.size;
      this.#oldestIdle = undefined;
      const looked = this.walk(this.#evictionHand, resident <= EXACT_UP_TO ? resident : SAMPLE, this.#sampleOne);
      const oldest = this.#oldestIdle as R | undefined;
      this.#oldestIdle = undefined;
      if (oldest === undefined) {
        lookedWithoutIdle += looked;
        if (looked === 0 || lookedWithoutIdle >= resident) break;
        continue;
      }
      lookedWithoutIdle = 0;
      this.release(oldest);
      evicted(oldest);
      count++;
    }
    return count;
  }

  /**
   * Visits at least `count` records (whole buckets, so a few more) from `cursor` on, or every
   * record when there are fewer, and leaves `cursor` after the last bucket visited. `visit`
   * may take the record it is given out of its table; it must not add any. Returns how many it visited.
   */
  walk(cursor: RingCursor, count: number, visit: (record: R) => void): number {
    const tables = this.#tables;
    if (tables.length === 0 || count <= 0) return 0;
    let visited = 0;
    // Every bucket of every table once at most: the ring may hold fewer records than `count`.
    let bucketsLeft = 0;
    for (const table of tables) bucketsLeft += table.bucketCount;
    if (cursor.table >= tables.length) cursor.table = cursor.bucket = 0;
    while (visited < count && bucketsLeft > 0) {
      const table = tables[cursor.table]!;
      // A table that grew or shrank since the cursor was there: its position is kept as far as it goes.
      if (cursor.bucket >= table.bucketCount) {
        cursor.bucket = 0;
        cursor.table = (cursor.table + 1) % tables.length;
        continue;
      }
      for (let record = table.bucket(cursor.bucket); record !== undefined; ) {
        const next: R | undefined = record.nextInBucket;
        visit(record);
        visited++;
        record = next;
      }
      cursor.bucket++;
      bucketsLeft--;
    }
    return visited;
  }
}
