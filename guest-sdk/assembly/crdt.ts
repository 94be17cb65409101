// The CRDT types a replicated entity's handler reads and changes. A handler gets its
// entity's CRDT already holding the current value; each change is recorded as an op
// (abi.proto CrdtOp) that the host applies after the handler returns, and is also made
// locally, so the handler reads its own writes. The host enforces each type's rules
// (it refuses e.g. a negative GCounter increment with INVALID_ARGUMENT, changing nothing).
import { CrdtMapEntry, CrdtOp, CrdtOpKind, CrdtValue, LwwClock } from "./abi/messages";

export abstract class Crdt {
  /** The ops recorded so far, in order (for the root CRDT; a map value records into its map). */
  readonly ops: Array<CrdtOp> = [];
  /** Set for an ORMap value: changes go to the map as updates of `key`. */
  parent: ORMap | null = null;
  key: Uint8Array = new Uint8Array(0);

  /** The CRDT type name, as in module.json and abi.proto CrdtValue.type. */
  abstract crdtType(): string;

  /** Records a raw op. Low level: the typed methods call it; the host validates every op. */
  record(op: CrdtOp): void {
    const parent = this.parent;
    if (parent == null) {
      this.ops.push(op);
      return;
    }
    const update = new CrdtOp();
    update.kind = CrdtOpKind.CRDT_OP_UPDATE;
    update.key = this.key;
    update.valueType = this.crdtType();
    update.ops.push(op);
    parent.record(update);
  }
}

function op(kind: i32): CrdtOp {
  const o = new CrdtOp();
  o.kind = kind;
  return o;
}

/** A grow-only counter. */
export class GCounter extends Crdt {
  value: i64 = 0;
  crdtType(): string {
    return "GCounter";
  }
  /** Adds `by` (must not be negative: the host refuses it). */
  increment(by: i64): void {
    const o = op(CrdtOpKind.CRDT_OP_INCREMENT);
    o.amount = by;
    this.record(o);
    this.value += by;
  }
}

/** A counter that goes both ways. */
export class PNCounter extends Crdt {
  value: i64 = 0;
  crdtType(): string {
    return "PNCounter";
  }
  increment(by: i64): void {
    const o = op(CrdtOpKind.CRDT_OP_INCREMENT);
    o.amount = by;
    this.record(o);
    this.value += by;
  }
  decrement(by: i64): void {
    const o = op(CrdtOpKind.CRDT_OP_DECREMENT);
    o.amount = by;
    this.record(o);
    this.value -= by;
  }
}

/** A grow-only set of byte strings (encode messages with encode(), strings with addString). */
export class GSet extends Crdt {
  elements: Array<Uint8Array> = [];
  crdtType(): string {
    return "GSet";
  }
  get size(): i32 {
    return this.elements.length;
  }
  contains(element: Uint8Array): bool {
    return indexOf(this.elements, element) >= 0;
  }
  containsString(element: string): bool {
    return this.contains(utf8(element));
  }
  add(element: Uint8Array): void {
    const o = op(CrdtOpKind.CRDT_OP_ADD);
    o.element = element;
    this.record(o);
    if (this.contains(element)) return;
    // Kept sorted by bytes, as the host orders them, so a handler reads what a later call will.
    insertSorted(this.elements, element);
  }
  addString(element: string): void {
    this.add(utf8(element));
  }
}

/** An observed-remove set: add wins over a concurrent remove. */
export class ORSet extends GSet {
  crdtType(): string {
    return "ORSet";
  }
  remove(element: Uint8Array): void {
    const o = op(CrdtOpKind.CRDT_OP_REMOVE);
    o.element = element;
    this.record(o);
    const at = indexOf(this.elements, element);
    if (at >= 0) this.elements.splice(at, 1);
  }
  removeString(element: string): void {
    this.remove(utf8(element));
  }
  clear(): void {
    this.record(op(CrdtOpKind.CRDT_OP_CLEAR));
    this.elements = [];
  }
}

