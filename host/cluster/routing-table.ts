// Shard -> owner, as the leases in Redis say. Refreshed on an interval and whenever a call
// meets a stale route; the leases stay the authority (a stale entry costs one "moved" retry,
// never a wrong write, because the owner's writes are fenced).
import type { RedisLayout } from "../journal/redis-keys.js";
import type { ControlRedis } from "./membership.js";

export interface LeaseView {
  /** "" when the shard is free (never held, or released). */
  readonly owner: string;
  readonly epoch: number;
  /** Redis-time ms the lease runs to (0 when released). */
  readonly until: number;
}

export class RoutingTable {
  readonly #redis: ControlRedis;
  readonly #layout: RedisLayout;
  #leases: LeaseView[];
  #refreshedAt = 0;

  constructor(redis: ControlRedis, layout: RedisLayout) {
    this.#redis = redis;
    this.#layout = layout;
    this.#leases = new Array<LeaseView>(layout.shardCount).fill({ owner: "", epoch: 0, until: 0 });
  }

  get refreshedAt(): number {
    return this.#refreshedAt;
  }

  lease(shard: number): LeaseView {
    return this.#leases[shard]!;
  }

  ownerOf(shard: number): string {
    return this.#leases[shard]!.owner;
  }

  /** Shards by owner id (for /cluster); a lease that ran out (by this node's clock) counts for nobody. */
  shardsByOwner(now = Date.now()): Map<string, number[]> {
    const by = new Map<string, number[]>();
    this.#leases.forEach((lease, shard) => {
      if (lease.owner === "" || lease.until < now) return;
      let list = by.get(lease.owner);
      if (!list) by.set(lease.owner, (list = []));
      list.push(shard);
    });
    return by;
  }

  /** Reads every lease (one HMGET per shard; ioredis pipelines them, per Redis node on a Redis Cluster). */
  async refresh(): Promise<void> {
    const replies = await Promise.all(
      this.#leases.map((_, shard) => this.#redis.hmget(this.#layout.leaseKey(shard), "owner", "epoch", "until")),
    );
    this.#leases = replies.map(([owner, epoch, until]) => ({ owner: owner ?? "", epoch: Number(epoch ?? 0), until: Number(until ?? 0) }));
    this.#refreshedAt = Date.now();
  }

  /** Re-reads one shard's lease (a call met a stale route). */
  async refreshShard(shard: number): Promise<LeaseView> {
    const [owner, epoch, until] = await this.#redis.hmget(this.#layout.leaseKey(shard), "owner", "epoch", "until");
    const lease = { owner: owner ?? "", epoch: Number(epoch ?? 0), until: Number(until ?? 0) };
    this.#leases[shard] = lease;
    return lease;
  }

  /** What this node just did to a lease, known before the next refresh. */
  set(shard: number, lease: LeaseView): void {
    this.#leases[shard] = lease;
  }
}
