// Protobuf wire-format writer for guest code: a growable byte buffer that generated
// message classes encode into. One Writer can be reset and reused, so a guest that
// answers many calls does not allocate a fresh buffer per reply.

/** Number of bytes the varint encoding of `v` takes (1..5). */
// @ts-ignore: decorator
@inline
export function varint32Size(v: u32): i32 {
  return v < 0x80 ? 1 : v < 0x4000 ? 2 : v < 0x200000 ? 3 : v < 0x10000000 ? 4 : 5;
}

// Stores `v` as a varint at address `p`; returns the number of bytes stored.
// @ts-ignore: decorator
@inline
function storeVarint32(p: usize, v: u32): i32 {
  const start = p;
  while (v >= 0x80) {
    store<u8>(p++, <u8>(v | 0x80));
    v >>>= 7;
  }
  store<u8>(p++, <u8>v);
  return <i32>(p - start);
}

export class Writer {
  // The buffer object is kept so the GC sees it; `ptr` is its data start, cached
  // because every write goes through it.
  private buf: Uint8Array;
  private ptr: usize;
  private cap: i32;
  private len: i32 = 0;

  constructor(initialCapacity: i32 = 256) {
    const cap = initialCapacity > 16 ? initialCapacity : 16;
    this.buf = new Uint8Array(cap);
    this.ptr = this.buf.dataStart;
    this.cap = cap;
  }

  /** Bytes written so far. */
  get length(): i32 {
    return this.len;
  }

  /** Forgets what was written; keeps the buffer for the next message. */
  reset(): void {
    this.len = 0;
  }

  /** A copy of the bytes written: stays valid after reset() and further writes. */
  finish(): Uint8Array {
    const out = new Uint8Array(this.len);
    memory.copy(out.dataStart, this.ptr, <usize>this.len);
    return out;
  }

  /** A view of the bytes written, without a copy: valid only until the next write or reset(). */
  view(): Uint8Array {
    return this.buf.subarray(0, this.len);
  }

  /** Address of the first byte written, for handing the output to the host without a copy. */
  get dataStart(): usize {
    return this.ptr;
  }

  // The check inlined into every write, the growth out of line: as one function the check
  // was a call on every field written.
  // @ts-ignore: decorator
  @inline private ensure(extra: i32): void {
    if (this.len + extra > this.cap) this.grow(this.len + extra);
  }

  private grow(need: i32): void {
    let cap = this.cap << 1;
    if (cap < need) cap = need;
    const next = new Uint8Array(cap);
    memory.copy(next.dataStart, this.ptr, <usize>this.len);
    this.buf = next;
    this.ptr = next.dataStart;
    this.cap = cap;
  }

  /** A field key: field number and wire type (0 varint, 1 fixed64, 2 length-delimited, 5 fixed32). */
  tag(fieldNumber: u32, wireType: u32): void {
    this.uint32((fieldNumber << 3) | wireType);
  }

  uint32(v: u32): void {
    this.ensure(5);
    this.len += storeVarint32(this.ptr + <usize>this.len, v);
  }

  uint64(v: u64): void {
    this.ensure(10);
    let p = this.ptr + <usize>this.len;
    const start = p;
    while (v >= 0x80) {
      store<u8>(p++, <u8>(v | 0x80));
      v >>>= 7;
    }
    store<u8>(p++, <u8>v);
    this.len += <i32>(p - start);
  }

  /** Negative int32 values take 10 bytes: the wire format sign-extends them to 64 bits. */
  int32(v: i32): void {
    if (v >= 0) this.uint32(<u32>v);
    else this.uint64(<u64><i64>v);
  }

  sint32(v: i32): void {
    this.uint32(<u32>((v << 1) ^ (v >> 31)));
  }

  int64(v: i64): void {
    this.uint64(<u64>v);
  }

  sint64(v: i64): void {
    this.uint64(<u64>((v << 1) ^ (v >> 63)));
  }

  bool(v: bool): void {
    this.put<u8>(v ? 1 : 0);
  }

  enum(v: i32): void {
    this.int32(v);
  }

  // Wasm memory is little-endian, as the fixed-width wire types are, so a fixed-width
  // value is one store.
  // @ts-ignore: decorator
  @inline
  private put<T>(v: T): void {
    this.ensure(sizeof<T>());
    store<T>(this.ptr + <usize>this.len, v);
    this.len += <i32>sizeof<T>();
  }

  fixed32(v: u32): void {
    this.put<u32>(v);
  }

  sfixed32(v: i32): void {
    this.put<i32>(v);
  }

  float(v: f32): void {
    this.put<f32>(v);
  }

  fixed64(v: u64): void {
    this.put<u64>(v);
  }

  sfixed64(v: i64): void {
    this.put<i64>(v);
  }

  double(v: f64): void {
    this.put<f64>(v);
  }

  /** UTF-8, length-prefixed. Lone surrogates become 3-byte WTF-8 sequences (AS's default). */
  string(s: string): void {
    const n = String.UTF8.byteLength(s);
    this.uint32(<u32>n);
    this.ensure(n);
    String.UTF8.encodeUnsafe(changetype<usize>(s), s.length, this.ptr + <usize>this.len);
    this.len += n;
  }

  bytes(b: Uint8Array): void {
    const n = b.length;
    this.uint32(<u32>n);
    this.ensure(n);
    memory.copy(this.ptr + <usize>this.len, b.dataStart, <usize>n);
    this.len += n;
  }

  /**
   * Starts a length-delimited region (an embedded message or a packed array) whose
   * length is not known yet. Returns a mark for ldelim(). One byte is reserved for the
   * length: most embedded messages are shorter than 128 bytes, so they need no move;
   * a longer one is shifted right once by ldelim() to make room.
   */
  fork(): i32 {
    this.ensure(1);
    const mark = this.len;
    this.len += 1;
    return mark;
  }

  /** Ends the region started by fork() and writes its length in front of it. */
  ldelim(mark: i32): void {
    const bodyStart = mark + 1;
    const bodyLen = this.len - bodyStart;
    const size = varint32Size(<u32>bodyLen);
    if (size > 1) {
      this.ensure(size - 1);
      memory.copy(
        this.ptr + <usize>(mark + size),
        this.ptr + <usize>bodyStart,
        <usize>bodyLen,
      );
      this.len += size - 1;
    }
    storeVarint32(this.ptr + <usize>mark, <u32>bodyLen);
  }
}