/** A last-writer-wins register of bytes; `value` is null until first set. */
export class LWWRegister extends Crdt {
  value: Uint8Array | null = null;
  crdtType(): string {
    return "LWWRegister";
  }
  /** Sets the value, stamped with the wall clock (a later write wins). */
  set(value: Uint8Array): void {
    this.setWithClock(value, LwwClock.LWW_CLOCK_DEFAULT, 0);
  }
  /** Sets the value with a clock: LwwClock.LWW_CLOCK_REVERSE (first write wins), _CUSTOM or _CUSTOM_AUTO_INCREMENT with `customClock`. */
  setWithClock(value: Uint8Array, clock: i32, customClock: i64): void {
    const o = op(CrdtOpKind.CRDT_OP_SET);
    o.element = value;
    o.clock = clock;
    o.customClock = customClock;
    this.record(o);
    this.value = value;
  }
}

/** False until enabled anywhere. */
export class Flag extends Crdt {
  enabled: bool = false;
  crdtType(): string {
    return "Flag";
  }
  enable(): void {
    this.record(op(CrdtOpKind.CRDT_OP_ENABLE));
    this.enabled = true;
  }
}

/** Each node's boolean vote; everyone sees the tally. */
export class Vote extends Crdt {
  selfVote: bool = false;
  votesFor: u32 = 0;
  /** Nodes that have voted. */
  total: u32 = 0;
  crdtType(): string {
    return "Vote";
  }
  atLeastOne(): bool {
    return this.votesFor > 0;
  }
  majority(): bool {
    return this.votesFor * 2 > this.total;
  }
  all(): bool {
    return this.total > 0 && this.votesFor == this.total;
  }
  /** Sets this node's vote (voting the same again changes nothing). */
  vote(inFavour: bool): void {
    const o = op(CrdtOpKind.CRDT_OP_VOTE);
    o.vote = inFavour;
    this.record(o);
    if (!this.hadVoted) {
      this.total++;
      this.hadVoted = true;
    }
    if (inFavour != this.selfVote) this.votesFor = inFavour ? this.votesFor + 1 : this.votesFor - 1;
    this.selfVote = inFavour;
  }
  /** Whether this node is among the voters (set by the SDK from the host's tally). */
  hadVoted: bool = false;
}

/** A map from byte keys to CRDTs of any type; typed getters create a missing key's value. */
export class ORMap extends Crdt {
  readonly entryKeys: Array<Uint8Array> = [];
  readonly values: Array<Crdt> = [];
  crdtType(): string {
    return "ORMap";
  }
  get size(): i32 {
    return this.entryKeys.length;
  }
  has(key: Uint8Array): bool {
    return indexOf(this.entryKeys, key) >= 0;
  }
  keys(): Array<Uint8Array> {
    return this.entryKeys.slice(0);
  }
  /** The key's value, or null. Change it through its own methods (recorded as map updates). */
  get(key: Uint8Array): Crdt | null {
    const at = indexOf(this.entryKeys, key);
    return at < 0 ? null : this.values[at];
  }
  gcounter(key: Uint8Array): GCounter {
    return changetype<GCounter>(this.getOrAdd(key, new GCounter()));
  }
  pncounter(key: Uint8Array): PNCounter {
    return changetype<PNCounter>(this.getOrAdd(key, new PNCounter()));
  }
  gset(key: Uint8Array): GSet {
    return changetype<GSet>(this.getOrAdd(key, new GSet()));
  }
  orset(key: Uint8Array): ORSet {
    return changetype<ORSet>(this.getOrAdd(key, new ORSet()));
  }
  lwwRegister(key: Uint8Array): LWWRegister {
    return changetype<LWWRegister>(this.getOrAdd(key, new LWWRegister()));
  }
  flag(key: Uint8Array): Flag {
    return changetype<Flag>(this.getOrAdd(key, new Flag()));
  }
  vote(key: Uint8Array): Vote {
    return changetype<Vote>(this.getOrAdd(key, new Vote()));
  }
  ormap(key: Uint8Array): ORMap {
    return changetype<ORMap>(this.getOrAdd(key, new ORMap()));
  }
  remove(key: Uint8Array): void {
    const o = op(CrdtOpKind.CRDT_OP_REMOVE);
    o.key = key;
    this.record(o);
    const at = indexOf(this.entryKeys, key);
    if (at >= 0) {
      this.entryKeys.splice(at, 1);
      this.values.splice(at, 1);
    }
  }
  clear(): void {
    this.record(op(CrdtOpKind.CRDT_OP_CLEAR));
    this.entryKeys.length = 0;
    this.values.length = 0;
  }

