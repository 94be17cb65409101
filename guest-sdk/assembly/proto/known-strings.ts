// Strings a guest reads again and again (a module's service and method names): Reader's
// knownString() hands back the string already made for the same UTF-8 bytes instead of
// decoding a new one, saving an allocation and a UTF-8 decode per read.

class KnownString {
  constructor(readonly utf8: Uint8Array, readonly value: string) {}
}

export class KnownStrings {
  private readonly known: Array<KnownString> = new Array<KnownString>();

  /** Remembers at most `limit` strings; one past it is decoded every time it is read. */
  constructor(readonly limit: i32) {}

  /** The string of the `size` UTF-8 bytes at `at`: one seen before, else decoded (and kept while there is room). */
  of(at: usize, size: i32): string {
    const known = this.known;
    for (let i = 0, n = known.length; i < n; i++) {
      const entry = unchecked(known[i]);
      if (entry.utf8.length == size && memory.compare(entry.utf8.dataStart, at, <usize>size) == 0) return entry.value;
    }
    const value = String.UTF8.decodeUnsafe(at, <usize>size);
    if (known.length < this.limit) {
      const utf8 = new Uint8Array(size);
      memory.copy(utf8.dataStart, at, <usize>size);
      known.push(new KnownString(utf8, value));
    }
    return value;
  }
}
