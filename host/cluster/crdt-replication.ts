// Replicated (CRDT) entities across the cluster. Every node serves every replicated entity
// as one replica: a command applies here, the batch's state is saved as this node's own copy
// in Redis (one hash field per node, so writers never contend), and only then do its deltas
// go out on one pub/sub channel to every other node, which joins them into its resident
// replica. Joins are idempotent and commutative, so duplicates and reordering are harmless;
// a lost message is healed by anti-entropy: each save also bumps this node's counter of the
// entity's shard, a receiver notices a gap in the counters it hears (or, for the last
// message of a burst, a counter in Redis ahead of what it heard) and pulls that node's
// stored copies of the shard's resident entities. Majority / all writes wait for
// acknowledgements on the writer's own channel.
import { WriteConsistency } from "../abi/replicated-abi.js";
import { decodeCrdtDelta, encodeCrdtDelta, type CrdtDelta } from "../crdt/index.js";
import type { ReplicaAcks, ReplicaSync, ReplicatedChange } from "../entities/replica-sync.js";
import type { ReplicatedEntities } from "../entities/replicated-entities.js";
import type { RedisClient } from "../journal/redis-connection.js";
import type { RedisLayout } from "../journal/redis-keys.js";
import { shardOfId } from "../journal/shards.js";
import type { EntityId, ReplicaStore } from "../journal/types.js";
import { log } from "../log.js";
import { AckWaits } from "./ack-waits.js";
import type { ReplicaLiveness } from "./replica-liveness.js";
import { decodeAcks, decodeDeltaBatch, encodeAcks, encodeDeltaBatch, type WireEntityChange } from "./replication-wire.js";

export const DEFAULT_ANTI_ENTROPY_MS = 1000;
/** How long a majority / all write waits for the other nodes when its caller set no sooner deadline. */
export const DEFAULT_REPLICATED_WRITE_TIMEOUT_MS = 5000;
/**
 * Tests only: the fraction (0..1) of outgoing changes this node silently drops, to prove that
 * anti-entropy heals lost messages. The name says what it does to a production cluster.
 */
export const DROP_DELTAS_ENV = "KEYSTATE_UNSAFE_TEST_DROP_CRDT_DELTAS";

export interface ReplicationOptions {
  readonly antiEntropyMs?: number;
  readonly writeTimeoutMs?: number;
  readonly dropFraction?: number;
}

export interface ReplicationDeps {
  readonly selfId: string;
  readonly replicaId: string;
  readonly layout: RedisLayout;
  readonly publisher: RedisClient;
  /** A connection in subscriber mode (shared with the cluster's notices). */
  readonly subscriber: RedisClient;
  readonly replicas: ReplicaStore;
  readonly entities: ReplicatedEntities;
  readonly liveness: ReplicaLiveness;
  /** Live members of the cluster now, this node included. */
  readonly liveNodes: () => number;
  readonly leaseMs: number;
}

/** What the replication did since start (for /metrics and the tests' reports). */
export interface ReplicationStats {
  changesSent: number;
  bytesSent: number;
  changesDropped: number;
  changesReceived: number;
  gapsSeen: number;
  copiesPulled: number;
}

export class CrdtReplication implements ReplicaSync {
  readonly writer: string;
  readonly stats: ReplicationStats = { changesSent: 0, bytesSent: 0, changesDropped: 0, changesReceived: 0, gapsSeen: 0, copiesPulled: 0 };
  readonly #deps: ReplicationDeps;
  readonly #channel: string;
  readonly #antiEntropyMs: number;
  readonly #dropFraction: number;
  readonly #acks: AckWaits;
  #replicaId: string;
  #outgoing: WireEntityChange[] = [];
  #acksOut = new Map<string, number[]>();
  #flushQueued = false;
  /** Per shard this node tracks (it has loaded an entity of it): the highest save counter heard of, per writer. */
  readonly #heard = new Map<number, Map<string, number>>();
  /** Per shard: writers with a gap in the counters heard (changes certainly lost). */
  readonly #gaps = new Map<number, Set<string>>();
  /** Per shard: writers whose stored counter was ahead of what was heard at the last check (lost, unless heard by the next). */
  readonly #ahead = new Map<number, Map<string, number>>();
  #timer: NodeJS.Timeout | undefined;
  #checking = false;
  #lastRetireSweep = 0;