  /**
   * The key's value when it holds `fresh`'s type; otherwise (absent, or another type) `fresh`
   * becomes it. An update of a key holding another type is sent anyway: the host refuses it
   * with INVALID_ARGUMENT, so the command fails with the state unchanged.
   */
  private getOrAdd(key: Uint8Array, fresh: Crdt): Crdt {
    const at = indexOf(this.entryKeys, key);
    if (at >= 0 && this.values[at].crdtType() == fresh.crdtType()) return this.values[at];
    fresh.parent = this;
    fresh.key = key;
    if (at >= 0) this.values[at] = fresh;
    else {
      // Keys stay sorted by bytes, as the host orders them.
      const slot = insertSorted(this.entryKeys, key);
      this.values.push(fresh);
      for (let i = this.values.length - 1; i > slot; i--) this.values[i] = this.values[i - 1];
      this.values[slot] = fresh;
    }
    // Creating the key is itself a change (an empty update), as with the host's getOrCreate.
    const create = new CrdtOp();
    create.kind = CrdtOpKind.CRDT_OP_UPDATE;
    create.key = key;
    create.valueType = fresh.crdtType();
    this.record(create);
    return fresh;
  }
}

/** The CRDT the host described, holding its value; null for a type this SDK does not know. */
export function crdtFromValue(v: CrdtValue): Crdt | null {
  const t = v.type;
  if (t == "GCounter") {
    const c = new GCounter();
    c.value = v.counter;
    return c;
  }
  if (t == "PNCounter") {
    const c = new PNCounter();
    c.value = v.counter;
    return c;
  }
  if (t == "GSet" || t == "ORSet") {
    const s = t == "GSet" ? new GSet() : new ORSet();
    s.elements = v.elements;
    return s;
  }
  if (t == "LWWRegister") {
    const r = new LWWRegister();
    if (v.hasRegister) r.value = v.register;
    return r;
  }
  if (t == "Flag") {
    const f = new Flag();
    f.enabled = v.flag;
    return f;
  }
  if (t == "Vote") {
    const vote = new Vote();
    const tally = v.vote;
    if (tally != null) {
      vote.selfVote = tally.selfVote;
      vote.votesFor = tally.votesFor;
      vote.total = tally.total;
      // A false self vote may or may not be counted; the host's tally is exact after the command.
      vote.hadVoted = tally.selfVote;
    }
    return vote;
  }
  if (t == "ORMap") {
    const map = new ORMap();
    for (let i = 0; i < v.entries.length; i++) {
      const entry: CrdtMapEntry = v.entries[i];
      const value = entry.value;
      if (value == null) continue;
      const nested = crdtFromValue(value);
      if (nested == null) continue;
      nested.parent = map;
      nested.key = entry.key;
      map.entryKeys.push(entry.key);
      map.values.push(nested);
    }
    return map;
  }
  return null;
}

export function utf8(s: string): Uint8Array {
  return Uint8Array.wrap(String.UTF8.encode(s));
}

export function bytesEqual(a: Uint8Array, b: Uint8Array): bool {
  if (a.length != b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] != b[i]) return false;
  return true;
}

function compareBytes(a: Uint8Array, b: Uint8Array): i32 {
  const n = min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] != b[i]) return i32(a[i]) - i32(b[i]);
  return a.length - b.length;
}

/** Inserts `element` in byte order; returns where it went. */
function insertSorted(list: Array<Uint8Array>, element: Uint8Array): i32 {
  let at = 0;
  while (at < list.length && compareBytes(list[at], element) < 0) at++;
  list.push(element);
  for (let i = list.length - 1; i > at; i--) list[i] = list[i - 1];
  list[at] = element;
  return at;
}

function indexOf(list: Array<Uint8Array>, element: Uint8Array): i32 {
  for (let i = 0; i < list.length; i++) if (bytesEqual(list[i], element)) return i;
  return -1;
}
