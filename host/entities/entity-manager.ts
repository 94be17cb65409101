// Keeps the active entities of this node: one mailbox each, created on first command
// and dropped after the entity has been idle for its passivation timeout (its state is
// in the store, so the next command reloads it). Event-sourced and value entities are
// both kept here; they differ only in what processes a mailbox batch.
import { KeystateError } from "../errors.js";
import type { EntityId, Journal, ValueStore } from "../journal/types.js";
import { EntityKind } from "../runtime/module-sections.js";
import { EventSourcedEntity, type EntityCommand } from "./event-sourced.js";
import type { CallContext } from "./call-context.js";
import { Mailbox, type Envelope } from "./mailbox.js";
import type { EntityObserver } from "../metrics.js";
import { observedJournal } from "./observed-journal.js";
import { MemoryBudget, type Charged } from "./memory-budget.js";
import { ReplicatedEntities } from "./replicated-entities.js";
import type { StreamCommand, StreamHandle, StreamSink } from "./replicated-stream.js";
import type { ServiceRuntime } from "./service-runtime.js";
import { ValueEntity } from "./value-entity.js";

/** Used when a module's manifest sets no passivation timeout. */
export const DEFAULT_PASSIVATION_TIMEOUT_MS = 30_000;

/** Where entity state lives: the event journal, and the value store (for value entities). */
export interface EntityStorage {
  readonly journal: Journal;
  readonly values?: ValueStore;
}

/** What runs one mailbox batch for one entity, settling every envelope. */
interface BatchProcessor {
  process(batch: Envelope<EntityCommand, Uint8Array>[]): Promise<void>;
  /** State bytes it keeps between batches, charged against the memory budget. */
  readonly residentBytes?: number;
}

export interface EntityManagerOptions {
  /** Bytes resident entities may hold (state + a fixed overhead each) before the least recently used idle ones leave. Default 256 MiB. */
  readonly memoryBudgetBytes?: number;
}

interface ActiveEntity extends Charged {
  /** Its key in the active map. */
  readonly id: string;
  readonly entity: BatchProcessor;
  readonly mailbox: Mailbox<EntityCommand, Uint8Array>;
  /** The service runtime (module version) the entity was activated with. */
  readonly service: ServiceRuntime;
  lastUsed: number;
}

export class EntityManager {
  #journal: Journal;
  readonly #values: ValueStore | undefined;
  #replicatedEntities: ReplicatedEntities | undefined;
  readonly #active = new Map<string, ActiveEntity>();
  readonly #sweeper: NodeJS.Timeout;
  readonly #budget: MemoryBudget<ActiveEntity>;
  /** The shortest passivation timeout of any entity activated so far (lets the sweep stop early). */
  #minTimeoutMs = Infinity;
  #observer: EntityObserver | undefined;

  /** `storage`: a Store (journal and values), or a bare Journal, which serves event-sourced entities only. */
  constructor(storage: Journal | EntityStorage, sweepIntervalMs = 1_000, options: EntityManagerOptions = {}) {
    this.#budget = new MemoryBudget(options.memoryBudgetBytes);
    if ("journal" in storage) {
      this.#journal = storage.journal;
      this.#values = storage.values;
    } else {
      this.#journal = storage;
      this.#values = undefined;
    }
    this.#sweeper = setInterval(() => this.passivateIdle(Date.now()), sweepIntervalMs);
    this.#sweeper.unref();
  }

  /** Reports activations, passivations and journal appends (the node's metrics) from now on; call before serving. */
  observe(observer: EntityObserver): void {
    this.#observer = observer;
    this.#journal = observedJournal(this.#journal, observer);
  }

  get activeCount(): number {
    return this.#active.size + (this.#replicatedEntities?.activeCount ?? 0);
  }

  /** What resident entities are charged against the memory budget now. */
  get residentBytes(): number {
    return this.#budget.usedBytes;
  }

