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
}

interface ActiveEntity {
  readonly entity: BatchProcessor;
  readonly mailbox: Mailbox<EntityCommand, Uint8Array>;
  /** The service runtime (module version) the entity was activated with. */
  readonly service: ServiceRuntime;
  lastUsed: number;
}

export class EntityManager {
  readonly #journal: Journal;
  readonly #values: ValueStore | undefined;
  #replicatedEntities: ReplicatedEntities | undefined;
  readonly #active = new Map<string, ActiveEntity>();
  readonly #sweeper: NodeJS.Timeout;

  /** `storage`: a Store (journal and values), or a bare Journal, which serves event-sourced entities only. */
  constructor(storage: Journal | EntityStorage, sweepIntervalMs = 1_000) {
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

  get activeCount(): number {
    return this.#active.size + (this.#replicatedEntities?.activeCount ?? 0);
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
      active = undefined;
    }
    if (!active) {
      const entity = this.#activate(service, { persistenceId: service.persistenceId, key });
      active = { entity, mailbox: new Mailbox((batch) => entity.process(batch)), service, lastUsed: Date.now() };
      this.#active.set(id, active);
    }
    active.lastUsed = Date.now();
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

  /** Drops entities idle past their timeout whose mailboxes are empty. */
  passivateIdle(now: number): number {
    let dropped = this.#replicatedEntities?.passivateIdle(now, DEFAULT_PASSIVATION_TIMEOUT_MS) ?? 0;
    for (const [id, active] of this.#active) {
      const timeout = active.service.passivationTimeoutMs || DEFAULT_PASSIVATION_TIMEOUT_MS;
      if (active.mailbox.idle && now - active.lastUsed >= timeout) {
        this.#active.delete(id);
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
