// LWWRegister: a last-writer-wins register of bytes. Each write carries a clock value and the
// writer's replica id; the greatest (clock, writer id, value bytes) wins everywhere, so equal
// clocks are settled by the larger replica id (and, for one writer reusing a custom clock
// value, by the bytes). A register that was never written holds no value.
import { compareBytes, compareStrings, copyBytes } from "./bytes-key.js";
import { refuse } from "./errors.js";
import { ReplicatedData, type Lattice, type TypedDelta } from "./lattice.js";

export interface LwwWrite {
  readonly value: Uint8Array;
  readonly clock: number;
  readonly writer: string;
}

export interface LWWRegisterData {
  write: LwwWrite | undefined;
}
export type LWWRegisterDelta = TypedDelta<"LWWRegister", LWWRegisterData>;

/**
 * The clock a write is stamped with, as in Cloudstate:
 * - default: wall-clock milliseconds, bumped past the current write so a later local write wins;
 * - reverse: negated wall clock, so the earliest write wins (first-write-wins);
 * - custom: the caller's value as is (e.g. a version from the domain);
 * - customAutoIncrement: the caller's value, bumped past the current write when not above it.
 */
export type LwwClock =
  | { readonly kind: "default" }
  | { readonly kind: "reverse" }
  | { readonly kind: "custom"; readonly value: number }
  | { readonly kind: "customAutoIncrement"; readonly value: number };

export function compareWrites(a: LwwWrite, b: LwwWrite): number {
  return Math.sign(a.clock - b.clock) || compareStrings(a.writer, b.writer) || compareBytes(a.value, b.value);
}

const lwwLattice: Lattice<"LWWRegister", LWWRegisterData> = {
  type: "LWWRegister",
  empty: () => ({ write: undefined }),
  joinInto(target, source) {
    // Writes are never changed in place, so sharing them is safe.
    const incoming = source.write;
    if (incoming !== undefined && (target.write === undefined || compareWrites(incoming, target.write) > 0)) {
      target.write = incoming;
    }
  },
};

export interface LWWRegisterOptions {
  /** Wall clock in milliseconds for the default and reverse clocks (tests inject one). */
  readonly now?: () => number;
}

export class LWWRegister extends ReplicatedData<"LWWRegister", LWWRegisterData, Uint8Array | undefined> {
  private readonly now: () => number;

  constructor(replicaId: string, data?: LWWRegisterData, options: LWWRegisterOptions = {}) {
    super(lwwLattice, replicaId, data);
    this.now = options.now ?? Date.now;
  }

  /** The winning value, or undefined if the register was never written. */
  value(): Uint8Array | undefined {
    const write = this.data.write;
    return write === undefined ? undefined : copyBytes(write.value);
  }

  /** The winning write with its clock and writer, for callers that need the metadata. */
  currentWrite(): LwwWrite | undefined {
    return this.data.write;
  }

  /**
   * Writes `value` stamped by `clock`. Returns false, changing nothing, when the write loses to
   * the current one (possible with the reverse or custom clocks): a local write that would lose
   * everywhere else must not show here either, or this replica would diverge.
   */
  set(value: Uint8Array, clock: LwwClock = { kind: "default" }): boolean {
    const candidate: LwwWrite = { value: copyBytes(value), clock: this.stamp(clock), writer: this.replicaId };
    const current = this.data.write;
    if (current !== undefined && compareWrites(candidate, current) <= 0) return false;
    this.commit({ write: candidate });
    return true;
  }

  clone(replicaId = this.replicaId): this {
    return new LWWRegister(replicaId, this.copyOf(this.data), { now: this.now }) as this;
  }

  private stamp(clock: LwwClock): number {
    const current = this.data.write?.clock;
    let stamped: number;
    switch (clock.kind) {
      case "default": {
        const now = this.now();
        stamped = current !== undefined && current >= now ? current + 1 : now;
        break;
      }
      case "reverse": {
        const now = -this.now();
        stamped = current !== undefined && current <= now ? current - 1 : now;
        break;
      }
      case "custom":
        stamped = checkedClock(clock.value);
        break;
      case "customAutoIncrement": {
        const requested = checkedClock(clock.value);
        stamped = current !== undefined && requested <= current ? current + 1 : requested;
        break;
      }
      default:
        refuse(`unknown LWWRegister clock kind ${JSON.stringify((clock as { kind: unknown }).kind)}`);
    }
    return checkedClock(stamped);
  }
}

function checkedClock(value: number): number {
  if (!Number.isSafeInteger(value)) refuse(`an LWWRegister clock value must be a safe integer, got ${value}`);
  return value;
}