  /** Runs one command on the entity `key` of `service`, in that entity's mailbox. */
  command(service: ServiceRuntime, key: string, command: EntityCommand, context?: CallContext): Promise<Uint8Array> {
    if (service.kind === EntityKind.REPLICATED) return this.replicated.command(service, key, command);
    if (service.kind !== EntityKind.EVENT_SOURCED && service.kind !== EntityKind.VALUE) {
      // Actions have no entity (the Router runs them directly).
      throw new KeystateError("UNKNOWN_METHOD", `service ${service.name}: entity kind ${EntityKind[service.kind]} has no keyed entities here`);
    }
    // The kind is part of the identity: two services of one module may share a persistence id.
    const id = `${service.kind}\u0000${service.persistenceId}\u0000${key}`;
    let active = this.#active.get(id);
    if (active && active.service !== service && active.mailbox.idle) {
      // A new module version is live: let the next command rehydrate with it.
      this.#active.delete(id);
      this.#budget.release(active);
      this.#observer?.passivated(active.service.name);
      active = undefined;
    }
    if (!active) {
      const entity = this.#activate(service, { persistenceId: service.persistenceId, key });
      const mailbox = new Mailbox<EntityCommand, Uint8Array>((batch) => this.#run(started, batch));
      const started: ActiveEntity = { id, entity, mailbox, service, lastUsed: 0, charged: 0, older: undefined, newer: undefined };
      active = started;
      this.#active.set(id, active);
      this.#observer?.activated(service.name);
      this.#minTimeoutMs = Math.min(this.#minTimeoutMs, service.passivationTimeoutMs || DEFAULT_PASSIVATION_TIMEOUT_MS);
    }
    active.lastUsed = Date.now();
    this.#budget.touch(active);
    return active.mailbox.post(command, context);
  }

  #activate(service: ServiceRuntime, id: EntityId): BatchProcessor {
    if (service.kind === EntityKind.EVENT_SOURCED) return new EventSourcedEntity(id, service, this.#journal);
    if (!this.#values) {
      throw new KeystateError("STORAGE_UNAVAILABLE", `service ${service.name} is a value entity, but this node was started without a value store`);
    }
    return new ValueEntity(id, service, this.#values);
  }

  /** Opens a streamed command on a replicated entity. */
  openStream(service: ServiceRuntime, key: string, command: StreamCommand, sink: StreamSink): StreamHandle {
    return this.replicated.openStream(service, key, command, sink);
  }

  /** Replicated (CRDT) entities: kept by their own registry (replicated-entities.ts), state in the value store. */
  get replicated(): ReplicatedEntities {
    if (!this.#values) throw new KeystateError("STORAGE_UNAVAILABLE", "replicated entities need a value store, and this node was started without one");
    return (this.#replicatedEntities ??= new ReplicatedEntities(this.#values));
  }

  /** Runs a batch, then charges the entity for the state it now keeps and evicts over budget. */
  async #run(active: ActiveEntity, batch: Envelope<EntityCommand, Uint8Array>[]): Promise<void> {
    await active.entity.process(batch);
    if (this.#active.get(active.id) !== active) return;
    this.#budget.measure(active, active.id.length * 2);
    this.#budget.evict((evicted) => {
      this.#active.delete(evicted.id);
      this.#observer?.passivated(evicted.service.name);
    });
  }

  /** Drops entities idle past their timeout whose mailboxes are empty. */
  passivateIdle(now: number): number {
    let dropped = this.#replicatedEntities?.passivateIdle(now, DEFAULT_PASSIVATION_TIMEOUT_MS) ?? 0;
    for (const active of this.#budget.oldestFirst()) {
      // Least recently used first: once one is too recent for any timeout, so is every later one.
      if (now - active.lastUsed < this.#minTimeoutMs) break;
      const timeout = active.service.passivationTimeoutMs || DEFAULT_PASSIVATION_TIMEOUT_MS;
      if (active.mailbox.idle && now - active.lastUsed >= timeout) {
        this.#active.delete(active.id);
        this.#budget.release(active);
        this.#observer?.passivated(active.service.name);
        dropped++;
      }
    }
    return dropped;
  }

  close(): void {
    clearInterval(this.#sweeper);
    this.#replicatedEntities?.close();
    this.#active.clear();
  }
}
