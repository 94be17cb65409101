// The cluster's Placement (host/entities/placement.ts): serves a shard here while this node
// holds its lease, otherwise names the owner from the routing table, and waits (bounded)
// while a shard has no reachable owner: during a hand-off, or after its owner died and
// before its lease expired and a survivor acquired it.
import { callerGone, type CallContext } from "../entities/call-context.js";
import { LOCAL, type ForwardOptions, type Placement, type RemoteRoute } from "../entities/placement.js";
import type { StreamHandle, StreamSink } from "../entities/replicated-stream.js";
import { KeystateError } from "../errors.js";
import { shardOf } from "../journal/shards.js";
import { MovedError, PeerUnreachableError, type Forwarder } from "./forwarder.js";
import type { MemberInfo } from "./membership.js";
import type { RoutingTable } from "./routing-table.js";
import type { ShardOwnership } from "./shard-ownership.js";

/** How often a waiting call re-reads its shard's lease. */
const REREAD_MS = 100;
/** A waiting call wakes at least this often (notices wake it sooner). */
const POLL_MS = 50;

export interface PlacementDeps {
  readonly selfId: string;
  readonly selfAddress: string;
  readonly ownership: ShardOwnership;
  readonly routing: RoutingTable;
  readonly forwarder: Forwarder;
  readonly members: () => ReadonlyMap<string, MemberInfo>;
  readonly leaseMs: number;
}

export class ClusterPlacement implements Placement {
  readonly #deps: PlacementDeps;
  readonly #shardCount: number;
  /** Peers that refused connections: not routed to until this time (their heartbeat may not have lapsed yet). */
  readonly #suspects = new Map<string, number>();
  #waiters = new Set<() => void>();

  constructor(deps: PlacementDeps) {
    this.#deps = deps;
    this.#shardCount = deps.ownership.shardCount;
  }

  shardOf(persistenceId: string, key: string): number {
    return shardOf(persistenceId, key, this.#shardCount);
  }

  serves(shard: number): boolean {
    return this.#deps.ownership.serves(shard);
  }

  servedShards(): number[] {
    return this.#deps.ownership.held().filter((shard) => this.#deps.ownership.serves(shard));
  }

  /** Wakes waiting calls: ownership or routes changed. */
  changed(): void {
    const waiters = this.#waiters;
    this.#waiters = new Set();
    for (const wake of waiters) wake();
  }

  /** The owner to forward to, if one is known and reachable. */
  #remote(shard: number): RemoteRoute | undefined {
    const { ownership, routing, selfId } = this.#deps;
    if (ownership.epochOf(shard) !== 0) return undefined; // ours (maybe leaving): wait for it to settle
    const owner = routing.ownerOf(shard);
    if (owner === "" || owner === selfId) return undefined;
    const member = this.#deps.members().get(owner);
    // A restarted node may find its own old address under its old id: never forward to itself.
    if (!member?.alive || member.address === "" || member.address === this.#deps.selfAddress) return undefined;
    const suspectUntil = this.#suspects.get(owner);
    if (suspectUntil !== undefined) {
      if (Date.now() < suspectUntil) return undefined;
      this.#suspects.delete(owner);
    }
    return member.peerAddress === "" ? { nodeId: owner, address: member.address } : { nodeId: owner, address: member.address, peerAddress: member.peerAddress };
  }

  routeNow(shard: number): typeof LOCAL | RemoteRoute | undefined {
    return this.serves(shard) ? LOCAL : this.#remote(shard);
  }

  async route(shard: number, context: CallContext | undefined): Promise<typeof LOCAL | RemoteRoute> {
    const giveUpAt = Math.min(context?.deadline ?? Infinity, Date.now() + 2 * this.#deps.leaseMs + 1000);
    let rereadAt = 0;
    for (;;) {
      if (this.serves(shard)) return LOCAL;
      const remote = this.#remote(shard);
      if (remote) return remote;
      const gone = callerGone(context);
      if (gone) throw gone;
      const now = Date.now();
      // The caller's own deadline answers DEADLINE_EXCEEDED; the wait's bound, NOT_OWNER (retryable).
      if (now >= giveUpAt) throw callerGone(context) ?? this.moved(shard);
      if (now >= rereadAt && this.#deps.ownership.epochOf(shard) === 0) {
        rereadAt = now + REREAD_MS;
        await this.#deps.routing.refreshShard(shard).catch(() => undefined);
        continue;
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.min(POLL_MS, Math.max(1, giveUpAt - now)));
        this.#waiters.add(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  lost(shard: number): void {
    this.#deps.ownership.lose(shard, "write fenced");
    void this.#deps.routing.refreshShard(shard).catch(() => undefined);
  }

  async stale(shard: number, route: RemoteRoute, unreachable: boolean): Promise<void> {
    // Until its heartbeat lapses a killed peer still looks alive: route around it meanwhile.
    if (unreachable) this.#suspects.set(route.nodeId, Date.now() + this.#deps.leaseMs);
    await this.#deps.routing.refreshShard(shard).catch(() => undefined);
  }

  moved(shard: number): Error {
    const owner = this.#deps.routing.ownerOf(shard);
    const known = owner !== "" && owner !== this.#deps.selfId ? ` (last known owner: ${owner})` : "";
    return new KeystateError("NOT_OWNER", `no node serving shard ${shard} of this entity could be reached${known}; retry`);
  }

  forwardUnary(route: RemoteRoute, path: string, payload: Uint8Array, options: ForwardOptions): Promise<Uint8Array> {
    return this.#deps.forwarder.unary(route, path, payload, options);
  }

  forwardStream(route: RemoteRoute, path: string, payload: Uint8Array, sink: StreamSink, options: ForwardOptions, onMoved: (err: Error) => void): StreamHandle {
    return this.#deps.forwarder.stream(route.address, path, payload, sink, options, onMoved);
  }

  redirectKind(err: unknown): "moved" | "unreachable" | undefined {
    if (err instanceof MovedError) return "moved";
    if (err instanceof PeerUnreachableError) return "unreachable";
    return undefined;
  }
}
