// One resident event-sourced or value entity as ONE compact object: its mailbox (one
// field; a queue only while commands wait), its state bytes (resident-bytes.ts), its
// sequence numbers (event-sourced only), and its place in the memory budget's
// least-recently-used list. What is common to many entities lives once per table, not per
// entity: the service version, the persistence id, the processor that runs a batch
// (value-entity.ts, event-sourced.ts). Every field costs 8 bytes per resident entity.
import type { EntityId } from "../journal/types.js";
import type { EntityCommand } from "./event-sourced.js";
import { MailboxCore, type Envelope } from "./mailbox.js";
import type { Charged } from "./memory-budget.js";
import { residentSize, stringBytes, type ResidentBytes } from "./resident-bytes.js";
import type { ServiceRuntime } from "./service-runtime.js";

export type EntityEnvelope = Envelope<EntityCommand, Uint8Array>;

/** Runs one batch for one record, settling every envelope; one per entity kind and node, not per entity. */
export interface EntityProcessor {
  /** A record for a newly active entity (not loaded yet). */
  create(table: EntityTable, key: string): EntityRecord;
  process(record: EntityRecord, batch: EntityEnvelope[]): Promise<void>;
}

/**
 * What the records of one service version share. Every version of a service (same kind and
 * persistence id) shares `records`, so an entity is one entry whichever version it runs.
 */
export class EntityTable {
  constructor(
    readonly records: Map<string, EntityRecord>,
    readonly persistenceId: string,
    readonly service: ServiceRuntime,
    readonly processor: EntityProcessor,
    /** Called after each batch (the manager re-charges the entity and evicts over budget). */
    readonly afterBatch: (record: EntityRecord) => void,
  ) {}
}

/** A resident value entity, and the part every resident entity has. */
export class EntityRecord extends MailboxCore<EntityCommand, Uint8Array> implements Charged {
  /** The state bytes (resident-bytes.ts); null until read from storage (or to be read again). */
  state: ResidentBytes | null = null;
  /** Milliseconds since the manager's epoch (kept a small integer, so it is stored unboxed). */
  lastUsed = 0;
  charged = 0;
  older: Charged | undefined = undefined;
  newer: Charged | undefined = undefined;

  constructor(
    /** Its service version (the one it was activated with) and what that shares. */
    readonly table: EntityTable,
    readonly key: string,
  ) {
    super();
  }

  get service(): ServiceRuntime {
    return this.table.service;
  }

  get loaded(): boolean {
    return this.state !== null;
  }

  /** Forgets the state: the next batch reads it from storage again. */
  unload(): void {
    this.state = null;
  }

  /** Its storage identity (built when storage needs it, not kept). */
  get id(): EntityId {
    return { persistenceId: this.table.persistenceId, key: this.key };
  }

  /** What this entity holds beyond ENTITY_OVERHEAD_BYTES besides its state: its key string. */
  get ownBytes(): number {
    return stringBytes(this.key);
  }

  /** State bytes kept between batches beyond the record itself (charged against the node's entity memory budget). */
  get residentBytes(): number {
    return this.state === null ? 0 : residentSize(this.state);
  }

  // The memory budget sees an entity's mailbox and state holder; here both are the record.
  get mailbox(): this {
    return this;
  }

  get entity(): this {
    return this;
  }

  protected runBatch(batch: EntityEnvelope[]): Promise<void> {
    return this.table.processor.process(this, batch);
  }

  protected override afterBatch(): void {
    this.table.afterBatch(this);
  }
}

/** A resident value entity: the record plus the stored version its state was read at. */
export class ValueRecord extends EntityRecord {
  version = 0;

  /** The key string and the version (8 B). */
  override get ownBytes(): number {
    return super.ownBytes + 8;
  }
}

/** A resident event-sourced entity: the record plus its sequence numbers. */
export class EventSourcedRecord extends EntityRecord {
  /** The last event's sequence number (meaningful once loaded). */
  seq = 0;
  /** The sequence number of the last snapshot. */
  snapshotSeq = 0;

  /** The key string and the two fields above (8 B each). */
  override get ownBytes(): number {
    return super.ownBytes + 16;
  }
}
