// Keeps the active replicated (CRDT) entities of this node, one mailbox each, and opens
// streamed calls on them. Its own registry (not the EntityManager's) because the rules
// differ: an entity holding open streams is never passivated, and its module version is
// kept until its streams close.
import type { CommandEffects } from "./effects.js";
import { KeystateError } from "../errors.js";
import { replicatedStorageId } from "../journal/shards.js";
import type { EntityId, ReplicaStore } from "../journal/types.js";
import type { CrdtDelta } from "../crdt/index.js";
import { log } from "../log.js";
import { Mailbox } from "./mailbox.js";
import { MemoryBudget, type Charged } from "./memory-budget.js";
import { ReplicatedEntity, type ReplicatedCommand, type Subscriber } from "./replicated-entity.js";
import type { CrdtDeltaObserver } from "./replicated-observer.js";
import type { ReplicaSync } from "./replica-sync.js";
import type { StreamCommand, StreamHandle, StreamSink } from "./replicated-stream.js";
import type { ServiceRuntime } from "./service-runtime.js";

/** Retries of a stream's cancellation callback while storage is unavailable (backoff 0.25 s doubling: ~1 min). */
const CANCEL_RETRIES = 8;

/** The replica id of a single node (in a cluster each process has its own, from ReplicaSync). */
export const LOCAL_REPLICA_ID = "local";

/** A resident replicated entity: its mailbox, and its place in the memory budget. */
class Active implements Charged {
  charged = 0;
  older: Charged | undefined;
  newer: Charged | undefined;
  /** Commands and stream callbacks run here, one batch at a time. */
  readonly queue: Mailbox<ReplicatedCommand, Uint8Array | undefined>;
  /** For the budget: evictable only with no command running or queued and no open stream. */
  readonly mailbox: { readonly idle: boolean };

  constructor(
    readonly id: string,
    readonly entity: ReplicatedEntity,
    public lastUsed: number,
    afterBatch: (active: Active) => void,
  ) {
    const queue = (this.queue = new Mailbox(async (batch) => {
      await entity.process(batch);
      afterBatch(this);
    }));
    this.mailbox = {
      get idle() {
        return queue.idle && entity.streams.size === 0;
      },
    };
  }
}

/** Where a resident entity is found: its storage id. */
function activeIdOf(id: EntityId): string {
  return `${id.persistenceId}\u0000${id.key}`;
}

export class ReplicatedEntities {
  readonly #replicas: ReplicaStore;
  readonly #replicaId: string;
  /** Set in a cluster: every node serves every replicated entity, as one replica of many. */
  #sync: ReplicaSync | undefined;
  readonly #active = new Map<string, Active>();
  /** Replicated entities have a budget of their own (the entity manager's walks its records only). */
  readonly #budget: MemoryBudget<Active>;
  readonly #afterBatch = (active: Active) => this.#charge(active);
  /** Vote entities this process has loaded at least once (their own vote is reset on the first load only). */
  readonly #loaded = new Set<string>();
  readonly #observers: CrdtDeltaObserver[] = [];

  constructor(replicas: ReplicaStore, replicaId = LOCAL_REPLICA_ID, memoryBudgetBytes?: number) {
    this.#replicas = replicas;
    this.#replicaId = replicaId;
    this.#budget = new MemoryBudget(memoryBudgetBytes);
  }

  /** What resident replicated entities are charged against their memory budget now. */
  get residentBytes(): number {
    return this.#budget.usedBytes;
  }

  get activeCount(): number {
    return this.#active.size;
  }

  /** Subscribes to every local CRDT change (the deltas the cluster will replicate). */
  onDelta(observer: CrdtDeltaObserver): void {
    this.#observers.push(observer);
  }