  constructor(deps: ReplicationDeps, options: ReplicationOptions = {}) {
    this.#deps = deps;
    this.writer = deps.selfId;
    this.#replicaId = deps.replicaId;
    this.#channel = deps.layout.clusterKey("crdt");
    this.#antiEntropyMs = options.antiEntropyMs ?? DEFAULT_ANTI_ENTROPY_MS;
    this.#dropFraction = options.dropFraction ?? 0;
    this.#acks = new AckWaits(deps.liveNodes, options.writeTimeoutMs ?? DEFAULT_REPLICATED_WRITE_TIMEOUT_MS);
    if (this.#dropFraction > 0) {
      log().warn({ [DROP_DELTAS_ENV]: this.#dropFraction }, "FAULT INJECTION ON: this node drops a fraction of its outgoing CRDT changes (tests only)");
    }
  }

  get replicaId(): string {
    return this.#replicaId;
  }

  #ackChannel(nodeId: string): string {
    return this.#deps.layout.clusterKey(`crdt-acks:${nodeId}`);
  }

  /** Subscribes, makes the entities replicas of this cluster, and starts anti-entropy. */
  async start(): Promise<void> {
    const { subscriber } = this.#deps;
    const ownAcks = this.#ackChannel(this.writer);
    subscriber.on("messageBuffer", (channel: Buffer, message: Buffer) => {
      const name = channel.toString();
      if (name === this.#channel) this.#received(message);
      else if (name === ownAcks) this.#acknowledged(message);
    });
    await subscriber.subscribe(this.#channel, ownAcks);
    this.#deps.entities.useSync(this);
    this.#timer = setInterval(() => void this.#check(), this.#antiEntropyMs);
    this.#timer.unref();
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#acks.close();
  }

  /** The heartbeat had lapsed: others may have retired this incarnation, so go on as a new one. */
  reborn(replicaId: string): void {
    log().warn({ from: this.#replicaId, to: replicaId }, "heartbeat had lapsed: replicated entities start over under a new replica id (their streams reconnect)");
    this.#replicaId = replicaId;
    this.#deps.entities.useSync(this);
  }

  isGone(replicaId: string): boolean {
    return this.#deps.liveness.isGone(replicaId);
  }

  loaded(shard: number, counters: ReadonlyMap<string, number>): void {
    // From this read on, every later save of the shard has a higher counter: that is what to listen for.
    if (!this.#heard.has(shard)) this.#heard.set(shard, new Map(counters));
  }

  publish(change: ReplicatedChange): ReplicaAcks {
    const ackId = change.consistency === WriteConsistency.LOCAL ? 0 : this.#acks.open();
    if (this.#dropFraction > 0 && Math.random() < this.#dropFraction) {
      this.stats.changesDropped++;
    } else {
      const deltas = change.deltas.map((delta) => encodeCrdtDelta(delta));
      this.#outgoing.push({ persistenceId: change.id.persistenceId, key: change.id.key, shard: change.shard, counter: change.counter, deltas, ackId });
      this.#queueFlush();
    }
    return { wait: (level, deadline) => this.#acks.wait(ackId, level, deadline) };
  }

  #queueFlush(): void {
    if (this.#flushQueued) return;
    this.#flushQueued = true;
    // Every change of this tick (many entities' batches) in one message.
    setImmediate(() => this.#flush());
  }

  #flush(): void {
    this.#flushQueued = false;
    const { publisher } = this.#deps;
    if (this.#outgoing.length > 0) {
      const changes = this.#outgoing;
      this.#outgoing = [];
      const message = encodeDeltaBatch({ origin: this.writer, changes });
      this.stats.changesSent += changes.length;
      this.stats.bytesSent += message.length;
      // Lost here means healed by anti-entropy: every change is already in this node's stored copy.
      publisher.publish(this.#channel, message).catch((err: unknown) => log().debug({ err }, "CRDT changes not published; anti-entropy will deliver them"));
    }
    for (const [origin, ackIds] of this.#acksOut) {
      publisher.publish(this.#ackChannel(origin), encodeAcks({ from: this.writer, ackIds })).catch((err: unknown) => log().debug({ err }, "acknowledgements not published"));
    }
    this.#acksOut.clear();
  }

  #received(message: Buffer): void {
    let batch;
    try {
      batch = decodeDeltaBatch(message);
    } catch (err) {
      log().warn({ err }, "a message on the CRDT replication channel is not a DeltaBatch; ignored");
      return;
    }
    if (batch.origin === this.writer || batch.origin === "") return;
    for (const change of batch.changes) {
      this.stats.changesReceived++;
      this.#heardOf(change.shard, batch.origin, change.counter);
      let deltas: CrdtDelta[];
      try {
        deltas = change.deltas.map((bytes) => decodeCrdtDelta(bytes));
      } catch (err) {
        log().warn({ err, from: batch.origin, entityKey: change.key }, "an undecodable CRDT delta from another node; anti-entropy will pull its copy");
        this.#markGap(change.shard, batch.origin);
        continue;
      }
      const id: EntityId = { persistenceId: change.persistenceId, key: change.key };
      const applied = this.#deps.entities.merge(id, { deltas });
      if (change.ackId !== 0) {
        const origin = batch.origin;
        applied.then(
          () => this.#queueAck(origin, change.ackId),
          (err: unknown) => log().warn({ err, from: origin, entityKey: change.key }, "a replicated change could not be applied here; not acknowledged"),
        );
      } else {
        applied.catch((err: unknown) => log().debug({ err, entityKey: change.key }, "a replicated change could not be applied here; anti-entropy retries"));
      }
    }
  }

  #queueAck(origin: string, ackId: number): void {
    const pending = this.#acksOut.get(origin);
    if (pending === undefined) this.#acksOut.set(origin, [ackId]);
    else pending.push(ackId);
    this.#queueFlush();
  }

  #acknowledged(message: Buffer): void {
    try {
      const acks = decodeAcks(message);
      for (const ackId of acks.ackIds) this.#acks.acknowledged(ackId, acks.from);
    } catch (err) {
      log().warn({ err }, "a message on this node's acknowledgement channel is not an Acks; ignored");
    }
  }

  /** A counter heard from `writer` for `shard`: a jump past the next one means changes were lost. */
  #heardOf(shard: number, writer: string, counter: number): void {
    const heard = this.#heard.get(shard);
    if (heard === undefined) return; // no entity of the shard was ever loaded here: nothing to keep up to date
    const previous = heard.get(writer) ?? 0;
    if (counter > previous + 1) {
      this.stats.gapsSeen++;
      this.#markGap(shard, writer);
    }
    if (counter > previous) heard.set(writer, counter);
  }

  #markGap(shard: number, writer: string): void {
    let gaps = this.#gaps.get(shard);
    if (gaps === undefined) this.#gaps.set(shard, (gaps = new Set()));
    gaps.add(writer);
  }

  /**
   * Anti-entropy: for each shard with resident entities, pull the stored copies of every
   * writer with a gap in what this node heard, or whose stored counter was already ahead of
   * what this node had heard at the previous check (a message merely in flight is not pulled).
   */
  async #check(): Promise<void> {
    if (this.#checking) return;
    this.#checking = true;
    try {
      const now = Date.now();
      if (now - this.#lastRetireSweep >= this.#deps.leaseMs) {
        this.#lastRetireSweep = now;
        this.#deps.entities.retireGoneVotes();
      }
      const byShard = new Map<number, EntityId[]>();
      const shardCount = this.#deps.layout.shardCount;
      for (const id of this.#deps.entities.residentIds()) {
        const shard = shardOfId(id, shardCount);
        const ids = byShard.get(shard);
        if (ids === undefined) byShard.set(shard, [id]);
        else ids.push(id);
      }
      for (const shard of [...this.#gaps.keys(), ...this.#ahead.keys()]) {
        if (!byShard.has(shard)) {
          this.#gaps.delete(shard);
          this.#ahead.delete(shard);
        }
      }
      await Promise.all([...byShard].map(([shard, ids]) => this.#checkShard(shard, ids)));
    } catch (err) {
      log().debug({ err }, "anti-entropy check failed; retrying at the next one");
    } finally {
      this.#checking = false;
    }
  }

  async #checkShard(shard: number, ids: EntityId[]): Promise<void> {
    const heard = this.#heard.get(shard);
    if (heard === undefined) return;
    const stored = await this.#deps.replicas.shardCounters(shard);
    const gaps = this.#gaps.get(shard);
    this.#gaps.delete(shard);
    const wasAhead = this.#ahead.get(shard);
    const ahead = new Map<string, number>();
    for (const [writer, counter] of stored) {
      if (writer === this.writer) continue;
      const known = heard.get(writer) ?? 0;
      if (gaps?.has(writer) || (wasAhead?.get(writer) ?? 0) > known) {
        await this.#pull(ids, writer);
        // The copies read after the counters hold at least every change counted so far.
        heard.set(writer, Math.max(known, counter));
      } else if (counter > known) {
        ahead.set(writer, counter);
      }
    }
    if (ahead.size > 0) this.#ahead.set(shard, ahead);
    else this.#ahead.delete(shard);
  }

  async #pull(ids: EntityId[], writer: string): Promise<void> {
    await Promise.all(
      ids.map(async (id) => {
        const copy = await this.#deps.replicas.copyOf(id, writer);
        if (copy === undefined) return;
        this.stats.copiesPulled++;
        await this.#deps.entities.merge(id, { copies: [copy] });
      }),
    );
  }
}
