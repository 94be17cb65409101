// One node's membership of a Keystate cluster: joins (checking the shard count and that
// its node id is free), points the store's keys and fencing at the cluster, routes keyed
// calls through the placement, runs the rebalancer and the lease renewals, follows module
// changes made on other nodes, and on leave hands every shard off before it goes.
import { performance } from "node:perf_hooks";
import type { Registry } from "prom-client";
import type { ReplicatedEntities } from "../entities/replicated-entities.js";
import type { Router } from "../entities/router.js";
import { closeRedis, connectRedis, type RedisTarget } from "../journal/redis-connection.js";
import { RedisLayout } from "../journal/redis-keys.js";
import type { RedisStore } from "../journal/redis-store.js";
import { shardOf } from "../journal/shards.js";
import { log } from "../log.js";
import type { ModuleRegistry } from "../runtime/module-registry.js";
import { ClusterEvents } from "./cluster-events.js";
import { ClusterMetrics } from "./cluster-metrics.js";
import { ClusterPlacement } from "./cluster-placement.js";
import { CrdtReplication, DROP_DELTAS_ENV, type ReplicationStats } from "./crdt-replication.js";
import { CONTROL_SCRIPTS } from "./control-scripts.js";
import { Forwarder } from "./forwarder.js";
import { Membership, type ControlRedis } from "./membership.js";
import { ModuleSync } from "./module-sync.js";
import { Rebalancer, notOwner, type Residents } from "./rebalancer.js";
import { ReplicaLiveness, replicaIdOf } from "./replica-liveness.js";
import { registerReplicationMetrics } from "./replication-metrics.js";
import { RoutingTable } from "./routing-table.js";
import { ShardOwnership } from "./shard-ownership.js";

export const DEFAULT_LEASE_MS = 5000;
/** Modules are reconciled with the store this often (notices make it faster). */
const MODULE_RECONCILE_MS = 5000;
/** Longest a forwarded call for a not-yet-loaded module waits for this node to load it. */
const CATCH_UP_MS = 2000;
/** How often the safety deadline of every held shard is checked. */
const EXPIRY_CHECK_MS = 100;

export interface ClusterConfig {
  readonly target: RedisTarget;
  readonly name: string;
  readonly nodeId: string;
  /** host:port other nodes reach this node's gRPC port at. */
  readonly advertise: string;
  /** host:port other nodes reach this node's peer link at (peer-server.ts); undefined without one. */
  readonly peerAddress?: string;
  readonly leaseMs: number;
  readonly shardCount: number;
  /** How often replicated entities are checked for changes lost on the way (default 1000 ms). */
  readonly antiEntropyMs?: number;
}

export interface ClusterDeps {
  readonly store: RedisStore;
  readonly registry: ModuleRegistry;
  readonly router: Router;
  readonly residents: Residents;
  /** Replicated (CRDT) entities: every node serves them, as one replica of many. */
  readonly replicated: ReplicatedEntities;
  readonly metricsRegistry: Registry;
  /** Another process took this node id (this one was paused past its heartbeat): it must stop serving and exit. */
  readonly onIdTaken: () => void;
  /**
   * Runs once the store uses the cluster's keys and before this node joins: load the
   * modules here, so no shard is acquired (and no call routed here) before its services exist.
   */
  readonly beforeJoin?: () => Promise<void>;
}

export interface ClusterView {
  readonly cluster: string;
  readonly shardCount: number;
  readonly self: string;
  readonly nodes: Array<{ id: string; address: string; peerAddress: string; shards: number[]; alive: boolean; draining: boolean }>;
}

/** Lease timings derived from the lease length: control commands time out well inside it. */
export function leaseTimings(leaseMs: number): { opTimeoutMs: number; safetyMs: number; renewEveryMs: number } {
  const opTimeoutMs = Math.max(200, Math.min(1500, Math.floor(leaseMs / 5)));
  return { opTimeoutMs, safetyMs: Math.min(2 * opTimeoutMs, Math.floor(leaseMs / 2)), renewEveryMs: Math.max(50, Math.floor(leaseMs / 4)) };
}

export class ClusterNode {
  readonly #timers: NodeJS.Timeout[] = [];
  #left = false;

  private constructor(
    readonly config: ClusterConfig,
    readonly layout: RedisLayout,
    private readonly control: ControlRedis,
    private readonly subscriber: ControlRedis,
    private readonly membership: Membership,
    private readonly ownership: ShardOwnership,
    private readonly routing: RoutingTable,
    private readonly rebalancer: Rebalancer,
    private readonly events: ClusterEvents,
    private readonly modules: ModuleSync,
    private readonly forwarder: Forwarder,
    private readonly replication: CrdtReplication,
  ) {}

