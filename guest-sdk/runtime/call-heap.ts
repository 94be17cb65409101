// Keystate's call-heap runtime for AssemblyScript modules (module.json `"heap": "per-call"`):
// objects are bump-allocated, and what the calls since the last collection allocated is
// dropped at once, unless something kept from before still refers to it.
//
// Why: a guest holds no entity state between calls (the host owns it), so nearly everything a
// call allocates is garbage once the call returns. With AssemblyScript's "minimal" runtime
// each object costs a TLSF allocation and, at the next collection, a sweep that frees it on
// its own: about half of the guest's time on a small command (bench/RESULTS.md). Here an
// allocation is a pointer bump, and dropping a call's garbage is one store.
//
// The heap has two parts. Below `callStart` lies what is kept: what the start function made
// (pre-initialised at build) and what earlier calls left reachable. Above it lies what the
// calls since the last collection allocated. A collection (__collect, which the SDK runs
// between calls, while no guest frame holds a reference: guest-sdk/assembly/exports.ts)
// traces from the globals through the kept objects only; if none of them refers to one of the
// calls' objects, those are all garbage and `offset` goes back to `callStart`. If one does (a
// module-level cache took a new entry, a kept array's buffer grew, a global holds a new
// object), that part of the heap becomes kept, whole, garbage included: nothing is lost, and
// it costs little when it is rare (the SDK's own caches fill in the first calls), but a module
// that keeps something new on every call should use the "collected" heap instead.
//
// A write barrier instead of the trace (__link remembering each kept object given a reference
// to a call's object, so that a collection checks only those and the globals) was measured
// slower: __link runs on every reference stored, and, inlined into every field setter, it made
// the counter's module ~10 KB larger.
//
// `keystate build` puts this file where asc looks for its built-in "stub" runtime (see
// host/build/asc-compile.ts): asc gives a runtime named by path a shadow stack, which the
// incremental collector needs and this runtime does not.
import { AL_MASK, BLOCK, BLOCK_MAXSIZE, BLOCK_OVERHEAD, OBJECT, OBJECT_MAXSIZE, OBJECT_OVERHEAD, TOTAL_OVERHEAD } from "./common";
import { E_ALLOCATION_TOO_LARGE } from "../util/error";

// Block layout (rt/common.ts): a usize header (the payload's size) right before a payload that
// starts on a 16-byte boundary; an object's payload starts with its OBJECT fields.

/** The first block's header: just below the first aligned address with room for it past the static data. */
// @ts-ignore: decorator
@lazy let heapStart: usize = ((__heap_base + BLOCK_OVERHEAD + AL_MASK) & ~AL_MASK) - BLOCK_OVERHEAD;
/** Where the next block's header goes. */
// @ts-ignore: decorator
@lazy let offset: usize = heapStart;
/** Where the calls' objects begin; 0 until the first collection (the start function's objects are all kept). */
// @ts-ignore: decorator
@lazy let callStart: usize = 0;
/** Tags the kept objects one trace has reached (in their header's gcInfo2); never 0, which new and static objects carry. */
// @ts-ignore: decorator
@lazy let traceEpoch: u32 = 0;
// @ts-ignore: decorator
@lazy let reachesCalls = false;
// The kept objects a trace has reached but not yet visited, linked through their headers'
// gcInfo (which nothing else here uses): a trace needs no memory and no recursion, however
// long a chain of kept objects is.
// @ts-ignore: decorator
@lazy let toVisit: usize = 0;

/** The payload size for a request of `size` bytes that keeps the next block's payload aligned. */
// @ts-ignore: decorator
@inline function payloadFor(size: usize): usize {
  return ((size + BLOCK_OVERHEAD + AL_MASK) & ~AL_MASK) - BLOCK_OVERHEAD;
}

/**
 * Makes the memory reach `end`: by as many pages again as it has (a growing heap grows
 * rarely), or by just what is needed when that is refused; traps when even that is.
 */
function reachMemory(end: usize): void {
  const pages = memory.size();
  const available = <usize>pages << 16;
  if (end <= available) return;
  const needed = <i32>((end - available + 0xffff) >>> 16);
  if (memory.grow(max(pages, needed)) < 0 && memory.grow(needed) < 0) unreachable();
}

/** Whether the block at `ptr` is the calls' last block: the only one that can change size where it is. */
// @ts-ignore: decorator
@inline function isCallsLastBlock(ptr: usize, payload: usize): bool {
  return ptr >= callStart && ptr + payload == offset;
}

