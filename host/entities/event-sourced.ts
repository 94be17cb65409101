// Active event-sourced entities: each one's state bytes and sequence number, kept
// resident in its EntityRecord between commands. Each mailbox batch runs its commands through the guest one after
// another, appends all resulting events in one journal write that carries the expected
// sequence number, and only then replies. A command for an idle, loaded entity with nothing
// queued runs alone (runAlone): the same steps for a batch of one, without the batch's
// envelope, outcome list and async frames.
import { KeystateError, isKeystateError } from "../errors.js";
import type { AbiEvent, CallMetadata, CommandResult } from "../abi/abi-codec.js";
import { OutboxBatch } from "./outbox-batch.js";
import type { IdempotencyStore, Journal, JournalEvent, Recovered } from "../journal/types.js";
import { IdempotentBatch } from "./idempotent-batch.js";
import { log } from "../log.js";
import { callerGone, type CallContext } from "./call-context.js";
import { EventSourcedRecord, type EntityEnvelope, type EntityProcessor, type EntityRecord } from "./entity-record.js";
import { commandContext, keyedCommand } from "./guest-command.js";
import { failureToError, trapToError } from "./guest-errors.js";
import { endAlone, loneOutbox, retryAsBatch } from "./lone-command.js";
import { fromResident, toResident } from "./resident-bytes.js";
import type { ServiceRuntime } from "./service-runtime.js";
import type { CommandEffects } from "./effects.js";

export interface EntityCommand {
  readonly method: string;
  readonly payload: Uint8Array;
  /** Receives the command's forward and side effects; throws (failing the command) when one cannot be made. */
  readonly effects?: CommandEffects;
  /** Answered once: a command with a key that already ran gets the stored reply and runs nothing. */
  readonly idempotencyKey?: string;
  /** What the call carries besides its message (a subscription's CloudEvents attributes), for the guest. */
  readonly metadata?: CallMetadata;
}

/** An entity's state from its latest snapshot and the events after it (one guest call folds them all); undefined: never written. */
export function foldRecovered(service: ServiceRuntime, recovered: Recovered): Uint8Array | undefined {
  if (recovered.events.length === 0) return recovered.snapshot?.state;
  const result = service.pool.run((guest) => guest.replay({ service: service.name, state: recovered.snapshot?.state, events: recovered.events }));
  if (result.failure) throw failureToError(result.failure);
  return result.state;
}

/** Runs the batches of every resident event-sourced entity of a node (the entity itself is an EntityRecord). */
export class EventSourcedEntity implements EntityProcessor {
  /** Replaced when the node starts observing its journal (entity-manager.ts). */
  journal: Journal;
  readonly #idempotency: IdempotencyStore | undefined;

  constructor(journal: Journal, idempotency?: IdempotencyStore) {
    this.journal = journal;
    this.#idempotency = idempotency;
  }

  readonly recordClass = EventSourcedRecord;

  async process(record: EntityRecord, batch: EntityEnvelope[]): Promise<void> {
    try {
      // Its table holds only records this processor created.
      await this.#processOnce(record as EventSourcedRecord, batch, true);
    } catch (err) {
      for (const envelope of batch) envelope.reject(err);
    }
  }

  runAlone(entity: EntityRecord, command: EntityCommand, context: CallContext | undefined): Promise<Uint8Array> | undefined {
    const record = entity as EventSourcedRecord;
    // Recovering, or reading idempotency keys, waits on storage: the batch path does both.
    if (!record.loaded || command.idempotencyKey !== undefined) return undefined;
    const baseSeq = record.seq;
    let result: CommandResult;
    try {
      result = this.#run(record, command, context, fromResident(record.state!), baseSeq);
    } catch (err) {
      return endAlone(record, err);
    }
    if (result.failure) return endAlone(record, failureToError(result.failure));
    const { events, reply, state } = result;
    const outbox = loneOutbox(command.effects, record, baseSeq + events.length);
    if (events.length === 0 && outbox === undefined) {
      record.aloneEnded();
      return Promise.resolve(reply);
    }
    return this.journal.append(record.id, baseSeq, events, outbox?.extras()).then(
      () => {
        record.seq = baseSeq + events.length;
        record.state = toResident(state);
        this.#maybeSnapshot(record, state);
        record.aloneEnded();
        return reply;
      },
      (err: unknown) => {
        record.unload(); // Reload from the journal on the next command.
        if (!isKeystateError(err, "SEQUENCE_CONFLICT")) {
          record.aloneEnded();
          throw err;
        }
        log().warn({ entity: record.id, err }, "journal append refused; reloading the entity and retrying the command once");
        return retryAsBatch(record, command, context, (batch) => this.#processOnce(record, batch, false));
      },
    );
  }

  /**
   * One command through the guest on `state` as event `sequence` + 1, its events and effects
   * checked; a failure the guest chose is in the result. Throws what the caller sees when the
   * guest trapped, emitted an undeclared event or asked for an effect that cannot be made.
   */
  #run(record: EventSourcedRecord, command: EntityCommand, context: CallContext | undefined, state: Uint8Array | undefined, sequence: number): CommandResult {
    try {
      const result = keyedCommand(record.service, command.method, record.key, sequence, state, command.payload, command.metadata);
      if (result.failure) return result;
      checkEvents(record.service, result.events);
      // Before its events join the batch: a forward to an undeployed service stores nothing.
      command.effects?.accept(result);
      return result;
    } catch (err) {
      // The command changed nothing.
      throw trapToError(err, commandContext(record, { command, context }));
    }
  }

