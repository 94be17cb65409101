// Zeroed guest memories kept for the next instance. A new WebAssembly.Memory costs little to
// reserve, but every page the start function or the first call touches then faults in: on
// this kind of VM the shopping cart's fresh instance spent ~100 us of its ~110 us there (a
// 4 KiB data segment alone ~55 us), against ~2.5 us on a memory whose pages are mapped. So an
// instance that is thrown away (a trap, a surplus idle instance) gives its memory back here,
// zeroed at once, and the next instance of any module with the same maximum imports it
// (the instrumenter turns each module's memory into the import `keystate.memory`).
//
// A recycled memory is indistinguishable from a fresh one except that it may be larger than
// the module's initial size (a memory never shrinks): its extra pages are zero and count
// against the same maximum, which an imported memory allows. Only small memories are kept,
// so zeroing stays cheaper than the page faults it saves and the pool holds little RSS.
import { WASM_PAGE_BYTES } from "./guest-limits.js";

export interface MemoryPoolOptions {
  /** Memories kept at most (each at most maxPagesKept pages). */
  readonly maxMemories: number;
  /** A memory larger than this many pages is dropped, not zeroed and kept. */
  readonly maxPagesKept: number;
}

export const DEFAULT_MEMORY_POOL: MemoryPoolOptions = { maxMemories: 16, maxPagesKept: 16 };

export class GuestMemoryPool {
  readonly #options: MemoryPoolOptions;
  /** Zeroed memories by their maximum in pages (an import needs a maximum no larger than its own). */
  readonly #idle = new Map<number, WebAssembly.Memory[]>();
  #count = 0;
  #reused = 0;
  #created = 0;

  constructor(options: MemoryPoolOptions = DEFAULT_MEMORY_POOL) {
    this.#options = options;
  }

  /** Memories handed out from the pool / made new, since the process started. */
  get stats(): { reused: number; created: number; idle: number } {
    return { reused: this.#reused, created: this.#created, idle: this.#count };
  }

  /** A zeroed memory of at least `minPages` pages with exactly `maxPages` as its maximum. */
  acquire(minPages: number, maxPages: number): WebAssembly.Memory {
    const memory = this.#idle.get(maxPages)?.pop();
    if (!memory) {
      this.#created++;
      return new WebAssembly.Memory({ initial: minPages, maximum: maxPages });
    }
    this.#count--;
    this.#reused++;
    const pages = memory.buffer.byteLength / WASM_PAGE_BYTES;
    if (pages < minPages) memory.grow(minPages - pages);
    return memory;
  }

  /**
   * Takes back the memory of an instance that will never run again (the caller guarantees
   * it: two live instances on one memory would see each other's data). Zeroed here, so no
   * guest data outlives its instance in the pool.
   */
  release(memory: WebAssembly.Memory, maxPages: number): void {
    if (this.#count >= this.#options.maxMemories) return;
    const bytes = memory.buffer.byteLength;
    if (bytes > this.#options.maxPagesKept * WASM_PAGE_BYTES) return;
    new Uint8Array(memory.buffer).fill(0);
    let list = this.#idle.get(maxPages);
    if (!list) this.#idle.set(maxPages, (list = []));
    list.push(memory);
    this.#count++;
  }
}

/** The process's pool: every GuestInstance draws from it (memories are a process resource). */
export const guestMemories = new GuestMemoryPool();