  /**
   * From now on this node is one replica of many (the cluster): entities load every node's
   * copy, ship their changes through `sync`, and are never dropped for a shard move.
   * Entities resident from before are dropped (they were loaded as the only replica).
   */
  useSync(sync: ReplicaSync): void {
    this.#sync = sync;
    this.#dropAll(new KeystateError("STORAGE_UNAVAILABLE", "this node joined the cluster; reconnect"));
  }

  command(service: ServiceRuntime, key: string, command: { method: string; payload: Uint8Array; effects?: CommandEffects }, deadline?: number): Promise<Uint8Array> {
    return this.#get(service, key)
      .queue.post({ kind: "command", service, method: command.method, payload: command.payload, effects: command.effects, deadline })
      .then((reply) => reply ?? new Uint8Array(0));
  }

  /** Whether the entity `key` of `service` is resident here now (read-only: the inspector asks). */
  isResident(service: ServiceRuntime, key: string): boolean {
    return this.#active.has(activeIdOf({ persistenceId: replicatedStorageId(service.persistenceId), key }));
  }

  /** The storage ids of the resident entities (what anti-entropy checks). */
  residentIds(): EntityId[] {
    return [...this.#active.values()].map((active) => active.entity.id);
  }

  /**
   * Joins another node's deltas or stored copies into the entity `id` (storage id) if it is
   * resident here; resolves once applied (at once when not resident: its next load reads
   * every node's copy, which already holds the change).
   */
  merge(id: EntityId, change: { deltas?: readonly CrdtDelta[]; copies?: readonly Uint8Array[] }): Promise<void> {
    const active = this.#active.get(activeIdOf(id));
    if (active === undefined) return Promise.resolve();
    return active.queue.post({ kind: "merge", ...change }).then(() => undefined);
  }

  /** Asks every resident Vote (and ORMap, which may hold Votes) entity to retire the votes of replicas that are gone. */
  retireGoneVotes(): void {
    for (const active of this.#active.values()) {
      const type = active.entity.service.crdtType;
      if (type !== "Vote" && type !== "ORMap") continue;
      active.queue.post({ kind: "retire" }).catch((err: unknown) => log().warn({ service: active.entity.service.name, entityKey: active.entity.id.key, err }, "retiring gone votes failed; the next sweep retries"));
    }
  }

  openStream(service: ServiceRuntime, key: string, command: StreamCommand, sink: StreamSink): StreamHandle {
    const active = this.#get(service, key);
    const stream: Subscriber = { service, method: command.method, payload: command.payload, sink, state: "queued" };
    const post = (kind: "stream-start" | "stream-cancel", attempt = 0): Promise<void> =>
      active.queue.post({ kind, stream }).then(
        () => undefined,
        (err: unknown) => {
          // An entity that left this node (its shard moved) writes nothing more: the next owner resets this node's vote.
          const resident = this.#active.get(active.id) === active;
          if (kind === "stream-cancel" && resident && err instanceof KeystateError && err.retryable && attempt < CANCEL_RETRIES) {
            // Storage was unavailable: the cancellation's changes (e.g. a vote back to false) must still land.
            log().warn({ service: service.name, entityKey: key, err, attempt }, "a stream's cancellation could not be written; retrying");
            setTimeout(() => void post(kind, attempt + 1), 250 * 2 ** attempt).unref();
            return;
          }
          // The entity settles a start itself; this catches a bug, which must not leave the stream hanging.
          log().error({ service: service.name, entityKey: key, err }, `replicated entity ${kind} failed`);
          if (kind === "stream-start" && stream.state !== "closed") {
            stream.state = "closed";
            sink.fail(err);
          }
        },
      );
    void post("stream-start");
    return {
      cancel: () => {
        active.lastUsed = Date.now();
        if (stream.state === "closed") return;
        const started = stream.state === "started";
        stream.state = "closed";
        active.entity.streams.delete(stream);
        // Only a stream whose start ran has anything to undo; the callback runs in the mailbox like any command.
        if (started) void post("stream-cancel");
      },
    };
  }

  #get(service: ServiceRuntime, key: string): Active {
    // Stored under a prefixed persistence id, so a value entity sharing the persistence id never reads CRDT bytes as its value.
    const storageId = { persistenceId: replicatedStorageId(service.persistenceId), key };
    const id = activeIdOf(storageId);
    let active = this.#active.get(id);
    if (active && active.entity.service !== service && active.mailbox.idle) {
      // A new module version is live: let the next command load the entity with it.
      this.#drop(active);
      active = undefined;
    }
    if (!active) {
      const entity = new ReplicatedEntity(storageId, service, this.#replicas, {
        replicaId: this.#replicaId,
        firstLoad: !this.#loaded.has(id),
        observer: (event) => this.#publish(event),
        sync: this.#sync,
      });
      if (service.crdtType === "Vote") this.#loaded.add(id);
      active = new Active(id, entity, Date.now(), this.#afterBatch);
      this.#active.set(id, active);
    }
    active.lastUsed = Date.now();
    this.#budget.touch(active);
    return active;
  }

