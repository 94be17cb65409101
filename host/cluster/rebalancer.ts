// Moves shards to where the assignment says they belong. Each round: read who is alive,
// read the leases, compute the assignment (assignment.ts), acquire the free or expired
// shards assigned here, and hand off a few shards assigned elsewhere (drain, drop from
// memory, release). Renewals run on their own timer; a shard whose renewal is overdue is
// dropped at the safety deadline (shard-ownership.ts).
import { performance } from "node:perf_hooks";
import { KeystateError } from "../errors.js";
import type { RedisLayout } from "../journal/redis-keys.js";
import { log } from "../log.js";
import { assignShards } from "./assignment.js";
import type { ClusterMetrics } from "./cluster-metrics.js";
import type { ControlRedis, MemberInfo, Membership } from "./membership.js";
import type { LeaseView, RoutingTable } from "./routing-table.js";
import type { ShardOwnership } from "./shard-ownership.js";

/** Shards one node hands off per round, so a join moves load in steps instead of stalling everything at once. */
export const HANDOFFS_PER_ROUND = 32;
/** How long a hand-off waits for commands in flight on its shards before dropping them anyway. */
const DRAIN_MS = 2000;

/** The resident entities of a node, as the rebalancer sees them. */
export interface Residents {
  /** Drops matching entities (see EntityManager.dropMatching); returns how many matching stay. */
  dropMatching(match: (persistenceId: string, key: string) => boolean, onlyIdle: boolean, why: Error): number;
  /** Snapshots the matching event-sourced entities with events since their last snapshot (see EntityManager.flushSnapshots). */
  flushSnapshots(match: (persistenceId: string, key: string) => boolean): Promise<number>;
}

export interface RebalancerDeps {
  readonly selfId: string;
  readonly redis: ControlRedis;
  readonly layout: RedisLayout;
  readonly leaseMs: number;
  readonly membership: Membership;
  readonly ownership: ShardOwnership;
  readonly routing: RoutingTable;
  readonly residents: Residents;
  readonly metrics: ClusterMetrics;
  readonly shardMatcher: (shards: ReadonlySet<number>) => (persistenceId: string, key: string) => boolean;
  /** Routes or ownership changed (wake calls waiting for an owner). */
  readonly changed: () => void;
  /** A shard was released (its new owner may acquire it now). */
  readonly released: () => void;
}

export class Rebalancer {
  readonly #deps: RebalancerDeps;
  #members = new Map<string, MemberInfo>();
  #membersReadAt = 0;
  #running: Promise<void> | undefined;
  #again = false;
  #stopped = false;

  constructor(deps: RebalancerDeps) {
    this.#deps = deps;
  }

  get members(): ReadonlyMap<string, MemberInfo> {
    return this.#members;
  }

  /** When the members were last read from Redis (ms since the epoch; 0 never). */
  get membersReadAt(): number {
    return this.#membersReadAt;
  }

  /** Runs a round now, or right after the one running (rounds never overlap). */
  trigger(): Promise<void> {
    if (this.#running) {
      this.#again = true;
      return this.#running;
    }
    this.#running = this.#loop().finally(() => (this.#running = undefined));
    return this.#running;
  }

  stop(): void {
    this.#stopped = true;
  }