  static async start(config: ClusterConfig, deps: ClusterDeps): Promise<ClusterNode> {
    const timings = leaseTimings(config.leaseMs);
    const connect = () => connectRedis(config.target, { commandTimeoutMs: timings.opTimeoutMs, scripts: CONTROL_SCRIPTS, autoPipelining: true, maxReconnectDelayMs: 200 }) as Promise<ControlRedis>;
    const control = await connect();
    const subscriber = await connect().catch(async (err: unknown) => {
      await closeRedis(control);
      throw err;
    });
    try {
      const shardCount = await Membership.shardCountOf(control, new RedisLayout(config.name, config.shardCount), config.shardCount);
      const layout = new RedisLayout(config.name, shardCount);
      const matcher = (shards: ReadonlySet<number>) => (pid: string, key: string) => shards.has(shardOf(pid, key, shardCount));
      let placement: ClusterPlacement | undefined;
      const ownership = new ShardOwnership(shardCount, config.leaseMs, timings.safetyMs, (shard, epoch, reason) => {
        deps.residents.dropMatching(matcher(new Set([shard])), false, notOwner());
        if (reason !== "handed off") log().warn({ shard, epoch, reason }, "shard lost");
        placement?.changed();
      });
      const metrics = new ClusterMetrics(deps.metricsRegistry, () => ownership.count);
      deps.store.useCluster(layout, {
        epochFor: (shard) => ownership.epochFor(shard),
        refused: (shard, epoch) => {
          metrics.fenced();
          ownership.refused(shard, epoch);
        },
      });
      await deps.beforeJoin?.();
      const membership = new Membership(control, layout, config.nodeId, config.advertise, config.leaseMs, config.peerAddress);
      await membership.join();
      const routing = new RoutingTable(control, layout);
      const forwarder = new Forwarder(config.nodeId, metrics);
      const events = new ClusterEvents(control, subscriber, layout.clusterKey("events"));
      let rebalancer: Rebalancer | undefined;
      placement = new ClusterPlacement({ selfId: config.nodeId, selfAddress: config.advertise, ownership, routing, forwarder, members: () => rebalancer!.members, leaseMs: config.leaseMs });
      const wake = placement;
      rebalancer = new Rebalancer({
        selfId: config.nodeId,
        redis: control,
        layout,
        leaseMs: config.leaseMs,
        membership,
        ownership,
        routing,
        residents: deps.residents,
        metrics,
        shardMatcher: matcher,
        changed: () => wake.changed(),
        released: () => events.publish({ type: "released", from: config.nodeId }),
      });
      const modules = new ModuleSync(deps.registry, deps.store.modules);
      const members = rebalancer;
      const replication: CrdtReplication = new CrdtReplication(
        {
          selfId: config.nodeId,
          replicaId: replicaIdOf(config.nodeId, membership.incarnation),
          layout,
          publisher: control,
          subscriber,
          replicas: deps.store.replicas,
          entities: deps.replicated,
          liveness: new ReplicaLiveness({
            selfId: config.nodeId,
            replicaId: (): string => replication.replicaId,
            members: () => members.members,
            membersReadAt: () => members.membersReadAt,
            leaseMs: config.leaseMs,
          }),
          liveNodes: () => [...members.members.values()].filter((m) => m.alive).length,
          leaseMs: config.leaseMs,
        },
        { antiEntropyMs: config.antiEntropyMs, dropFraction: dropFractionFromEnv() },
      );
      registerReplicationMetrics(deps.metricsRegistry, () => replication.stats);
      const node = new ClusterNode(config, layout, control, subscriber, membership, ownership, routing, rebalancer, events, modules, forwarder, replication);
      // Bounded: a forwarded call waits at most this long for modules it has not loaded yet.
      const catchUp = () => Promise.race([modules.reconcile(), new Promise<void>((resolve) => setTimeout(resolve, CATCH_UP_MS).unref())]);
      // Replicated entities become replicas of the cluster before any call can reach one.
      await replication.start();
      deps.router.usePlacement(placement, catchUp);
      await node.#run(deps, timings.renewEveryMs);
      log().info({ nodeId: config.nodeId, cluster: config.name, shards: ownership.count, shardCount }, "joined the cluster");
      return node;
    } catch (err) {
      await Promise.all([closeRedis(control), closeRedis(subscriber)]);
      throw err;
    }
  }

  async #run(deps: ClusterDeps, everyMs: number): Promise<void> {
    const selfId = this.config.nodeId;
    const rebalancer = this.rebalancer;
    await this.events.listen((notice) => {
      if (notice.from === selfId) return;
      if (notice.type === "module") void this.modules.sync(notice.name);
      else void rebalancer.trigger();
    });
    deps.registry.onModuleChanged((name) => this.events.publish({ type: "module", from: selfId, name }));
    this.modules.start(MODULE_RECONCILE_MS);
    const every = (ms: number, task: () => void) => {
      const timer = setInterval(task, ms);
      timer.unref();
      this.#timers.push(timer);
    };
    every(everyMs, () => void this.#heartbeat(deps));
    every(everyMs, () => void rebalancer.trigger());
    every(EXPIRY_CHECK_MS, () => this.ownership.expireOverdue());
    await rebalancer.trigger();
    this.events.publish({ type: "joined", from: selfId });
  }