// @ts-ignore: decorator
@unsafe @global
export function __alloc(size: usize): usize {
  if (size > BLOCK_MAXSIZE) throw new Error(E_ALLOCATION_TOO_LARGE);
  const payload = payloadFor(size);
  const ptr = offset + BLOCK_OVERHEAD;
  reachMemory(ptr + payload);
  changetype<BLOCK>(offset).mmInfo = payload;
  offset = ptr + payload;
  return ptr;
}

// @ts-ignore: decorator
@unsafe @global
export function __realloc(ptr: usize, size: usize): usize {
  if (size > BLOCK_MAXSIZE) throw new Error(E_ALLOCATION_TOO_LARGE);
  const block = changetype<BLOCK>(ptr - BLOCK_OVERHEAD);
  const payload = block.mmInfo;
  const wanted = payloadFor(size);
  if (isCallsLastBlock(ptr, payload)) {
    reachMemory(ptr + wanted);
    block.mmInfo = wanted;
    offset = ptr + wanted;
    return ptr;
  }
  // Smaller: the block stays as it is. Larger: a new block (a kept one never grows in place,
  // since the calls' objects begin right after the last of them).
  if (wanted <= payload) return ptr;
  const moved = __alloc(size);
  memory.copy(moved, ptr, payload);
  return moved;
}

// @ts-ignore: decorator
@unsafe @global
export function __free(ptr: usize): void {
  // Only the calls' last block can be given back; any other waits for a collection.
  if (isCallsLastBlock(ptr, changetype<BLOCK>(ptr - BLOCK_OVERHEAD).mmInfo)) offset = ptr - BLOCK_OVERHEAD;
}

// @ts-ignore: decorator
@unsafe @global
export function __new(size: usize, id: u32): usize {
  if (size > OBJECT_MAXSIZE) throw new Error(E_ALLOCATION_TOO_LARGE);
  const ptr = __alloc(OBJECT_OVERHEAD + size);
  const header = changetype<OBJECT>(ptr - BLOCK_OVERHEAD);
  header.gcInfo = 0;
  header.gcInfo2 = 0;
  header.rtId = id;
  header.rtSize = <u32>size;
  return ptr + OBJECT_OVERHEAD;
}

// @ts-ignore: decorator
@unsafe @global
export function __renew(oldPtr: usize, size: usize): usize {
  if (size > OBJECT_MAXSIZE) throw new Error(E_ALLOCATION_TOO_LARGE);
  const ptr = __realloc(oldPtr - OBJECT_OVERHEAD, OBJECT_OVERHEAD + size);
  changetype<OBJECT>(ptr - BLOCK_OVERHEAD).rtSize = <u32>size;
  return ptr + OBJECT_OVERHEAD;
}

// @ts-ignore: decorator
@global @unsafe
export function __link(parentPtr: usize, childPtr: usize, expectMultiple: bool): void {
  // Nothing: a collection finds what refers to the calls' objects by tracing.
}

// @ts-ignore: decorator
@global @unsafe
export function __pin(ptr: usize): usize {
  // Nothing moves, and nothing is collected inside a call.
  return ptr;
}

// @ts-ignore: decorator
@global @unsafe
export function __unpin(ptr: usize): void {}

// Called by the compiler's __visit_globals and __visit_members for each reference they find.
// @ts-ignore: decorator
@global @unsafe
function __visit(ptr: usize, cookie: u32): void {
  if (ptr == 0 || reachesCalls) return;
  if (ptr >= callStart) {
    reachesCalls = true;
    return;
  }
  // A kept object, or a static one (below the heap: a static array's buffer may have been
  // replaced by a larger one since). Queued once per trace.
  const header = changetype<OBJECT>(ptr - TOTAL_OVERHEAD);
  if (header.gcInfo2 == traceEpoch) return;
  header.gcInfo2 = traceEpoch;
  header.gcInfo = <u32>toVisit;
  toVisit = ptr;
}

/**
 * Between calls only (no guest frame may hold a reference): drops the objects of the calls
 * since the last collection, unless something kept refers to one of them.
 */
// @ts-ignore: decorator
@global @unsafe
export function __collect(): void {
  if (callStart == 0) {
    callStart = offset;
    return;
  }
  if (offset == callStart) return;
  if (++traceEpoch == 0) traceEpoch = 1;
  reachesCalls = false;
  toVisit = 0;
  __visit_globals(0);
  while (toVisit != 0 && !reachesCalls) {
    const ptr = toVisit;
    toVisit = <usize>changetype<OBJECT>(ptr - TOTAL_OVERHEAD).gcInfo;
    __visit_members(ptr, 0);
  }
  if (reachesCalls) callStart = offset;
  else offset = callStart;
}
