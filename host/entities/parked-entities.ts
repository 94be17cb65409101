// Idle entities in compact form. A resident value or event-sourced entity idle for a while
// gives up its record (entity-record.ts: 64-72 B), its key string (16 B + the key, rounded
// up to 8) and its state string if it has one (resident-bytes.ts: states over 3 bytes) for
// one row of these columns: its state (a small integer, as resident-bytes.ts packs up to 3
// bytes, or where its bytes are), its stored version (value) or last event's and last
// snapshot's sequence numbers (event-sourced), last use and table, 24-28 B in typed arrays,
// and its key's and state's bytes in one shared byte array. The entity stays resident — its
// next command reads nothing from storage — and gets a record again when that command comes
// (entity-manager.ts decides when to park and takes a row back). Most of a node's resident
// entities are idle at any time, so this is what a million of them cost.
//
// Keys are kept one byte per character, so only keys whose characters are all below 256
// (ASCII and Latin-1: nearly every key) park; others stay records, as do states over
// MAX_PARKED_STATE_BYTES (the record is little beside them). Rows are found by key
// through buckets chained through `#next` (as record-index.ts does with records), and freed
// rows are reused; the bytes of removed rows (keys and states) are reclaimed when they are
// half of those held. A row is a number: it stays valid until it is removed or the columns
// shrink (only `remove` and `sweep` shrink them).

/** No row (or the end of a chain). */
export const NO_ROW = -1;
/** The packed state of an entity with no state (resident-bytes.ts: undefined). */
const NO_STATE = -1;
/** A state kept as bytes after its key: the column holds BYTES_STATE - its length. */
const BYTES_STATE = -2;
/** Longest state parked; longer ones stay records. */
export const MAX_PARKED_STATE_BYTES = 64 * 1024;
/** The table number of a free row. */
const FREE = 0xffff;
/** Table numbers are 16-bit, FREE excepted. */
const MAX_TABLES = FREE;
/** Longest key kept (its length is 16-bit). */
const MAX_KEY_LENGTH = 0xffff;
/** Rows and buckets never go below this. */
const MIN_ROWS = 64;

import { hashKey } from "./record-index.js";

/** 32-bit FNV-1a of `length` bytes at `at`: the same as record-index.ts's hashKey of the string they spell. */
function hashBytes(bytes: Uint8Array, at: number, length: number): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < length; i++) hash = Math.imul(hash ^ bytes[at + i]!, 0x01000193);
  return hash >>> 0;
}

/** hashKey of the key; NO_ROW when a character is above 255 (the key cannot be kept one byte per character). */
function hashLatin1(key: string): number {
  for (let i = 0; i < key.length; i++) if (key.charCodeAt(i) > 0xff) return NO_ROW;
  return hashKey(key);
}

/** The parked entities of one (kind, persistence id), each with the table (`T`) its record had. */
export class ParkedEntities<T> {
  #state = new Int32Array(MIN_ROWS);
  /** A value entity's stored version; an event-sourced one's last event's sequence number. */
  #seq = new Int32Array(MIN_ROWS);
  /** An event-sourced entity's last snapshot's sequence number (only tables of event-sourced entities have the column). */
  #snapshotSeq: Int32Array | undefined;
  #lastUsed = new Int32Array(MIN_ROWS);
  /** The row's table number; FREE for a free row. */
  #table = new Uint16Array(MIN_ROWS).fill(FREE);
  /** Where the row's key starts in #bytes (its state's bytes follow, if kept there), and its length. */
  #keyAt = new Int32Array(MIN_ROWS);
  #keyLength = new Uint16Array(MIN_ROWS);
  /** The next row of its bucket's chain, or of the free list. */
  #next = new Int32Array(MIN_ROWS);
  #buckets = new Int32Array(MIN_ROWS).fill(NO_ROW);
  /** Every row's key, then its state's bytes if it keeps them here, one byte per character, appended; removed rows leave gaps until the next compaction. */
  #bytes = new Uint8Array(MIN_ROWS * 16);
  #bytesEnd = 0;
  #gaps = 0;
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
  /** A sweep (or `each`) holds row numbers: no shrink (it renumbers rows) until it ends. */
  #sweeping = false;

  /** `eventSourced`: the rows keep a snapshot sequence number too. */
  constructor(readonly eventSourced = false) {
    if (eventSourced) this.#snapshotSeq = new Int32Array(MIN_ROWS);
  }

