// Idle value entities in compact form. A resident value entity idle for a while whose state
// fits a small integer (resident-bytes.ts: up to 3 bytes, a counter below 16384) or that has
// no state gives up its record (entity-record.ts: 64 B) for one row of these columns: its
// key, state, stored version, last use and table, ~29 B in typed arrays and one key
// reference. The entity stays resident — its next command reads nothing from storage — and
// gets a record again when that command comes (entity-manager.ts decides when to park and
// takes a row back). Most of a node's resident entities are idle at any time, so this is
// what a million of them cost.
//
// Rows are found by key through buckets chained through `#next` (as record-index.ts does
// with records), and freed rows are reused. A row is a number: it stays valid until it is
// removed or the columns shrink (only `remove` shrinks them).
import { hashKey } from "./record-index.js";

/** No row (or the end of a chain). */
export const NO_ROW = -1;
/** The packed state of an entity with no state (resident-bytes.ts: undefined). */
const NO_STATE = -1;
/** Rows and buckets never go below this. */
const MIN_ROWS = 64;
/** Table numbers are 16-bit. */
const MAX_TABLES = 0xffff;

/** The parked entities of one (kind, persistence id), each with the table (`T`) its record had. */
export class ParkedValues<T> {
  #keys: (string | undefined)[] = [];
  #state = new Int32Array(MIN_ROWS);
  #version = new Int32Array(MIN_ROWS);
  #lastUsed = new Int32Array(MIN_ROWS);
  #table = new Uint16Array(MIN_ROWS);
  /** The next row of its bucket's chain, or of the free list. */
  #next = new Int32Array(MIN_ROWS);
  #buckets = new Int32Array(MIN_ROWS).fill(NO_ROW);
  /** The first free row below #used. */
  #free = NO_ROW;
  /** Rows ever handed out (the rest are untouched). */
  #used = 0;
  #size = 0;
  /** Every table a row named, by number. */
  readonly #tables: T[] = [];
  /** Where the idle sweep and eviction go on from (row numbers). */
  #sweepAt = 0;
  #evictAt = 0;
  /** A sweep holds row numbers: no shrink (it renumbers rows) until it ends. */
  #sweeping = false;

  get size(): number {
    return this.#size;
  }

  /** Whether an entity of this (value version, state) can be parked: both fit the columns. */
  static fits(state: string | number | undefined, version: number): state is number | undefined {
    return typeof state !== "string" && Number.isInteger(version) && version >= 0 && version <= 0x7fffffff;
  }

  /** The row of `key`, or NO_ROW. */
  find(key: string): number {
    const keys = this.#keys;
    const next = this.#next;
    for (let row = this.#buckets[hashKey(key) & (this.#buckets.length - 1)]!; row !== NO_ROW; row = next[row]!) {
      if (keys[row] === key) return row;
    }
    return NO_ROW;
  }

