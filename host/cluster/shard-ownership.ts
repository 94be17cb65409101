// The shards this node holds a lease on, and until when it may act on each. It answers the
// store's fencing question (which epoch to write under) and the router's (is this shard
// served here). A shard is served only until renewSentAt + leaseMs - safetyMs on the
// monotonic clock: by then either a renewal succeeded or the node stops on its own, before
// Redis can have given the lease to anyone else.
import { performance } from "node:perf_hooks";
import type { ShardFencing } from "../journal/types.js";

export type LossReason = "not renewed in time" | "renewal refused" | "write fenced" | "handed off" | "node stopping";

export class ShardOwnership implements ShardFencing {
  /** Epoch held per shard; 0 = not held. */
  readonly #epoch: Float64Array;
  /** Monotonic deadline (performance.now() ms) after which the shard is not served. */
  readonly #validUntil: Float64Array;
  /** Shards being handed off: writes of commands in flight still go out, new commands wait. */
  readonly #leaving = new Set<number>();
  /**
   * Shards dropped at the safety deadline, with their epoch: their lease may still be ours in
   * Redis (renewals were only slow, or Redis briefly away). A renewal under that epoch that
   * succeeds proves nobody else acquired it, so the shard resumes without waiting for expiry.
   */
  readonly #lapsed = new Map<number, number>();
  #count = 0;
  readonly #onLost: (shard: number, epoch: number, reason: LossReason) => void;

  constructor(
    readonly shardCount: number,
    readonly leaseMs: number,
    readonly safetyMs: number,
    onLost: (shard: number, epoch: number, reason: LossReason) => void,
  ) {
    this.#epoch = new Float64Array(shardCount);
    this.#validUntil = new Float64Array(shardCount);
    this.#onLost = onLost;
  }

  get count(): number {
    return this.#count;
  }

  /** Shards held now, ascending. */
  held(): number[] {
    const shards: number[] = [];
    for (let s = 0; s < this.shardCount; s++) if (this.#epoch[s]! > 0) shards.push(s);
    return shards;
  }

  epochOf(shard: number): number {
    return this.#epoch[shard] ?? 0;
  }

  /** True when commands for `shard` run here now. */
  serves(shard: number): boolean {
    return this.#epoch[shard]! > 0 && !this.#leaving.has(shard) && performance.now() < this.#validUntil[shard]!;
  }

  isLeaving(shard: number): boolean {
    return this.#leaving.has(shard);
  }

  epochFor(shard: number): number | undefined {
    const epoch = this.#epoch[shard];
    if (epoch === undefined || epoch === 0 || performance.now() >= this.#validUntil[shard]!) return undefined;
    return epoch;
  }

  refused(shard: number, epoch: number): void {
    if (this.#epoch[shard] === epoch) this.lose(shard, "write fenced");
  }

  /** An acquisition or renewal sent at `sentAt` (performance.now()) succeeded with `epoch`. */
  confirm(shard: number, epoch: number, sentAt: number): void {
    const previous = this.#epoch[shard]!;
    if (previous === 0) this.#count++;
    this.#lapsed.delete(shard);
    this.#epoch[shard] = epoch;
    // Renewals may answer out of order: a later-sent one never shortens the deadline.
    const earlier = previous === epoch ? this.#validUntil[shard]! : 0;
    this.#validUntil[shard] = Math.max(earlier, sentAt + this.leaseMs - this.safetyMs);
  }

  startLeaving(shard: number): void {
    if (this.#epoch[shard]! > 0) this.#leaving.add(shard);
  }

  /** Shards that lapsed at the safety deadline and may resume (see #lapsed). */
  lapsed(): Array<[shard: number, epoch: number]> {
    return [...this.#lapsed];
  }

  /** A lapsed shard's renewal was refused (or it was acquired anew): it cannot resume. */
  forgetLapsed(shard: number): void {
    this.#lapsed.delete(shard);
  }

  lose(shard: number, reason: LossReason): void {
    const epoch = this.#epoch[shard]!;
    if (epoch === 0) return;
    if (reason === "not renewed in time") this.#lapsed.set(shard, epoch);
    this.#epoch[shard] = 0;
    this.#validUntil[shard] = 0;
    this.#leaving.delete(shard);
    this.#count--;
    this.#onLost(shard, epoch, reason);
  }

  /** Drops every shard whose deadline passed without a renewal (the safety stop). */
  expireOverdue(): void {
    const now = performance.now();
    for (let s = 0; s < this.shardCount; s++) {
      if (this.#epoch[s]! > 0 && now >= this.#validUntil[s]!) this.lose(s, "not renewed in time");
    }
  }
}
