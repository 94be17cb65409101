// Keeps the active entities of this node: one mailbox each, created on first command
// and dropped after the entity has been idle for its passivation timeout (its state is
// in the store, so the next command reloads it). Event-sourced and value entities are
// both kept here; they differ only in what processes a mailbox batch.
import { KeystateError } from "../errors.js";
import { SingleCopyReplicas } from "../journal/single-copy-replicas.js";
import type { IdempotencyStore, Journal, ReplicaStore, ValueStore } from "../journal/types.js";
import { EntityKind } from "../runtime/module-sections.js";
import { EventSourcedEntity, type EntityCommand } from "./event-sourced.js";
import type { CallContext } from "./call-context.js";
import { EntityRecord, EntityTable, EventSourcedRecord, ValueRecord, type EntityProcessor } from "./entity-record.js";
import type { EntityObserver } from "../metrics.js";
import { PARKED_OVERHEAD_BYTES } from "./memory-budget.js";
import { observedJournal } from "./observed-journal.js";
import { NO_ROW, ParkedEntities } from "./parked-entities.js";
import { RecordIndex } from "./record-index.js";
import { RELEASED, RingCursor, SAMPLE, SampledLruBudget } from "./sampled-lru-budget.js";
import { LOCAL_REPLICA_ID, ReplicatedEntities } from "./replicated-entities.js";
import type { StreamCommand, StreamHandle, StreamSink } from "./replicated-stream.js";
import type { ServiceRuntime } from "./service-runtime.js";
import { ValueEntity } from "./value-entity.js";

/** Used when a module's manifest sets no passivation timeout. */
export const DEFAULT_PASSIVATION_TIMEOUT_MS = 30_000;

/** Where entity state lives: the event journal, and the value store (for value entities). */
export interface EntityStorage {
  readonly journal: Journal;
  readonly values?: ValueStore;
  /** Replicated entities' copies (default: one copy per entity in `values`). */
  readonly replicas?: ReplicaStore;
  /** Replies stored under idempotency keys (without it, keys are not honoured). */
  readonly idempotency?: IdempotencyStore;
}

/** lastUsed stays below this many milliseconds since the manager's epoch (a V8 small integer). */
const CLOCK_LIMIT_MS = 2 ** 30 - 1;

/**
 * The idle sweep runs every second (by default) and looks at a slice of the resident records
 * each time, so that it goes round all of them in SWEEP_ROUND_MS, and at SWEEP_SLICE_MIN at
 * least (then small sets are looked at whole on every sweep). A look costs ~90 ns a record (a
 * cache miss each; measured with a million counters): a million cost ~3 ms a second, not one
 * 90 ms pause. An entity idle past its timeout leaves within one round after it.
 */
const SWEEP_ROUND_MS = 30_000;
const SWEEP_SLICE_MIN = 16_384;

/** Used unless the options say otherwise: an entity idle this long is parked (kept resident in compact form). */
export const DEFAULT_PARK_AFTER_MS = 5_000;

export interface EntityManagerOptions {
  /** Bytes resident entities may hold (state + a fixed overhead each) before the least recently used idle ones leave. Default 256 MiB. */
  readonly memoryBudgetBytes?: number;
  /**
   * A resident value or event-sourced entity idle this long, whose state is at most 64 KiB, is parked by the
   * idle sweep: it stays resident as one row of compact columns (parked-entities.ts) instead
   * of a record. Default DEFAULT_PARK_AFTER_MS; 0 parks every idle one the sweep sees.
   */
  readonly parkAfterMs?: number;
}

/** One (kind, persistence id): its resident records, and its parked entities. */
interface Resident {
  readonly records: RecordIndex<EntityRecord>;
  readonly parked: ParkedEntities<EntityTable>;
  readonly persistenceId: string;
}

/** How long an entity of `service` stays idle before it leaves memory: its manifest's timeout, else the default. */
function passivationTimeoutOf(service: ServiceRuntime): number {
  return service.passivationTimeoutMs || DEFAULT_PASSIVATION_TIMEOUT_MS;
}

/** Where the resident entities of `service` are kept: its kind and persistence id. */
function tableName(service: ServiceRuntime): string {
  return `${service.kind}\u0000${service.persistenceId}`;
}

