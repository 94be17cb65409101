// The resident records of one (kind, persistence id), by key: a hash table whose chains run
// through the records themselves (EntityRecord.nextInBucket). A Map<string, record> costs
// ~28 B per entry when full and up to twice that just after it doubles (key, value and chain
// words, plus buckets); here an entry costs its record's chain field and 4-8 B of bucket
// array, ~15-40 B less per resident entity. The key is hashed in JS, which a Map does
// too (in V8) for each request's new key string, so a lookup costs about the same.

/** What the index needs of a record: its key and a chain field it owns. */
export interface Indexed {
  readonly key: string;
  nextInBucket: this | undefined;
}

/** Buckets never go below this (a table with few entities). */
const MIN_BUCKETS = 8;

/** 32-bit FNV-1a of the UTF-16 code units of `key`. */
export function hashKey(key: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) hash = Math.imul(hash ^ key.charCodeAt(i), 0x01000193);
  return hash >>> 0;
}

export class RecordIndex<R extends Indexed> {
  #buckets: (R | undefined)[] = newBuckets<R>(MIN_BUCKETS);
  #size = 0;

  get size(): number {
    return this.#size;
  }

  /** How many buckets there are: a walker (sampled-lru-budget.ts) visits them by position. */
  get bucketCount(): number {
    return this.#buckets.length;
  }

  /** The first record of bucket `at` (the rest follow through nextInBucket); undefined when empty or past the end. */
  bucket(at: number): R | undefined {
    return this.#buckets[at];
  }

  get(key: string): R | undefined {
    const buckets = this.#buckets;
    for (let record = buckets[hashKey(key) & (buckets.length - 1)]; record !== undefined; record = record.nextInBucket) {
      if (record.key === key) return record;
    }
    return undefined;
  }

  has(key: string): boolean {
    return this.get(key) !== undefined;
  }

  /** Adds `record`; no record may be under its key yet (the manager looked it up first). */
  add(record: R): void {
    // Only here does the bucket array change size: deleting while iterating stays safe.
    if (this.#size >= 2 * this.#buckets.length) this.#resize(this.#buckets.length * 2);
    else if (this.#size < this.#buckets.length / 8 && this.#buckets.length > MIN_BUCKETS) this.#resize(this.#buckets.length / 2);
    const at = hashKey(record.key) & (this.#buckets.length - 1);
    record.nextInBucket = this.#buckets[at];
    this.#buckets[at] = record;
    this.#size++;
  }

  /** Removes the record under `key`; whether there was one. */
  delete(key: string): boolean {
    const buckets = this.#buckets;
    const at = hashKey(key) & (buckets.length - 1);
    let previous: R | undefined;
    for (let record = buckets[at]; record !== undefined; previous = record, record = record.nextInBucket) {
      if (record.key !== key) continue;
      if (previous === undefined) buckets[at] = record.nextInBucket;
      else previous.nextInBucket = record.nextInBucket;
      record.nextInBucket = undefined;
      this.#size--;
      return true;
    }
    return false;
  }

  /** Every record; deleting the current one while iterating is safe, adding or deleting others is not. */
  *values(): Generator<R> {
    const buckets = this.#buckets;
    for (let at = 0; at < buckets.length; at++) {
      for (let record = buckets[at]; record !== undefined; ) {
        const next: R | undefined = record.nextInBucket;
        yield record;
        record = next;
      }
    }
  }

  clear(): void {
    for (const record of this.values()) record.nextInBucket = undefined;
    this.#buckets = newBuckets<R>(MIN_BUCKETS);
    this.#size = 0;
  }

  #resize(length: number): void {
    const old = this.#buckets;
    const buckets = newBuckets<R>(length);
    for (let at = 0; at < old.length; at++) {
      for (let record = old[at]; record !== undefined; ) {
        const next: R | undefined = record.nextInBucket;
        const to = hashKey(record.key) & (length - 1);
        record.nextInBucket = buckets[to];
        buckets[to] = record;
        record = next;
      }
    }
    this.#buckets = buckets;
  }
}

/** A packed array of `length` (a power of two) empty buckets. */
function newBuckets<R>(length: number): (R | undefined)[] {
  return new Array<R | undefined>(length).fill(undefined);
}