  get size(): number {
    return this.#size;
  }

  /** Bytes held for keys and states (gaps and room to grow included): what a caller may check they cost. */
  get bytesHeld(): number {
    return this.#bytes.length;
  }

  /** Whether an entity of this state (as resident-bytes.ts keeps it) and these sequence numbers can be parked: all fit the columns. */
  static fits(state: string | number | undefined, ...seqs: number[]): boolean {
    return (typeof state !== "string" || state.length <= MAX_PARKED_STATE_BYTES) && seqs.every((seq) => Number.isInteger(seq) && seq >= 0 && seq <= 0x7fffffff);
  }

  /** The row of `key`, or NO_ROW. */
  find(key: string): number {
    const hash = hashLatin1(key);
    if (hash === NO_ROW) return NO_ROW;
    const length = key.length;
    const bytes = this.#bytes;
    const next = this.#next;
    for (let row = this.#buckets[hash & (this.#buckets.length - 1)]!; row !== NO_ROW; row = next[row]!) {
      if (this.#keyLength[row] !== length) continue;
      const at = this.#keyAt[row]!;
      let i = 0;
      while (i < length && bytes[at + i] === key.charCodeAt(i)) i++;
      if (i === length) return row;
    }
    return NO_ROW;
  }

  /**
   * Parks `key` (not parked yet: the manager took its record out of its index, and a key is
   * in one or the other); its row. NO_ROW when it cannot be kept here and stays a record: a
   * character of its key is above 255, the key is longer than 65,535, or `table` is one table
   * too many.
   */
  add(key: string, state: string | number | undefined, seq: number, lastUsed: number, table: T, snapshotSeq = 0): number {
    const hash = hashLatin1(key);
    if (hash === NO_ROW || key.length > MAX_KEY_LENGTH) return NO_ROW;
    let tableNumber = this.#tables.indexOf(table);
    if (tableNumber < 0) {
      if (this.#tables.length >= MAX_TABLES) return NO_ROW;
      tableNumber = this.#tables.push(table) - 1;
    }
    if (this.#size >= 2 * this.#buckets.length) this.#rehash(this.#buckets.length * 2);
    // The bytes first: storing them may move the live rows' bytes, and this row is not live yet.
    const keyAt = this.#storeEntry(key, typeof state === "string" ? state : "");
    const row = this.#takeRow();
    this.#state[row] = state === undefined ? NO_STATE : typeof state === "number" ? state : BYTES_STATE - state.length;
    this.#seq[row] = seq;
    if (this.#snapshotSeq !== undefined) this.#snapshotSeq[row] = snapshotSeq;
    this.#lastUsed[row] = lastUsed;
    this.#table[row] = tableNumber;
    this.#keyAt[row] = keyAt;
    this.#keyLength[row] = key.length;
    const bucket = hash & (this.#buckets.length - 1);
    this.#next[row] = this.#buckets[bucket]!;
    this.#buckets[bucket] = row;
    this.#size++;
    return row;
  }

  keyOf(row: number): string {
    return this.#latin1(this.#keyAt[row]!, this.#keyLength[row]!);
  }

  /** Characters (= bytes) in the row's key. */
  keyLengthOf(row: number): number {
    return this.#keyLength[row]!;
  }

  /** The bytes the row holds in the shared byte array: its key's and its state's. */
  heldBytesOf(row: number): number {
    return this.#keyLength[row]! + this.#stateBytesOf(row);
  }

  /** The state as resident-bytes.ts keeps it: a packed number, a string of its bytes, or undefined. */
  stateOf(row: number): string | number | undefined {
    const state = this.#state[row]!;
    if (state >= 0) return state;
    if (state === NO_STATE) return undefined;
    return this.#latin1(this.#keyAt[row]! + this.#keyLength[row]!, BYTES_STATE - state);
  }

  /** A value entity's stored version; an event-sourced one's last event's sequence number. */
  seqOf(row: number): number {
    return this.#seq[row]!;
  }

  /** An event-sourced entity's last snapshot's sequence number (0 in a table of value entities). */
  snapshotSeqOf(row: number): number {
    return this.#snapshotSeq?.[row] ?? 0;
  }

  lastUsedOf(row: number): number {
    return this.#lastUsed[row]!;
  }

  tableOf(row: number): T {
    return this.#tables[this.#table[row]!]!;
  }

  /** Takes `row` out; its number may be handed out again, and outside a sweep the columns may shrink (other row numbers change then). */
  remove(row: number): void {
    const bucket = hashBytes(this.#bytes, this.#keyAt[row]!, this.#keyLength[row]!) & (this.#buckets.length - 1);
    const next = this.#next;
    if (this.#buckets[bucket] === row) this.#buckets[bucket] = next[row]!;
    else {
      let before = this.#buckets[bucket]!;
      while (next[before] !== row) before = next[before]!;
      next[before] = next[row]!;
    }
    this.#gaps += this.heldBytesOf(row);
    this.#table[row] = FREE;
    next[row] = this.#free;
    this.#free = row;
    this.#size--;
    if (!this.#sweeping) this.#shrinkIfSparse();
  }

  /** Moves every last use `by` milliseconds back, none below `floor` (the manager's clock moved its epoch). */
  shiftLastUsed(by: number, floor: number): void {
    const lastUsed = this.#lastUsed;
    for (let row = 0; row < this.#used; row++) if (this.#table[row] !== FREE) lastUsed[row] = Math.max(lastUsed[row]! - by, floor);
  }

  /**
   * The idle sweep: visits the next `count` rows from where the last sweep ended (every row
   * when there are fewer). `visit` may remove the row it is given, and no other; the
   * columns shrink, if they should, after the last visit.
   */
  sweep(count: number, visit: (row: number) => void): void {
    const rows = this.#nextRows(this.#sweepAt, count);
    this.#sweepAt = rows.end;
    this.#visit(rows.found, visit);
  }

  /** Visits every row, as `sweep` does (`visit` may remove the row it is given), without moving the sweep's place. */
  each(visit: (row: number) => void): void {
    this.#visit(this.#nextRows(0, this.#size).found, visit);
  }

  /** The least recently used of the next `count` rows from where the last look ended; NO_ROW when empty. */
  oldest(count: number): number {
    const rows = this.#nextRows(this.#evictAt, count);
    this.#evictAt = rows.end;
    let oldest = NO_ROW;
    for (const row of rows.found) if (oldest === NO_ROW || this.#lastUsed[row]! < this.#lastUsed[oldest]!) oldest = row;
    return oldest;
  }

  /** Every parked row's key. */
  keys(): string[] {
    const keys: string[] = [];
    this.each((row) => keys.push(this.keyOf(row)));
    return keys;
  }

  clear(): void {
    this.#size = 0;
    this.#used = 0;
    this.#bytesEnd = this.#gaps = 0;
    this.#tables.length = 0;
    this.#compact(MIN_ROWS);
  }

  /** Visits `rows`; no shrink (it renumbers rows) until the last visit has returned. */
  #visit(rows: number[], visit: (row: number) => void): void {
    this.#sweeping = true;
    try {
      for (const row of rows) visit(row);
    } finally {
      this.#sweeping = false;
    }
    this.#shrinkIfSparse();
  }

  /** Up to `count` live rows from `start` on, wrapping once; and where the next look starts. */
  #nextRows(start: number, count: number): { found: number[]; end: number } {
    const found: number[] = [];
    const used = this.#used;
    if (used === 0 || this.#size === 0) return { found, end: 0 };
    let at = start < used ? start : 0;
    for (let looked = 0; looked < used && found.length < count; looked++) {
      if (this.#table[at] !== FREE) found.push(at);
      at = at + 1 < used ? at + 1 : 0;
    }
    return { found, end: at };
  }

  /** Bytes of a state kept after the row's key (0 for a packed or no state). */
  #stateBytesOf(row: number): number {
    const state = this.#state[row]!;
    return state <= BYTES_STATE ? BYTES_STATE - state : 0;
  }

  /** `length` bytes at `at` as a one-byte string. */
  #latin1(at: number, length: number): string {
    let text = "";
    // In slices: String.fromCharCode takes its characters as arguments.
    for (let from = at; from < at + length; from += 8192) text += String.fromCharCode.apply(null, this.#bytes.subarray(from, Math.min(at + length, from + 8192)) as unknown as number[]);
    return text;
  }

  /** Appends `key`'s characters, then `state`'s, to the byte array (compacting or growing it first if full); where they start. */
  #storeEntry(key: string, state: string): number {
    const length = key.length + state.length;
    if (this.#bytesEnd + length > this.#bytes.length) {
      const live = this.#bytesEnd - this.#gaps;
      // Reclaim the gaps when they are half the bytes, else grow: amortized O(1) per key either way.
      this.#moveBytes(this.#gaps * 2 >= this.#bytesEnd ? Math.max(this.#bytes.length, (live + length) * 2) : Math.max(this.#bytes.length * 2, this.#bytesEnd + length));
    }
    const at = this.#bytesEnd;
    const bytes = this.#bytes;
    for (let i = 0; i < key.length; i++) bytes[at + i] = key.charCodeAt(i);
    const stateAt = at + key.length;
    for (let i = 0; i < state.length; i++) bytes[stateAt + i] = state.charCodeAt(i);
    this.#bytesEnd += length;
    return at;
  }

  /** Copies the live rows' bytes, gaps left out, into a new byte array of `capacity`. */
  #moveBytes(capacity: number): void {
    const from = this.#bytes;
    const to = new Uint8Array(capacity);
    let end = 0;
    for (let row = 0; row < this.#used; row++) {
      if (this.#table[row] === FREE) continue;
      const at = this.#keyAt[row]!;
      const length = this.heldBytesOf(row);
      to.set(from.subarray(at, at + length), end);
      this.#keyAt[row] = end;
      end += length;
    }
    this.#bytes = to;
    this.#bytesEnd = end;
    this.#gaps = 0;
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
    this.#seq = copied(this.#seq, new Int32Array(rows));
    if (this.#snapshotSeq !== undefined) this.#snapshotSeq = copied(this.#snapshotSeq, new Int32Array(rows));
    this.#lastUsed = copied(this.#lastUsed, new Int32Array(rows));
    this.#table = copied(this.#table, new Uint16Array(rows).fill(FREE));
    this.#keyAt = copied(this.#keyAt, new Int32Array(rows));
    this.#keyLength = copied(this.#keyLength, new Uint16Array(rows));
    this.#next = copied(this.#next, new Int32Array(rows));
  }

  /** Rebuilds the columns with `rows` rows, the live rows first (row numbers change), and the bytes without gaps. */
  #compact(rows: number): void {
    const old = {
      state: this.#state,
      seq: this.#seq,
      snapshotSeq: this.#snapshotSeq,
      lastUsed: this.#lastUsed,
      table: this.#table,
      keyAt: this.#keyAt,
      keyLength: this.#keyLength,
      used: this.#used,
    };
    this.#state = new Int32Array(rows);
    this.#seq = new Int32Array(rows);
    if (this.#snapshotSeq !== undefined) this.#snapshotSeq = new Int32Array(rows);
    this.#lastUsed = new Int32Array(rows);
    this.#table = new Uint16Array(rows).fill(FREE);
    this.#keyAt = new Int32Array(rows);
    this.#keyLength = new Uint16Array(rows);
    this.#next = new Int32Array(rows);
    let at = 0;
    for (let row = 0; row < old.used; row++) {
      if (old.table[row] === FREE) continue;
      this.#state[at] = old.state[row]!;
      this.#seq[at] = old.seq[row]!;
      if (this.#snapshotSeq !== undefined) this.#snapshotSeq[at] = old.snapshotSeq![row]!;
      this.#lastUsed[at] = old.lastUsed[row]!;
      this.#table[at] = old.table[row]!;
      this.#keyAt[at] = old.keyAt[row]!; // into the old bytes until #moveBytes
      this.#keyLength[at] = old.keyLength[row]!;
      at++;
    }
    this.#used = this.#size = at;
    this.#free = NO_ROW;
    this.#sweepAt = this.#evictAt = 0;
    this.#moveBytes(Math.max(MIN_ROWS * 16, (this.#bytesEnd - this.#gaps) * 2));
    this.#rehash(Math.max(MIN_ROWS, rows / 2));
  }

  #rehash(buckets: number): void {
    this.#buckets = new Int32Array(buckets).fill(NO_ROW);
    for (let row = 0; row < this.#used; row++) {
      if (this.#table[row] === FREE) continue;
      const bucket = hashBytes(this.#bytes, this.#keyAt[row]!, this.#keyLength[row]!) & (buckets - 1);
      this.#next[row] = this.#buckets[bucket]!;
      this.#buckets[bucket] = row;
    }
  }
}

function copied<A extends Int32Array | Uint16Array>(from: A, to: A): A {
  to.set(from);
  return to;
}