  /** After a batch: charges the entity for the CRDT it now holds, and evicts over budget. */
  #charge(active: Active): void {
    if (this.#active.get(active.id) !== active) return;
    this.#budget.measure(active, Buffer.byteLength(active.id));
    // Evicted entities' CRDTs are in the store; the next command reloads them.
    this.#budget.evict((evicted) => this.#active.delete(evicted.id));
  }

  #drop(active: Active): void {
    this.#budget.release(active);
    this.#active.delete(active.id);
  }

  #publish(event: Parameters<CrdtDeltaObserver>[0]): void {
    for (const observer of this.#observers) {
      try {
        observer(event);
      } catch (err) {
        log().error({ service: event.service, entityKey: event.id.key, err }, "a CRDT delta observer failed");
      }
    }
  }

  /**
   * Takes out of memory the entities whose storage id `match`es (a shard this node no longer
   * owns); their open streams fail with `why`, so clients reconnect to the new owner. With
   * `onlyIdle`, entities with commands running or queued stay. Returns how many matching stay.
   */
  dropMatching(match: (persistenceId: string, key: string) => boolean, onlyIdle: boolean, why: Error): number {
    // One replica of many: a shard move changes nothing for replicated entities.
    if (this.#sync !== undefined) return 0;
    let left = 0;
    for (const active of [...this.#active.values()]) {
      const id = active.entity.id;
      if (!match(id.persistenceId, id.key)) continue;
      if (onlyIdle && !active.queue.idle) {
        left++;
        continue;
      }
      for (const stream of active.entity.streams) {
        // Closed: the client's later cancel has nothing to undo here (the next owner resets this node's vote on load).
        stream.state = "closed";
        stream.sink.fail(why);
      }
      active.entity.streams.clear();
      // Its streams are gone with the shard: should the shard come back, the first load resets this node's vote again.
      this.#loaded.delete(active.id);
      this.#drop(active);
    }
    return left;
  }

  /** Drops entities idle past their timeout that hold no streams. */
  passivateIdle(now: number, defaultTimeoutMs: number): number {
    let dropped = 0;
    for (const active of this.#active.values()) {
      const timeout = active.entity.service.passivationTimeoutMs || defaultTimeoutMs;
      if (active.mailbox.idle && now - active.lastUsed >= timeout) {
        this.#drop(active);
        dropped++;
      }
    }
    return dropped;
  }

  close(): void {
    this.#dropAll(new KeystateError("STORAGE_UNAVAILABLE", "the node is shutting down"));
  }

  /** Takes every entity out of memory; their open streams fail with `why` (clients reconnect). */
  #dropAll(why: KeystateError): void {
    for (const active of this.#active.values()) {
      for (const stream of active.entity.streams) {
        stream.state = "closed";
        stream.sink.fail(why);
      }
      active.entity.streams.clear();
    }
    for (const active of this.#active.values()) this.#budget.release(active);
    this.#active.clear();
  }
}
