// Protobuf wire-format reader for guest code. The bytes come from the host, which may
// pass along anything a client sent, so no input may trap the guest: every read is
// bounds-checked, and malformed input sets `error` and yields a zero value instead.
//
// Invariant that keeps every decode loop finite: a failed read moves `pos` to `end`,
// and every successful read advances `pos` by at least one byte (a tag always does).

import { KnownStrings } from "./known-strings";

/** Nesting limit for embedded messages, so hostile input cannot exhaust the call stack. */
export const MAX_DEPTH: i32 = 100;

/**
 * The value of every empty bytes field: generated defaults and empty reads share it, which
 * saves two allocations (array and buffer) per bytes field per message. Nothing can change
 * it: an empty array has no element to write, and a write past its end traps.
 */
export const EMPTY_BYTES = new Uint8Array(0);

export class Reader {
  // Kept so the GC sees the input while `ptr` (its data start) is in use.
  buf: Uint8Array;
  private ptr: usize;
  /** Offset of the next byte to read. */
  pos: i32;
  /** Offset one past the last readable byte of the current region (message, packed array). */
  end: i32;
  /** Set on the first malformed input; sticky. */
  error: bool = false;
  /** Current embedded-message nesting depth. */
  depth: i32 = 0;
  /**
   * When set, bytes fields of the outermost message are views of the input, not copies.
   * Only for input that outlives every use of the decoded message (see exports.ts); embedded
   * messages are still copied, since the SDK may keep their bytes in the objects it builds.
   */
  borrowTopLevelBytes: bool = false;

  constructor(buf: Uint8Array, start: i32 = 0, end: i32 = -1) {
    this.buf = buf;
    this.ptr = buf.dataStart;
    this.pos = 0;
    this.end = 0;
    this.reset(buf, start, end);
  }

  /** Starts over on `buf` from `start` to `end` (-1: its end), so one reader serves many decodes. */
  reset(buf: Uint8Array, start: i32 = 0, end: i32 = -1): void {
    this.buf = buf;
    this.ptr = buf.dataStart;
    const len = buf.length;
    this.end = end < 0 || end > len ? len : end;
    this.pos = start < 0 ? 0 : start > this.end ? this.end : start;
    this.error = false;
    this.depth = 0;
    this.borrowTopLevelBytes = false;
  }

  /** Marks the input malformed and stops the current region. */
  fail(): void {
    this.error = true;
    this.pos = this.end;
  }

  /**
   * Most varints on the wire (tags of fields 1 to 15, lengths under 128, small numbers) are a
   * single byte: that byte, consumed, without the loop of varint(); -1, nothing consumed, for
   * a longer one or none. Inlined into each reader of varints (inside varint() itself the
   * check made every read a call: x0.97 on the counter's guest call).
   */
  // @ts-ignore: decorator
  @inline private oneByteVarint(): i32 {
    const pos = this.pos;
    if (pos < this.end) {
      const b = <i32>load<u8>(this.ptr + <usize>pos);
      if (b < 0x80) {
        this.pos = pos + 1;
        return b;
      }
    }
    return -1;
  }

  // A varint of at most 10 bytes; bits beyond 64 are dropped, as other runtimes do.
  private varint(): u64 {
    let result: u64 = 0;
    let shift: u64 = 0;
    let pos = this.pos;
    const end = this.end;
    for (let i = 0; i < 10; i++) {
      if (pos >= end) {
        this.fail();
        return 0;
      }
      const b = <u64>load<u8>(this.ptr + <usize>pos);
      pos++;
      result |= (b & 0x7f) << shift;
      if (b < 0x80) {
        this.pos = pos;
        return result;
      }
      shift += 7;
    }
    this.fail(); // an 11th byte would follow: not a varint
    return 0;
  }

  /**
   * Reads a field key. Returns 0 (and sets error) for field number 0, a key that does not
   * fit 32 bits, and wire types this runtime refuses: groups (3, 4) and the undefined 6, 7.
   */
  tag(): u32 {
    const b = this.oneByteVarint();
    const v: u64 = b >= 0 ? <u64>b : this.varint();
    const wireType = <u32>v & 7;
    if (v > 0xffffffff || v >>> 3 == 0 || wireType == 3 || wireType == 4 || wireType > 5) {
      this.fail();
      return 0;
    }
    return <u32>v;
  }