  /**
   * Parks `key` (not parked yet: the manager took its record out of its index, and a key is
   * in one or the other). False when `table` would be one table too many: it stays a record.
   */
  add(key: string, state: number | undefined, version: number, lastUsed: number, table: T): boolean {
    let tableNumber = this.#tables.indexOf(table);
    if (tableNumber < 0) {
      if (this.#tables.length > MAX_TABLES) return false;
      tableNumber = this.#tables.push(table) - 1;
    }
    if (this.#size >= 2 * this.#buckets.length) this.#rehash(this.#buckets.length * 2);
    const row = this.#takeRow();
    this.#keys[row] = key;
    this.#state[row] = state === undefined ? NO_STATE : state;
    this.#version[row] = version;
    this.#lastUsed[row] = lastUsed;
    this.#table[row] = tableNumber;
    const bucket = hashKey(key) & (this.#buckets.length - 1);
    this.#next[row] = this.#buckets[bucket]!;
    this.#buckets[bucket] = row;
    this.#size++;
    return true;
  }

  keyOf(row: number): string {
    return this.#keys[row]!;
  }

  /** The state as resident-bytes.ts keeps it. */
  stateOf(row: number): number | undefined {
    const state = this.#state[row]!;
    return state === NO_STATE ? undefined : state;
  }

  versionOf(row: number): number {
    return this.#version[row]!;
  }

  lastUsedOf(row: number): number {
    return this.#lastUsed[row]!;
  }

  tableOf(row: number): T {
    return this.#tables[this.#table[row]!]!;
  }

  /** Takes `row` out; its number may be handed out again, and outside a sweep the columns may shrink (other row numbers change then). */
  remove(row: number): void {
    const key = this.#keys[row]!;
    const bucket = hashKey(key) & (this.#buckets.length - 1);
    const next = this.#next;
    if (this.#buckets[bucket] === row) this.#buckets[bucket] = next[row]!;
    else {
      let before = this.#buckets[bucket]!;
      while (next[before] !== row) before = next[before]!;
      next[before] = next[row]!;
    }
    this.#keys[row] = undefined;
    next[row] = this.#free;
    this.#free = row;
    this.#size--;
    if (!this.#sweeping) this.#shrinkIfSparse();
  }

  /** Moves every last use `by` milliseconds back, none below `floor` (the manager's clock moved its epoch). */
  shiftLastUsed(by: number, floor: number): void {
    const lastUsed = this.#lastUsed;
    for (let row = 0; row < this.#used; row++) if (this.#keys[row] !== undefined) lastUsed[row] = Math.max(lastUsed[row]! - by, floor);
  }

  /**
   * The idle sweep: visits the next `count` rows from where the last sweep ended (every row
   * when there are fewer). `visit` may remove the row it is given, and no other; the
   * columns shrink, if they should, after the last visit.
   */
  sweep(count: number, visit: (row: number) => void): void {
    const rows = this.#nextRows(this.#sweepAt, count);
    this.#sweepAt = rows.end;
    this.#sweeping = true;
    try {
      for (const row of rows.found) visit(row);
    } finally {
      this.#sweeping = false;
    }
    this.#shrinkIfSparse();
  }

  /** The least recently used of the next `count` rows from where the last look ended; NO_ROW when empty. */
  oldest(count: number): number {
    const rows = this.#nextRows(this.#evictAt, count);
    this.#evictAt = rows.end;
    let oldest = NO_ROW;
    for (const row of rows.found) if (oldest === NO_ROW || this.#lastUsed[row]! < this.#lastUsed[oldest]!) oldest = row;
    return oldest;
  }

  /** Every parked row's key, for a caller that removes some (a snapshot: removing is safe). */
  keys(): string[] {
    const keys: string[] = [];
    for (let row = 0; row < this.#used; row++) {
      const key = this.#keys[row];
      if (key !== undefined) keys.push(key);
    }
    return keys;
  }

  clear(): void {
    this.#keys = [];
    this.#tables.length = 0;
    this.#compact(MIN_ROWS);
  }

  /** Up to `count` live rows from `start` on, wrapping once; and where the next look starts. */
  #nextRows(start: number, count: number): { found: number[]; end: number } {
    const found: number[] = [];
    const used = this.#used;
    if (used === 0 || this.#size === 0) return { found, end: 0 };
    let at = start < used ? start : 0;
    for (let looked = 0; looked < used && found.length < count; looked++) {
      if (this.#keys[at] !== undefined) found.push(at);
      at = at + 1 < used ? at + 1 : 0;
    }
    return { found, end: at };
  }

  /** Halves the columns when under an eighth of their rows are live. */
  #shrinkIfSparse(): void {
    if (this.#size < this.#state.length / 8 && this.#state.length > MIN_ROWS) this.#compact(this.#state.length / 2);
  }

  #takeRow(): number {
    if (this.#free !== NO_ROW) {
      const row = this.#free;
      this.#free = this.#next[row]!;
      return row;
    }
    if (this.#used === this.#state.length) this.#grow(this.#state.length * 2);
    return this.#used++;
  }

  #grow(rows: number): void {
    this.#state = copied(this.#state, new Int32Array(rows));
    this.#version = copied(this.#version, new Int32Array(rows));
    this.#lastUsed = copied(this.#lastUsed, new Int32Array(rows));
    this.#table = copied(this.#table, new Uint16Array(rows));
    this.#next = copied(this.#next, new Int32Array(rows));
  }

  /** Rebuilds the columns with `rows` rows, the live rows first (row numbers change). */
  #compact(rows: number): void {
    const old = { keys: this.#keys, state: this.#state, version: this.#version, lastUsed: this.#lastUsed, table: this.#table, used: this.#used };
    this.#keys = [];
    this.#state = new Int32Array(rows);
    this.#version = new Int32Array(rows);
    this.#lastUsed = new Int32Array(rows);
    this.#table = new Uint16Array(rows);
    this.#next = new Int32Array(rows);
    this.#free = NO_ROW;
    this.#used = 0;
    this.#size = 0;
    this.#sweepAt = this.#evictAt = 0;
    this.#buckets = new Int32Array(Math.max(MIN_ROWS, rows / 2)).fill(NO_ROW);
    for (let row = 0; row < old.used; row++) {
      const key = old.keys[row];
      if (key === undefined) continue;
      const at = this.#used++;
      this.#keys[at] = key;
      this.#state[at] = old.state[row]!;
      this.#version[at] = old.version[row]!;
      this.#lastUsed[at] = old.lastUsed[row]!;
      this.#table[at] = old.table[row]!;
      const bucket = hashKey(key) & (this.#buckets.length - 1);
      this.#next[at] = this.#buckets[bucket]!;
      this.#buckets[bucket] = at;
      this.#size++;
    }
  }

  #rehash(buckets: number): void {
    this.#buckets = new Int32Array(buckets).fill(NO_ROW);
    for (let row = 0; row < this.#used; row++) {
      const key = this.#keys[row];
      if (key === undefined) continue;
      const bucket = hashKey(key) & (buckets - 1);
      this.#next[row] = this.#buckets[bucket]!;
      this.#buckets[bucket] = row;
    }
  }
}

function copied<A extends Int32Array | Uint16Array>(from: A, to: A): A {
  to.set(from);
  return to;
}