  async #processOnce(record: EventSourcedRecord, batch: EntityEnvelope[], retryOnConflict: boolean): Promise<void> {
    if (!record.loaded) await this.#recover(record);
    const baseSeq = record.seq;
    let state = fromResident(record.state!);
    const pending: JournalEvent[] = [];
    // Asynchronous side effects, timers and publications, stored with the events so a crash after the reply cannot lose them.
    const outbox = new OutboxBatch();
    // `stored`: a reply stored under the command's idempotency key before this batch (it stands whatever this batch's write does).
    const outcomes: Array<{ envelope: EntityEnvelope; reply?: Uint8Array; error?: unknown; sawUncommitted: boolean; stored?: boolean }> = [];
    const loading = IdempotentBatch.load(this.#idempotency, record.id, batch);
    // No key in the batch (nearly always): no await, so the batch runs on in this turn.
    const keyed = loading === undefined ? undefined : await loading;
    for (const envelope of batch) {
      // A caller that left while earlier commands ran: its command never reaches the guest.
      const gone = callerGone(envelope.context);
      if (gone) {
        envelope.reject(gone);
        continue;
      }
      const replayed = keyed?.replay(envelope);
      if (replayed !== undefined) {
        // Ran before under this key: the same answer, and nothing runs or is written again.
        outcomes.push({ envelope, reply: replayed.reply, sawUncommitted: !replayed.durable, stored: replayed.durable });
        continue;
      }
      const sawUncommitted = pending.length > 0;
      let result: CommandResult;
      try {
        result = this.#run(record, envelope.command, envelope.context, state, baseSeq + pending.length);
      } catch (error) {
        // The command changed nothing: `state` still holds the state before it.
        outcomes.push({ envelope, error, sawUncommitted });
        continue;
      }
      if (result.failure) {
        outcomes.push({ envelope, error: failureToError(result.failure), sawUncommitted });
        continue;
      }
      pending.push(...result.events);
      const stored = outbox.add(envelope.command.effects, record.id, baseSeq + pending.length);
      if (result.events.length > 0 || stored > 0) keyed?.record(envelope, result.reply);
      state = result.state;
      outcomes.push({ envelope, reply: result.reply, sawUncommitted });
    }

    const replies = keyed?.replies ?? [];
    if (pending.length > 0 || !outbox.empty) {
      try {
        await this.journal.append(record.id, baseSeq, pending, { ...outbox.extras(), replies });
      } catch (err) {
        record.unload(); // Reload from the journal on the next command.
        if (retryOnConflict && isKeystateError(err, "SEQUENCE_CONFLICT")) {
          log().warn({ entity: record.id, err }, "journal append refused; reloading the entity and retrying the batch once");
          return this.#processOnce(record, batch, false);
        }
        // Nothing is acknowledged that was not written: every reply that depended on
        // the unwritten events fails with the storage error.
        for (const outcome of outcomes) {
          if (outcome.stored) outcome.envelope.resolve(outcome.reply!);
          else if (outcome.reply !== undefined || outcome.sawUncommitted) outcome.envelope.reject(err);
          else outcome.envelope.reject(outcome.error);
        }
        return;
      }
      record.seq = baseSeq + pending.length;
      record.state = toResident(state);
      this.#maybeSnapshot(record, state);
    }
    for (const outcome of outcomes) {
      if (outcome.reply !== undefined) outcome.envelope.resolve(outcome.reply);
      else outcome.envelope.reject(outcome.error);
    }
  }

  async #recover(record: EventSourcedRecord): Promise<void> {
    const service = record.service;
    const recovered = await this.journal.recover(record.id);
    record.state = toResident(foldRecovered(service, recovered));
    record.seq = recovered.lastSeq;
    record.snapshotSeq = recovered.snapshot?.seq ?? 0;
  }

  /**
   * Writes a snapshot of a loaded, idle entity with events since its last one (its shard is
   * being handed off: the next owner replays less). Undefined when there is nothing to write.
   */
  snapshotNow(record: EventSourcedRecord): Promise<void> | undefined {
    if (record.service.snapshotEvery <= 0 || record.state === null || record.seq <= record.snapshotSeq) return undefined;
    const state = fromResident(record.state);
    if (state === undefined) return undefined;
    record.snapshotSeq = record.seq;
    return this.journal.saveSnapshot(record.id, { seq: record.seq, state });
  }

  #maybeSnapshot(record: EventSourcedRecord, state: Uint8Array | undefined): void {
    const every = record.service.snapshotEvery;
    if (every <= 0 || state === undefined || record.seq - record.snapshotSeq < every) return;
    const snapshot = { seq: record.seq, state };
    record.snapshotSeq = record.seq;
    const id = record.id;
    // The journal is the source of truth; a lost snapshot only costs a longer replay.
    this.journal.saveSnapshot(id, snapshot).catch((err: unknown) => {
      log().warn({ entity: id, err }, "snapshot write failed");
    });
  }
}

function checkEvents(service: ServiceRuntime, events: AbiEvent[]): void {
  const allowed = service.eventTypes;
  for (const event of events) {
    if (allowed.size > 0 && !allowed.has(event.type)) {
      throw new KeystateError("GUEST_TRAP", `the entity emitted an event of undeclared type ${event.type}`);
    }
  }
}