export class EntityManager {
  readonly #values: ValueStore | undefined;
  readonly #replicas: ReplicaStore | undefined;
  #idempotency: IdempotencyStore | undefined;
  #replicatedEntities: ReplicatedEntities | undefined;
  /** The resident entities of each (kind, persistence id), by key: every version of a service shares one. */
  readonly #records = new Map<string, Resident>();
  /** The same, in the order they were made (eviction of parked entities goes round them). */
  readonly #residents: Resident[] = [];
  /** Each service runtime's table, so a command finds its records without building a string. */
  readonly #tableOf = new WeakMap<ServiceRuntime, EntityTable>();
  #lastTable: EntityTable | undefined;
  #activeCount = 0;
  readonly #eventSourced: EventSourcedEntity;
  readonly #valueEntities: ValueEntity | undefined;
  readonly #sweeper: NodeJS.Timeout;
  readonly #budget: SampledLruBudget<EntityRecord>;
  /** Where the idle sweep goes on from. */
  readonly #sweepCursor = new RingCursor();
  /** lastUsed counts milliseconds from here, so it stays a small integer in each record. */
  #epoch = Date.now();
  /** The shortest passivation timeout of any entity activated so far (the sweep passes over records used since without looking further). */
  #minTimeoutMs = Infinity;
  #observer: EntityObserver | undefined;
  readonly #parkAfterMs: number;
  /** Where over-budget eviction of parked entities goes on from (a Resident's position in #records). */
  #parkedHand = 0;
  readonly #afterBatch = (record: EntityRecord) => this.#evictOverBudget(record);
  readonly #recharged = (record: EntityRecord, bytes: number) => this.#budget.recharge(record, bytes);

  /** `storage`: a Store (journal and values), or a bare Journal, which serves event-sourced entities only. */
  constructor(storage: Journal | EntityStorage, sweepIntervalMs = 1_000, options: EntityManagerOptions = {}) {
    this.#budget = new SampledLruBudget(options.memoryBudgetBytes);
    this.#parkAfterMs = options.parkAfterMs ?? DEFAULT_PARK_AFTER_MS;
    if ("journal" in storage) {
      this.#eventSourced = new EventSourcedEntity(storage.journal, storage.idempotency);
      this.#idempotency = storage.idempotency;
      this.#values = storage.values;
      this.#replicas = storage.replicas ?? (storage.values && new SingleCopyReplicas(storage.values));
    } else {
      this.#eventSourced = new EventSourcedEntity(storage);
      this.#values = undefined;
      this.#replicas = undefined;
    }
    this.#valueEntities = this.#values && new ValueEntity(this.#values, this.#idempotency);
    const slicesPerRound = Math.max(1, SWEEP_ROUND_MS / sweepIntervalMs);
    const slice = (count: number) => Math.max(SWEEP_SLICE_MIN, Math.ceil(count / slicesPerRound));
    this.#sweeper = setInterval(() => this.#passivateIdle(Date.now(), slice(this.#budget.size), slice(this.parkedCount)), sweepIntervalMs);
    this.#sweeper.unref();
  }

  /** Reports activations, passivations and journal appends (the node's metrics) from now on; call before serving. */
  observe(observer: EntityObserver): void {
    this.#observer = observer;
    this.#eventSourced.journal = observedJournal(this.#eventSourced.journal, observer);
  }

  get activeCount(): number {
    return this.#activeCount + (this.#replicatedEntities?.activeCount ?? 0);
  }

  /** What resident value and event-sourced entities are charged against the memory budget now (replicated ones: `replicated.residentBytes`). */
  get residentBytes(): number {
    return this.#budget.usedBytes;
  }