  uint32(): u32 {
    const b = this.oneByteVarint();
    return b >= 0 ? <u32>b : <u32>this.varint();
  }

  int32(): i32 {
    return <i32>this.uint32();
  }

  sint32(): i32 {
    const v = this.uint32();
    return <i32>((v >>> 1) ^ (0 - (v & 1)));
  }

  uint64(): u64 {
    const b = this.oneByteVarint();
    return b >= 0 ? <u64>b : this.varint();
  }

  int64(): i64 {
    return <i64>this.uint64();
  }

  sint64(): i64 {
    const v = this.varint();
    return <i64>((v >>> 1) ^ (0 - (v & 1)));
  }

  bool(): bool {
    return this.varint() != 0;
  }

  enum(): i32 {
    return this.int32();
  }

  // True when n more bytes are available; otherwise fails.
  private has(n: i32): bool {
    if (this.end - this.pos >= n) return true;
    this.fail();
    return false;
  }

  // Fixed-width values are little-endian on the wire, as in Wasm memory: one load.
  // @ts-ignore: decorator
  @inline
  private take<T>(): T {
    if (!this.has(<i32>sizeof<T>())) return <T>0;
    const v = load<T>(this.ptr + <usize>this.pos);
    this.pos += <i32>sizeof<T>();
    return v;
  }

  fixed32(): u32 {
    return this.take<u32>();
  }

  sfixed32(): i32 {
    return this.take<i32>();
  }

  float(): f32 {
    return this.take<f32>();
  }

  fixed64(): u64 {
    return this.take<u64>();
  }

  sfixed64(): i64 {
    return this.take<i64>();
  }

  double(): f64 {
    return this.take<f64>();
  }

  // Reads a length prefix and checks that many bytes follow; -1 after a failure.
  private length(): i32 {
    const n = this.uint32();
    if (this.error) return -1;
    if (n > <u32>(this.end - this.pos)) {
      this.fail();
      return -1;
    }
    return <i32>n;
  }

  /** A copy of a length-delimited field, so a decoded message does not pin the input buffer. */
  bytes(): Uint8Array {
    const n = this.length();
    if (n <= 0) return EMPTY_BYTES;
    if (this.borrowTopLevelBytes && this.depth == 0) {
      const view = this.buf.subarray(this.pos, this.pos + n);
      this.pos += n;
      return view;
    }
    const out = new Uint8Array(n);
    memory.copy(out.dataStart, this.ptr + <usize>this.pos, <usize>n);
    this.pos += n;
    return out;
  }

  /** Decodes UTF-8 leniently: invalid sequences yield replacement-free garbage, never a trap. */
  string(): string {
    const n = this.length();
    if (n <= 0) return "";
    const s = String.UTF8.decodeUnsafe(this.ptr + <usize>this.pos, <usize>n);
    this.pos += n;
    return s;
  }

  /** string(), but a string `known` has seen is returned as it is, not decoded again. */
  knownString(known: KnownStrings): string {
    const n = this.length();
    if (n <= 0) return "";
    const s = known.of(this.ptr + <usize>this.pos, n);
    this.pos += n;
    return s;
  }

  /** Skips one field value of the given wire type (an unknown field). */
  skip(wireType: u32): void {
    if (wireType == 0) {
      this.varint();
    } else if (wireType == 1) {
      if (this.has(8)) this.pos += 8;
    } else if (wireType == 2) {
      const n = this.length();
      if (n > 0) this.pos += n;
    } else if (wireType == 5) {
      if (this.has(4)) this.pos += 4;
    } else {
      this.fail();
    }
  }

  /**
   * Reads a length prefix and narrows `end` to that region (a packed array or map entry).
   * Returns the previous end for endRegion().
   */
  beginRegion(): i32 {
    const outer = this.end;
    const n = this.length();
    if (n < 0) return outer;
    this.end = this.pos + n;
    return outer;
  }

  /** Restores the outer end; the region must have been consumed exactly. */
  endRegion(outer: i32): void {
    if (this.pos != this.end) this.error = true;
    this.end = outer;
    if (this.error) this.pos = outer;
  }

  /** beginRegion() for an embedded message: also counts nesting depth. */
  beginMessage(): i32 {
    this.depth++;
    if (this.depth > MAX_DEPTH) {
      this.fail();
      return this.end;
    }
    return this.beginRegion();
  }

  endMessage(outer: i32): void {
    this.depth--;
    this.endRegion(outer);
  }
}
