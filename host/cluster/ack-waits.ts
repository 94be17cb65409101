// Majority / all write consistency: a change that asked for it gets an id, receivers
// acknowledge it once applied, and commands wait until enough nodes (this one counted)
// have it, or their deadline (or the node's own limit) passes. The write is kept either
// way: it is durable in this node's copy and reaches the others as they catch up.
import { WriteConsistency } from "../abi/replicated-abi.js";
import { KeystateError } from "../errors.js";

interface Pending {
  readonly acked: Set<string>;
  readonly waiters: Set<() => void>;
  readonly expiry: NodeJS.Timeout;
}

/** Majority / all of `nodes` (this one included): how many must have applied a write. */
export function nodesNeeded(level: WriteConsistency, nodes: number): number {
  if (level === WriteConsistency.ALL) return nodes;
  if (level === WriteConsistency.MAJORITY) return Math.floor(nodes / 2) + 1;
  return 1;
}

export class AckWaits {
  readonly #pending = new Map<number, Pending>();
  #nextId = 1;

  constructor(
    /** Live members now, this node included. */
    private readonly liveNodes: () => number,
    private readonly limitMs: number,
  ) {}

  /** A new change that wants acknowledgements: its id (kept for the longest wait). */
  open(): number {
    const id = this.#nextId++;
    const expiry = setTimeout(() => this.#pending.delete(id), this.limitMs + 1000);
    expiry.unref();
    this.#pending.set(id, { acked: new Set(), waiters: new Set(), expiry });
    return id;
  }

  acknowledged(id: number, from: string): void {
    const pending = this.#pending.get(id);
    if (pending === undefined || pending.acked.has(from)) return;
    pending.acked.add(from);
    for (const check of [...pending.waiters]) check();
  }

  /** Resolves once `level` many nodes applied change `id`; rejects at `deadline` or after the limit. */
  wait(id: number, level: WriteConsistency, deadline: number | undefined): Promise<void> {
    const needed = nodesNeeded(level, Math.max(1, this.liveNodes()));
    const pending = this.#pending.get(id);
    if (needed <= 1 || pending === undefined) {
      return needed <= 1 ? Promise.resolve() : Promise.reject(timeoutError(1, needed, false));
    }
    if (1 + pending.acked.size >= needed) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const limit = Date.now() + this.limitMs;
      const byCaller = deadline !== undefined && deadline <= limit;
      const check = () => {
        if (1 + pending.acked.size < needed) return;
        clearTimeout(timer);
        pending.waiters.delete(check);
        resolve();
      };
      const timer = setTimeout(
        () => {
          pending.waiters.delete(check);
          reject(timeoutError(1 + pending.acked.size, needed, byCaller));
        },
        Math.max(0, (byCaller ? deadline : limit) - Date.now()),
      );
      timer.unref();
      pending.waiters.add(check);
    });
  }

  close(): void {
    for (const pending of this.#pending.values()) clearTimeout(pending.expiry);
    this.#pending.clear();
  }
}

function timeoutError(applied: number, needed: number, byCaller: boolean): KeystateError {
  const what = `${applied} of the ${needed} nodes this write needed applied it`;
  return byCaller
    ? new KeystateError("DEADLINE", `${what} before the deadline; the write is kept on this node and reaches the others as they catch up`)
    : new KeystateError("REPLICATION_INCOMPLETE", `${what} in time; the write is kept on this node and reaches the others as they catch up`);
}
