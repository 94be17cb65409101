// Who is in the cluster: each node registers in the cluster's nodes hash and keeps a
// heartbeat key alive (PX = the heartbeat TTL). A node is alive iff its heartbeat key
// exists. A heartbeat holds a random token of the process that set it, so a second process
// started with the same node id is refused while the first one lives.
import { randomBytes } from "node:crypto";
import { KeystateError } from "../errors.js";
import type { RedisClient } from "../journal/redis-connection.js";
import type { RedisLayout } from "../journal/redis-keys.js";
import { log } from "../log.js";
import type { ControlCommands } from "./control-scripts.js";

export type ControlRedis = RedisClient & ControlCommands;

export interface MemberInfo {
  readonly id: string;
  /** Which process of that node id (a new one per start, and after a lapsed heartbeat): part of its CRDT replica id. */
  readonly incarnation: string;
  /** host:port of its gRPC port, as other nodes reach it. */
  readonly address: string;
  /** host:port of its peer link (forwarded unary calls); "" when it has none (forward over the gRPC port). */
  readonly peerAddress: string;
  readonly startedAt: number;
  readonly draining: boolean;
  readonly alive: boolean;
}

/** A node that has not heartbeaten for this long leaves the nodes hash (its entry only feeds /cluster). */
const FORGET_DEAD_AFTER_MS = 60_000;

export class Membership {
  readonly #redis: ControlRedis;
  readonly #layout: RedisLayout;
  readonly #token = randomBytes(12).toString("hex");
  readonly #startedAt = Date.now();
  #incarnation = newIncarnation();
  #draining = false;
  /** When this node first saw each other node dead (to forget it later). */
  readonly #deadSince = new Map<string, number>();

  constructor(
    redis: ControlRedis,
    layout: RedisLayout,
    readonly nodeId: string,
    readonly address: string,
    readonly ttlMs: number,
    readonly peerAddress = "",
  ) {
    this.#redis = redis;
    this.#layout = layout;
  }

  get draining(): boolean {
    return this.#draining;
  }

  /** This process's incarnation: its start time (ms, base 36), renewed when its heartbeat lapsed. */
  get incarnation(): string {
    return this.#incarnation;
  }

  /** A new incarnation (the heartbeat had lapsed, so the others may have retired the old one). */
  async renewIncarnation(): Promise<string> {
    this.#incarnation = newIncarnation(this.#incarnation);
    await this.#publishEntry();
    return this.#incarnation;
  }

  #heartbeatKey(id: string): string {
    return this.#layout.clusterKey(`hb:${id}`);
  }

  get #nodesKey(): string {
    return this.#layout.clusterKey("nodes");
  }

  /**
   * The cluster's shard count: stored by the first node, checked by every later one (a node
   * with another count would compute other shards for the same keys, so it refuses to join).
   */
  static async shardCountOf(redis: RedisClient, layout: RedisLayout, wanted: number): Promise<number> {
    const key = layout.clusterKey("meta");
    await redis.hsetnx(key, "shardCount", String(wanted));
    const stored = Number(await redis.hget(key, "shardCount"));
    if (stored !== wanted) {
      throw new KeystateError(
        "INVALID_REQUEST",
        `cluster ${layout.cluster} has ${stored} shards; this node was started with --shard-count ${wanted}. Start it with --shard-count ${stored} (the count is fixed when a cluster is created)`,
      );
    }
    return stored;
  }

  /**
   * Registers this node. When a heartbeat with this id exists (a process killed moments
   * ago, or a live duplicate), waits one TTL for it to lapse; a live duplicate keeps it
   * alive, and this node refuses to start.
   */
  async join(): Promise<void> {
    const deadline = Date.now() + this.ttlMs + 500;
    let warned = false;
    while ((await this.#redis.ksHeartbeat(this.#heartbeatKey(this.nodeId), this.#token, this.ttlMs)) === 0) {
      if (Date.now() > deadline) {
        throw new KeystateError(
          "INVALID_REQUEST",
          `node id ${this.nodeId} is already in use by a live node of cluster ${this.#layout.cluster}; give this node another --node-id`,
        );
      }
      if (!warned) log().warn({ nodeId: this.nodeId }, "a heartbeat with this node id exists; waiting for it to lapse (refusing to start if its node is alive)");
      warned = true;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    await this.#publishEntry();
  }

  /**
   * Refreshes the heartbeat: "ours", "lapsed" (it had expired: this node was paused or cut
   * off past its TTL and is set again) or "taken" (another process now holds this node id:
   * this one must stop).
   */
  async beat(): Promise<"ours" | "lapsed" | "taken"> {
    const verdict = await this.#redis.ksHeartbeat(this.#heartbeatKey(this.nodeId), this.#token, this.ttlMs);
    return verdict === 0 ? "taken" : verdict === 2 ? "lapsed" : "ours";
  }

  async setDraining(): Promise<void> {
    this.#draining = true;
    await this.#publishEntry();
  }

  async #publishEntry(): Promise<void> {
    await this.#redis.hset(
      this.#nodesKey,
      this.nodeId,
      JSON.stringify({ address: this.address, peerAddress: this.peerAddress || undefined, startedAt: this.#startedAt, incarnation: this.#incarnation, draining: this.#draining }),
    );
  }

  /** Leaves the cluster at once (graceful exit): heartbeat deleted, entry removed. */
  async leave(): Promise<void> {
    const key = this.#heartbeatKey(this.nodeId);
    if ((await this.#redis.get(key)) === this.#token) await this.#redis.del(key);
    await this.#redis.hdel(this.#nodesKey, this.nodeId);
  }

  /** Every registered node with its liveness (one HGETALL and one MGET, both in the cluster's slot). */
  async members(): Promise<MemberInfo[]> {
    const entries = await this.#redis.hgetall(this.#nodesKey);
    const ids = Object.keys(entries).sort();
    if (ids.length === 0) return [];
    const beats = await this.#redis.mget(...ids.map((id) => this.#heartbeatKey(id)));
    const now = Date.now();
    const members: MemberInfo[] = [];
    ids.forEach((id, i) => {
      const alive = beats[i] !== null;
      let entry: { address?: string; peerAddress?: string; startedAt?: number; incarnation?: string; draining?: boolean };
      try {
        entry = JSON.parse(entries[id]!) as typeof entry;
      } catch {
        entry = {};
      }
      if (alive) this.#deadSince.delete(id);
      else if (!this.#deadSince.has(id)) this.#deadSince.set(id, now);
      const peerAddress = typeof entry.peerAddress === "string" ? entry.peerAddress : "";
      members.push({ id, incarnation: entry.incarnation ?? "", address: entry.address ?? "", peerAddress, startedAt: entry.startedAt ?? 0, draining: entry.draining === true, alive });
    });
    await this.#forgetLongDead(now);
    return members;
  }

  async #forgetLongDead(now: number): Promise<void> {
    for (const [id, since] of this.#deadSince) {
      if (now - since < FORGET_DEAD_AFTER_MS) continue;
      this.#deadSince.delete(id);
      // Only if still dead: a node that came back re-registered itself.
      if ((await this.#redis.exists(this.#heartbeatKey(id))) === 0) await this.#redis.hdel(this.#nodesKey, id);
    }
  }
}

/** Milliseconds since the epoch in base 36 (readable back as the incarnation's birth time), always past `previous`. */
function newIncarnation(previous?: string): string {
  const after = previous === undefined ? 0 : Number.parseInt(previous, 36) + 1;
  return Math.max(Date.now(), after).toString(36);
}