  /** Runs one command on the entity `key` of `service`, in that entity's mailbox. */
  command(service: ServiceRuntime, key: string, command: EntityCommand, context?: CallContext): Promise<Uint8Array> {
    if (service.kind === EntityKind.REPLICATED) return this.replicated.command(service, key, command, context?.deadline);
    if (service.kind !== EntityKind.EVENT_SOURCED && service.kind !== EntityKind.VALUE) {
      // Actions have no entity (the Router runs them directly).
      throw new KeystateError("UNKNOWN_METHOD", `service ${service.name}: entity kind ${EntityKind[service.kind]} has no keyed entities here`);
    }
    // Most commands go to the service the last one went to.
    const table = service === this.#lastTable?.service ? this.#lastTable : (this.#tableOf.get(service) ?? this.#tableFor(service));
    this.#lastTable = table;
    let record = table.records.get(key);
    if (record !== undefined && record.table !== table && record.idle) {
      // A new module version is live: let the next command rehydrate with it.
      this.#drop(record);
      record = undefined;
    }
    const now = this.#clock(Date.now());
    if (record === undefined && table.parked.size > 0) record = this.#unpark(table, key, now);
    if (record === undefined) {
      record = table.create(key);
      table.records.add(record);
      this.#activeCount++;
      this.#observer?.activated(service.name);
      this.#minTimeoutMs = Math.min(this.#minTimeoutMs, passivationTimeoutOf(service));
      // Charged from now until it leaves its table (its state's changes as they happen).
      this.#budget.admit(record, now);
    } else {
      record.lastUsed = now;
    }
    return record.post(command, context);
  }

  /** Whether the entity `key` of `service` is in this node's memory now (read-only: the inspector asks; nothing is loaded). */
  isResident(service: ServiceRuntime, key: string): boolean {
    if (service.kind === EntityKind.REPLICATED) return this.#replicatedEntities?.isResident(service, key) ?? false;
    const resident = this.#records.get(tableName(service));
    return resident !== undefined && (resident.records.has(key) || resident.parked.find(key) !== NO_ROW);
  }