  async #loop(): Promise<void> {
    do {
      this.#again = false;
      if (this.#stopped) return;
      try {
        if (await this.#round()) this.#again = true; // more shards to move: keep going
      } catch (err) {
        log().warn({ err: KeystateError.fromStorage(err, "rebalancing") }, "rebalancing round failed; retrying at the next one");
      }
    } while (this.#again);
  }

  async refreshMembers(): Promise<MemberInfo[]> {
    const members = await this.#deps.membership.members();
    this.#members = new Map(members.map((m) => [m.id, m]));
    this.#membersReadAt = Date.now();
    return members;
  }

  /** One round; true when shards are still to be handed off. */
  async #round(): Promise<boolean> {
    const { ownership, routing, selfId } = this.#deps;
    const started = performance.now();
    // A slow Redis (or a starved event loop) may time out some of these reads: the round goes
    // on with what it knew, since every acquisition is decided by the lease script anyway.
    const members = await this.refreshMembers().catch(() => [...this.#members.values()]);
    await routing.refresh().catch((err: unknown) => log().debug({ err }, "routing refresh failed; using the last table"));
    this.#deps.changed();
    const draining = this.#deps.membership.draining;
    const eligible = members.filter((m) => m.alive && !m.draining && m.id !== selfId).map((m) => m.id);
    if (!draining) eligible.push(selfId);
    const target = assignShards(ownership.shardCount, eligible);

    const acquire: number[] = [];
    const handOff: number[] = [];
    for (let shard = 0; shard < ownership.shardCount; shard++) {
      const held = ownership.epochOf(shard) !== 0;
      const to = target[shard];
      if (!held && to === selfId && this.#acquirable(routing.lease(shard))) acquire.push(shard);
      // Only to a live node: a shard assigned to nobody (the last node leaving) is released on stop.
      if (held && !ownership.isLeaving(shard) && to !== undefined && to !== selfId) handOff.push(shard);
    }
    const acquired = await this.#acquire(acquire);
    const moving = handOff.slice(0, HANDOFFS_PER_ROUND);
    if (moving.length > 0) await this.handOff(moving, target);
    if (acquired > 0 || moving.length > 0) this.#deps.metrics.rebalanced((performance.now() - started) / 1000);
    return handOff.length > moving.length;
  }

  /**
   * Worth trying to acquire: free, ours from an earlier life, held by a node that is not
   * alive, or expired (a live node dropped it at its safety deadline and it is not that
   * node's to take back). The acquire script decides on Redis's clock; this only skips
   * shards that are surely taken.
   */
  #acquirable(lease: LeaseView): boolean {
    const owner = lease.owner;
    return owner === "" || owner === this.#deps.selfId || this.#members.get(owner)?.alive !== true || lease.until < Date.now();
  }

  async #acquire(shards: number[]): Promise<number> {
    const { redis, layout, leaseMs, selfId, ownership, routing, residents, shardMatcher } = this.#deps;
    if (shards.length === 0) return 0;
    // Nothing of an earlier tenure may survive into this one (its state may be stale).
    residents.dropMatching(shardMatcher(new Set(shards)), false, notOwner());
    let count = 0;
    await Promise.all(
      shards.map(async (shard) => {
        const sentAt = performance.now();
        const [won, epochOrOwner, until] = await redis.ksLeaseAcquire(layout.leaseKey(shard), selfId, leaseMs).catch(() => [0, "", 0] as const);
        if (won !== 1) return;
        const epoch = Number(epochOrOwner);
        ownership.confirm(shard, epoch, sentAt);
        routing.set(shard, { owner: selfId, epoch, until: Number(until) });
        count++;
        log().info({ shard, epoch }, "shard acquired");
      }),
    );
    if (count > 0) {
      this.#deps.metrics.acquired(count);
      this.#deps.changed();
    }
    return count;
  }

  /**
   * Hands `shards` off: new commands for them wait, commands in flight finish (bounded),
   * their entities leave memory (their state is in the journal), then the leases are
   * released for the targets to acquire.
   */
  async handOff(shards: number[], target: readonly (string | undefined)[]): Promise<void> {
    const { ownership, residents, shardMatcher, redis, layout, selfId } = this.#deps;
    for (const shard of shards) ownership.startLeaving(shard);
    this.#deps.changed();
    const match = shardMatcher(new Set(shards));
    const why = notOwner();
    const drainUntil = performance.now() + DRAIN_MS;
    // Snapshots first (while the entities are still resident and idle), so the next owner replays less.
    const flushed = await Promise.race([residents.flushSnapshots(match), sleep(DRAIN_MS).then(() => 0)]);
    while (residents.dropMatching(match, true, why) > 0 && performance.now() < drainUntil) await sleep(10);
    residents.dropMatching(match, false, why);
    if (flushed > 0) log().debug({ shards: shards.length, snapshots: flushed }, "snapshots written for the hand-off");
    await Promise.all(
      shards.map(async (shard) => {
        const epoch = ownership.epochOf(shard);
        if (epoch === 0) return; // lost meanwhile
        await redis.ksLeaseRelease(layout.leaseKey(shard), selfId, epoch).catch((err: unknown) => {
          // Not released: the lease runs out on its own (the target waits up to one lease).
          log().warn({ shard, err }, "could not release a shard's lease; it will expire");
        });
        ownership.lose(shard, "handed off");
        this.#deps.routing.set(shard, { owner: "", epoch, until: 0 });
        log().info({ shard, epoch, to: target[shard] ?? null }, "shard released");
      }),
    );
    this.#deps.metrics.handedOff(shards.length);
    this.#deps.released();
    this.#deps.changed();
  }

  /** Renews every lease held (one script per shard, pipelined), and tries to resume lapsed ones. */
  async renewAll(): Promise<void> {
    const { ownership, redis, layout, selfId, leaseMs, metrics } = this.#deps;
    await Promise.all([
      ...ownership.lapsed().map(([shard, epoch]) => this.#resume(shard, epoch)),
      ...ownership.held().map(async (shard) => {
        const epoch = ownership.epochOf(shard);
        const sentAt = performance.now();
        let until: number;
        try {
          until = await redis.ksLeaseRenew(layout.leaseKey(shard), selfId, epoch, leaseMs);
        } catch {
          metrics.renewal("error");
          return; // Redis unreachable: the safety deadline decides.
        }
        if (ownership.epochOf(shard) !== epoch) return; // lost or handed off meanwhile
        if (until > 0) {
          ownership.confirm(shard, epoch, sentAt);
          metrics.renewal("ok");
        } else {
          metrics.renewal("lost");
          ownership.lose(shard, "renewal refused");
        }
      }),
    ]);
  }

  /**
   * A shard dropped at the safety deadline whose lease is still ours in Redis (same epoch,
   * unexpired: nobody acquired it) is served again at once instead of after its expiry.
   */
  async #resume(shard: number, epoch: number): Promise<void> {
    const { ownership, redis, layout, selfId, leaseMs } = this.#deps;
    const sentAt = performance.now();
    const until = await redis.ksLeaseRenew(layout.leaseKey(shard), selfId, epoch, leaseMs).catch(() => undefined);
    if (until === undefined) return; // Redis still away: try again next time
    if (until === 0 || ownership.epochOf(shard) !== 0) {
      ownership.forgetLapsed(shard);
      return;
    }
    ownership.confirm(shard, epoch, sentAt);
    this.#deps.routing.set(shard, { owner: selfId, epoch, until });
    log().info({ shard, epoch }, "shard resumed");
    this.#deps.changed();
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export function notOwner(): KeystateError {
  return new KeystateError("NOT_OWNER", "this node no longer owns the entity's shard (it moved to another node); retry");
}
