// Strings a guest reads again and again (a module's service and method names): Reader's
// knownString() hands back the string already made for the same UTF-8 bytes instead of
// decoding a new one, saving an allocation and a UTF-8 decode per read.

/**
 * Whether the `size` bytes at `a` and at `b` are the same, eight at a time. memory.compare
 * goes a word at a time only when both addresses share their alignment, and a name read from
 * the input rarely does (it follows a tag and a length): a byte at a time, each a loop turn
 * the fuel counter also pays for, made this match the guest's costliest function on a
 * counter command.
 */
function sameBytes(a: usize, b: usize, size: usize): bool {
  while (size >= 8) {
    if (load<u64>(a) != load<u64>(b)) return false;
    a += 8;
    b += 8;
    size -= 8;
  }
  while (size > 0) {
    if (load<u8>(a) != load<u8>(b)) return false;
    a++;
    b++;
    size--;
  }
  return true;
}

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
      if (entry.utf8.length == size && sameBytes(entry.utf8.dataStart, at, <usize>size)) return entry.value;
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
