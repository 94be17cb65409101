// One resident event-sourced or value entity as ONE compact object: its mailbox (a
// running flag, and a queue only while commands wait), its state bytes (a one-byte
// string, resident-bytes.ts), its sequence numbers, and its place in the memory budget's
// least-recently-used list. What differs per kind lives once per table, not per entity:
// the processor that runs a batch (value-entity.ts, event-sourced.ts) and the persistence id.
import type { EntityId } from "../journal/types.js";
import type { EntityCommand } from "./event-sourced.js";
import { MailboxCore, type Envelope } from "./mailbox.js";
import type { Charged } from "./memory-budget.js";
import { residentSize } from "./resident-bytes.js";
import type { ServiceRuntime } from "./service-runtime.js";

export type EntityEnvelope = Envelope<EntityCommand, Uint8Array>;

/** Runs one batch for one record, settling every envelope; one per entity kind and node, not per entity. */
export interface EntityProcessor {
  process(record: EntityRecord, batch: EntityEnvelope[]): Promise<void>;
}

/** The resident entities of one (kind, persistence id): every module version of a service shares it. */
export class EntityTable {
  readonly records = new Map<string, EntityRecord>();

  constructor(
    readonly persistenceId: string,
    readonly processor: EntityProcessor,
    /** Called after each batch (the manager re-charges the entity and evicts over budget). */
    readonly afterBatch: (record: EntityRecord) => void,
  ) {}
}

/** `seq` of a record whose state has not been read from storage yet (or must be read again). */
const NOT_LOADED = -1;

export class EntityRecord extends MailboxCore<EntityCommand, Uint8Array> implements Charged {
  /** The state bytes as a one-byte string; undefined: none stored. Meaningful once loaded. */
  state: string | undefined = undefined;
  /** Event-sourced: the last event's sequence number (value entities keep 0); NOT_LOADED until read. */
  seq = NOT_LOADED;
  /** Event-sourced: the sequence number of the last snapshot. */
  snapshotSeq = 0;
  /** Milliseconds since the manager's epoch (a small integer, kept unboxed). */
  lastUsed = 0;
  charged = 0;
  older: Charged | undefined = undefined;
  newer: Charged | undefined = undefined;

  constructor(
    readonly table: EntityTable,
    readonly key: string,
    /** The service runtime (module version) the entity was activated with. */
    readonly service: ServiceRuntime,
  ) {
    super();
  }

  get loaded(): boolean {
    return this.seq !== NOT_LOADED;
  }

  /** Forgets the state: the next batch reads it from storage again. */
  unload(): void {
    this.seq = NOT_LOADED;
    this.state = undefined;
  }

  /** Its storage identity (built when storage needs it, not kept). */
  get id(): EntityId {
    return { persistenceId: this.table.persistenceId, key: this.key };
  }

  /** State bytes kept between batches (charged against the node's entity memory budget). */
  get residentBytes(): number {
    return residentSize(this.state);
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