  async #heartbeat(deps: ClusterDeps): Promise<void> {
    if (this.#left) return;
    const renewals = this.rebalancer.renewAll();
    const verdict = await this.membership.beat().catch(() => "ours" as const); // Redis away: the safety deadline decides
    await renewals;
    if (verdict === "lapsed") await this.#reborn();
    if (verdict === "taken") {
      log().error({ nodeId: this.config.nodeId }, "another process now holds this node id; this node stops serving");
      this.#dropAll();
      deps.onIdTaken();
    }
  }

  /** The heartbeat had lapsed (paused or cut off past its TTL): the others may have retired this process's votes. */
  async #reborn(): Promise<void> {
    log().warn({ nodeId: this.config.nodeId }, "this node's heartbeat had lapsed; it continues as a new incarnation");
    try {
      this.replication.reborn(replicaIdOf(this.config.nodeId, await this.membership.renewIncarnation()));
    } catch (err) {
      log().warn({ err }, "could not record the new incarnation; retrying at the next heartbeat");
    }
  }

  /** What CRDT replication did since this node started. */
  get replicationStats(): Readonly<ReplicationStats> {
    return this.replication.stats;
  }

  #dropAll(): void {
    this.#left = true;
    for (const timer of this.#timers) clearInterval(timer);
    this.rebalancer.stop();
    for (const shard of this.ownership.held()) this.ownership.lose(shard, "node stopping");
  }

  get nodeId(): string {
    return this.config.nodeId;
  }

  /** True while this node serves `shard` (holds its lease within the safety deadline): what follows a shard, like a topic subscription, asks. */
  serves(shard: number): boolean {
    return this.ownership.serves(shard);
  }

  /** True once joined and while not leaving (readiness). */
  get ready(): boolean {
    return !this.#left && !this.membership.draining;
  }

  /** The cluster as this node sees it now (GET /cluster). */
  async view(): Promise<ClusterView> {
    const members = await this.rebalancer.refreshMembers();
    await this.routing.refresh();
    const byOwner = this.routing.shardsByOwner();
    byOwner.set(this.config.nodeId, this.ownership.held());
    const nodes = members.map((m) => ({ id: m.id, address: m.address, peerAddress: m.peerAddress, shards: byOwner.get(m.id) ?? [], alive: m.alive, draining: m.draining }));
    return { cluster: this.config.name, shardCount: this.layout.shardCount, self: this.config.nodeId, nodes };
  }

  /**
   * Graceful leave (SIGTERM): marked draining, so the assignment gives its shards to the
   * others; hands them off round by round (bounded by `timeoutMs`), releases whatever is
   * left (no other node alive), and leaves the membership.
   */
  async leave(timeoutMs = 30_000): Promise<void> {
    if (this.#left) return;
    const started = performance.now();
    log().info({ nodeId: this.config.nodeId, shards: this.ownership.count }, "node leaving");
    await this.membership.setDraining().catch(() => undefined);
    this.events.publish({ type: "leaving", from: this.config.nodeId });
    while (this.ownership.count > 0 && performance.now() - started < timeoutMs) {
      const before = this.ownership.count;
      await this.rebalancer.trigger();
      if (this.ownership.count === before) break; // nobody to hand the rest to
    }
    const rest = this.ownership.held();
    if (rest.length > 0) await this.rebalancer.handOff(rest, []);
    await this.membership.leave().catch(() => undefined);
    this.#dropAll();
    log().info({ nodeId: this.config.nodeId, ms: Math.round(performance.now() - started) }, "node left");
  }

  async stop(): Promise<void> {
    this.#dropAll();
    this.replication.stop();
    this.modules.stop();
    this.forwarder.close();
    await Promise.all([closeRedis(this.control), closeRedis(this.subscriber)]);
  }
}

/** The test-only fault injection switch (see DROP_DELTAS_ENV): a fraction in [0, 1], default 0. */
function dropFractionFromEnv(): number {
  const raw = process.env[DROP_DELTAS_ENV];
  if (raw === undefined || raw === "") return 0;
  const fraction = Number(raw);
  if (!Number.isFinite(fraction) || fraction < 0 || fraction > 1) throw new Error(`${DROP_DELTAS_ENV} must be a fraction between 0 and 1, got ${JSON.stringify(raw)}`);
  return fraction;
}