  /**
   * The parked entity `key` back as a record of `table`, charged as one and used `now`;
   * undefined when it is not parked, or was parked by another version of the service (then
   * it leaves: the next command reloads it with the version now live, as an idle record would).
   */
  #unpark(table: EntityTable, key: string, now: number): EntityRecord | undefined {
    const parked = table.parked;
    const row = parked.find(key);
    if (row === NO_ROW) return undefined;
    const parkedBy = parked.tableOf(row);
    if (parkedBy !== table) {
      this.#dropParked(parked, row);
      return undefined;
    }
    return this.#restore(parked, row, now, key);
  }

  /** Makes parked `row` a record of the table that parked it again (resident, charged as a record, used at `lastUsed`). */
  #restore(parked: ParkedEntities<EntityTable>, row: number, lastUsed: number, key = parked.keyOf(row)): EntityRecord {
    const table = parked.tableOf(row);
    const record = table.create(key);
    // Not charged yet (admitted below), so setting the state charges nothing twice.
    record.state = parked.stateOf(row);
    if (record instanceof ValueRecord) record.version = parked.seqOf(row);
    else if (record instanceof EventSourcedRecord) {
      record.seq = parked.seqOf(row);
      record.snapshotSeq = parked.snapshotSeqOf(row);
    }
    this.#budget.uncharge(parkedCharge(parked.heldBytesOf(row)));
    parked.remove(row);
    table.records.add(record);
    this.#budget.admit(record, lastUsed);
    return record;
  }

  /** Parks an idle, loaded value or event-sourced entity whose state fits (parked-entities.ts); false when it stays a record. */
  #park(record: EntityRecord): boolean {
    const state = record.state;
    if (state === null) return false;
    // A value entity's stored version, or an event-sourced one's sequence numbers.
    const [seq, snapshotSeq] = record instanceof ValueRecord ? [record.version, 0] : record instanceof EventSourcedRecord ? [record.seq, record.snapshotSeq] : [-1, -1];
    if (!ParkedEntities.fits(state, seq, snapshotSeq)) return false;
    const table = record.table;
    const row = table.parked.add(record.key, state, seq, record.lastUsed, table, snapshotSeq);
    if (row === NO_ROW) return false;
    this.#budget.release(record);
    this.#budget.charge(parkedCharge(table.parked.heldBytesOf(row)));
    table.records.delete(record.key);
    return true;
  }

  /** Takes a parked entity out of memory (its state is in the store). */
  #dropParked(parked: ParkedEntities<EntityTable>, row: number): void {
    const table = parked.tableOf(row);
    this.#budget.uncharge(parkedCharge(parked.heldBytesOf(row)));
    parked.remove(row);
    this.#activeCount--;
    this.#observer?.passivated(table.service.name);
  }

  /** The table of `service`'s kind and persistence id (the kind is part of the identity: two services of one module may share a persistence id). */
  #tableFor(service: ServiceRuntime): EntityTable {
    const name = tableName(service);
    let resident = this.#records.get(name);
    if (resident === undefined) {
      resident = { records: new RecordIndex(), parked: new ParkedEntities(service.kind === EntityKind.EVENT_SOURCED), persistenceId: service.persistenceId };
      this.#records.set(name, resident);
      this.#residents.push(resident);
      this.#budget.addTable(resident.records);
    }
    const table = new EntityTable(resident.records, resident.parked, service.persistenceId, service, this.#processorFor(service), this.#afterBatch, this.#recharged);
    this.#tableOf.set(service, table);
    return table;
  }

  #processorFor(service: ServiceRuntime): EntityProcessor {
    if (service.kind === EntityKind.EVENT_SOURCED) return this.#eventSourced;
    if (!this.#valueEntities) {
      throw new KeystateError("STORAGE_UNAVAILABLE", `service ${service.name} is a value entity, but this node was started without a value store`);
    }
    return this.#valueEntities;
  }

  /** Opens a streamed command on a replicated entity. */
  openStream(service: ServiceRuntime, key: string, command: StreamCommand, sink: StreamSink): StreamHandle {
    return this.replicated.openStream(service, key, command, sink);
  }

  /** Replicated (CRDT) entities: kept by their own registry (replicated-entities.ts), state in the value store. */
  get replicated(): ReplicatedEntities {
    if (!this.#replicas) throw new KeystateError("STORAGE_UNAVAILABLE", "replicated entities need a value store, and this node was started without one");
    // The same limit, kept by a budget of their own (replicated-entities.ts).
    return (this.#replicatedEntities ??= new ReplicatedEntities(this.#replicas, LOCAL_REPLICA_ID, this.#budget.limitBytes));
  }

  /** After a batch of an entity still resident (its state may have grown): evicts over budget. */
  #evictOverBudget(record: EntityRecord): void {
    if (record.table.records.get(record.key) !== record) return;
    // Parked entities first: each has been idle at least parkAfterMs, longer than most records.
    while (this.#budget.over && this.#evictParked());
    this.#budget.evict((evicted) => this.#forget(evicted));
  }

  /** Drops the least recently used of the next SAMPLE parked entities, going round the tables; false when none is parked. */
  #evictParked(): boolean {
    const residents = this.#residents;
    for (let tried = 0; tried < residents.length; tried++) {
      const at = (this.#parkedHand + tried) % residents.length;
      const parked = residents[at]!.parked;
      const oldest = parked.oldest(SAMPLE);
      if (oldest === NO_ROW) continue;
      this.#parkedHand = at;
      this.#dropParked(parked, oldest);
      return true;
    }
    return false;
  }

  /**
   * Takes out of memory the resident entities whose (storage persistence id, key) `match`es:
   * a shard this node no longer owns. With `onlyIdle`, entities running a batch stay (a
   * hand-off drains them first). Returns how many matching entities are still resident.
   */
  dropMatching(match: (persistenceId: string, key: string) => boolean, onlyIdle: boolean, why: Error): number {
    let left = 0;
    for (const { records, parked, persistenceId } of this.#records.values()) {
      for (const record of records.values()) {
        if (!match(record.table.persistenceId, record.key)) continue;
        if (onlyIdle && !record.idle) left++;
        else this.#drop(record);
      }
      // Parked entities are idle.
      parked.each((row) => {
        if (match(persistenceId, parked.keyOf(row))) this.#dropParked(parked, row);
      });
    }
    return left + (this.#replicatedEntities?.dropMatching(match, onlyIdle, why) ?? 0);
  }

  /**
   * Snapshots the idle, loaded event-sourced entities that `match` and have events since
   * their last snapshot (a hand-off: the next owner rehydrates from it). Resolves with how
   * many were written; a failed write only costs the next owner a longer replay.
   */
  async flushSnapshots(match: (persistenceId: string, key: string) => boolean): Promise<number> {
    const writes: Promise<boolean>[] = [];
    // Parked ones with events since their snapshot become records again for it (they leave with the shard next).
    for (const { parked, persistenceId } of this.#residents) {
      if (!parked.eventSourced) continue;
      parked.each((row) => {
        if (parked.seqOf(row) > parked.snapshotSeqOf(row) && match(persistenceId, parked.keyOf(row))) this.#restore(parked, row, parked.lastUsedOf(row));
      });
    }
    for (const { records } of this.#records.values()) {
      for (const record of records.values()) {
        if (!(record instanceof EventSourcedRecord) || !record.idle || !match(record.table.persistenceId, record.key)) continue;
        const write = this.#eventSourced.snapshotNow(record);
        if (write) writes.push(write.then(() => true, () => false));
      }
    }
    return (await Promise.all(writes)).filter(Boolean).length;
  }

  /**
   * The idle sweep's pass over every resident entity at `now`: drops each one idle past its
   * timeout whose mailbox is empty, and parks the idle entities that may be (the
   * timer runs it a slice at a time). Returns how many were dropped.
   */
  passivateIdle(now: number): number {
    return this.#passivateIdle(now, this.#budget.size, this.parkedCount);
  }

  /** How many entities are parked (resident in compact form: parked-entities.ts). */
  get parkedCount(): number {
    let parked = 0;
    for (const resident of this.#records.values()) parked += resident.parked.size;
    return parked;
  }

  /**
   * Passivates the replicated entities idle past their timeout, and those among the next
   * `records` records and `parkedRows` parked entities of these; parks the records it looks
   * at that have been idle parkAfterMs and may be.
   */
  #passivateIdle(now: number, records: number, parkedRows: number): number {
    let dropped = this.#replicatedEntities?.passivateIdle(now, DEFAULT_PASSIVATION_TIMEOUT_MS) ?? 0;
    const sinceEpoch = this.#clock(now);
    const lookAfter = Math.min(this.#minTimeoutMs, this.#parkAfterMs);
    this.#budget.walk(this.#sweepCursor, records, (record) => {
      const idleFor = sinceEpoch - record.lastUsed;
      if (idleFor < lookAfter || !record.idle) return;
      if (idleFor >= passivationTimeoutOf(record.service)) {
        this.#drop(record);
        dropped++;
      } else if (idleFor >= this.#parkAfterMs) this.#park(record);
    });
    for (const { parked } of this.#records.values()) {
      if (parked.size === 0) continue;
      parked.sweep(parkedRows, (row) => {
        if (sinceEpoch - parked.lastUsedOf(row) < passivationTimeoutOf(parked.tableOf(row).service)) return;
        this.#dropParked(parked, row);
        dropped++;
      });
    }
    return dropped;
  }

  /**
   * `now` as a record's lastUsed: milliseconds since the epoch, kept under 2^30 so V8 stores
   * it as a small integer inside the record rather than a boxed double beside it. Past that
   * (12 days), the epoch moves forward and every record's lastUsed with it.
   */
  #clock(now: number): number {
    const since = now - this.#epoch;
    if (since < CLOCK_LIMIT_MS) return since | 0;
    this.#epoch = now;
    for (const { records, parked } of this.#records.values()) {
      for (const record of records.values()) {
        if (record.lastUsed !== RELEASED) record.lastUsed = Math.max(record.lastUsed - since, -CLOCK_LIMIT_MS) | 0;
      }
      parked.shiftLastUsed(since, -CLOCK_LIMIT_MS);
    }
    return 0;
  }

  /** Takes a resident entity out of memory (its state is in the store). */
  #drop(record: EntityRecord): void {
    this.#budget.release(record);
    this.#forget(record);
  }

  /** Removes an entity the budget no longer counts from its table. */
  #forget(record: EntityRecord): void {
    record.table.records.delete(record.key);
    this.#activeCount--;
    this.#observer?.passivated(record.service.name);
  }

  close(): void {
    clearInterval(this.#sweeper);
    this.#replicatedEntities?.close();
    for (const { records, parked } of this.#records.values()) {
      records.clear();
      parked.clear();
    }
    this.#activeCount = 0;
  }
}

/** What the budget charges a parked entity: its row, and the bytes it holds (its key's and its state's). */
function parkedCharge(heldBytes: number): number {
  return PARKED_OVERHEAD_BYTES + heldBytes;
}
