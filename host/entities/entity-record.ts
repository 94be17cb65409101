// One resident event-sourced or value entity as ONE compact object: its state bytes
// (resident-bytes.ts), its sequence numbers (event-sourced only) or stored version (value
// only), when it was last used (the memory budget evicts by it: sampled-lru-budget.ts) and
// its place in its table's index (record-index.ts). What is common to many entities lives once per table, not per
// entity: the service version, the persistence id, the processor that runs a batch
// (value-entity.ts, event-sourced.ts). Its mailbox's queue is one field (mailbox.ts says why
// it is not a side table), and what the budget charges it is worked out from its state, not
// stored. Every field costs 8 bytes per resident entity: a value record is 72 B (its table
// is on its class's prototype, not in a field).
import type { EntityId } from "../journal/types.js";
import type { CallContext } from "./call-context.js";
import type { EntityCommand } from "./event-sourced.js";
import { MailboxCore, type Envelope } from "./mailbox.js";
import { ENTITY_OVERHEAD_BYTES } from "./memory-budget.js";
import type { ParkedEntities } from "./parked-entities.js";
import type { RecordIndex } from "./record-index.js";
import { residentSize, stringBytes, type ResidentBytes } from "./resident-bytes.js";
import { RELEASED, type Budgeted } from "./sampled-lru-budget.js";
import type { ServiceRuntime } from "./service-runtime.js";

export type EntityEnvelope = Envelope<EntityCommand, Uint8Array>;

/** A kind of record (value, event-sourced); each table makes a subclass that names the table (EntityTable). */
export type RecordClass = abstract new (key: string) => EntityRecord;

/** Runs one batch for one record, settling every envelope; one per entity kind and node, not per entity. */
export interface EntityProcessor {
  /** What a newly active entity's record is (not loaded yet). */
  readonly recordClass: RecordClass;
  process(record: EntityRecord, batch: EntityEnvelope[]): Promise<void>;
  /** A batch of one without its envelope (mailbox.ts runAlone); calls record.aloneEnded() before it settles. */
  runAlone?(record: EntityRecord, command: EntityCommand, context: CallContext | undefined): Promise<Uint8Array> | undefined;
}

/**
 * What the records of one service version share. Every version of a service (same kind and
 * persistence id) shares `records`, so an entity is one entry whichever version it runs.
 */
export class EntityTable {
  /** The record class of this table: its kind's, plus `table` (this) on its prototype. */
  readonly #recordClass: new (key: string) => EntityRecord;

  constructor(
    readonly records: RecordIndex<EntityRecord>,
    /** Its idle entities in compact form (shared like `records`; a key is in one or the other). */
    readonly parked: ParkedEntities<EntityTable>,
    readonly persistenceId: string,
    readonly service: ServiceRuntime,
    readonly processor: EntityProcessor,
    /** Called after each batch (the manager evicts over budget). */
    readonly afterBatch: (record: EntityRecord) => void,
    /** Called when a record's charge changed by `bytes` (its state did). */
    readonly recharged: (record: EntityRecord, bytes: number) => void,
  ) {
    const table = this;
    // A record reaches its table through its class, not a field: 8 B less per resident
    // entity (a counter's record is 72 B). The cost: code that reads records sees one
    // hidden class per table (per service version), so with more than four tables on a
    // node its property loads go megamorphic, a few ns each, against ~7 us per command.
    this.#recordClass = class extends processor.recordClass {
      override get table(): EntityTable {
        return table;
      }
    };
  }

  /** A record for a newly active entity `key` of this table (not loaded yet). */
  create(key: string): EntityRecord {
    return new this.#recordClass(key);
  }
}

/** A resident value entity, and the part every resident entity has. */
export abstract class EntityRecord extends MailboxCore<EntityCommand, Uint8Array> implements Budgeted {
  #state: ResidentBytes | null = null;
  /** Milliseconds since the manager's epoch (kept a small integer, so it is stored unboxed); RELEASED until admitted. */
  lastUsed = RELEASED;
  /** The next record in its bucket of the table's index (record-index.ts: no Map entry per entity). */
  nextInBucket: EntityRecord | undefined = undefined;

  constructor(readonly key: string) {
    super();
  }

  /** Its service version (the one it was activated with) and what that shares; from its table's record class. */
  abstract get table(): EntityTable;

  get service(): ServiceRuntime {
    return this.table.service;
  }

  /** The state bytes (resident-bytes.ts); null until read from storage (or to be read again). */
  get state(): ResidentBytes | null {
    return this.#state;
  }

  /** Reports the change of charge, so the budget needs no copy of it in each record. */
  set state(next: ResidentBytes | null) {
    const before = this.residentBytes;
    this.#state = next;
    const change = this.residentBytes - before;
    if (change !== 0) this.table.recharged(this, change);
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

  /** State bytes kept between batches beyond the record itself. */
  get residentBytes(): number {
    return this.#state === null ? 0 : residentSize(this.#state);
  }

  /** What the node's entity memory budget charges for it: derived, so always what it holds now. */
  get charge(): number {
    return ENTITY_OVERHEAD_BYTES + this.ownBytes + this.residentBytes;
  }

  protected override runAlone(command: EntityCommand, context: CallContext | undefined): Promise<Uint8Array> | undefined {
    return this.table.processor.runAlone?.(this, command, context);
  }

  protected runBatch(batch: EntityEnvelope[]): Promise<void> {
    return this.table.processor.process(this, batch);
  }

  protected override afterBatch(): void {
    this.table.afterBatch(this);
  }
}

/** A resident value entity: the record plus the stored version its state was read at. */
export abstract class ValueRecord extends EntityRecord {
  version = 0;

  /** The key string and the version (8 B). */
  override get ownBytes(): number {
    return super.ownBytes + 8;
  }
}

/** A resident event-sourced entity: the record plus its sequence numbers. */
export abstract class EventSourcedRecord extends EntityRecord {
  /** The last event's sequence number (meaningful once loaded). */
  seq = 0;
  /** The sequence number of the last snapshot. */
  snapshotSeq = 0;

  /** The key string and the two fields above (8 B each). */
  override get ownBytes(): number {
    return super.ownBytes + 16;
  }
}
