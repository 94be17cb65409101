// Active value (key-value) entities: each one's value bytes, loaded from the value store
// on its first command and kept resident in its EntityRecord. Each mailbox batch runs its commands through
// the guest one after another (each sees the value the previous one left), writes the
// batch's final value once (put, or delete) with the version it read, and only replies
// after that write is durable. A command the guest refused or trapped on changes nothing.
// A write refused because the stored version moved on (another node wrote the entity) is
// retried once on the reloaded value; it never overwrites what it did not read.
// A command for an idle, loaded entity with nothing queued runs alone (runAlone): the same
// steps for a batch of one, without the batch's envelope, outcome list and async frames.
import { StateAction, type CommandResult } from "../abi/abi-codec.js";
import { KeystateError, isKeystateError } from "../errors.js";
import { log } from "../log.js";
import type { IdempotencyStore, ValueStore } from "../journal/types.js";
import { IdempotentBatch } from "./idempotent-batch.js";
import { OutboxBatch } from "./outbox-batch.js";
import { callerGone, type CallContext } from "./call-context.js";
import { EntityRecord, ValueRecord, type EntityEnvelope, type EntityProcessor } from "./entity-record.js";
import type { EntityCommand } from "./event-sourced.js";
import { commandContext, keyedCommand } from "./guest-command.js";
import { failureToError, trapToError } from "./guest-errors.js";
import { endAlone, loneOutbox, retryAsBatch } from "./lone-command.js";
import { fromResident, toResident } from "./resident-bytes.js";

interface Outcome {
  readonly envelope: EntityEnvelope;
  readonly reply?: Uint8Array;
  readonly error?: unknown;
  /** Its answer stands only once the batch's write does: it changed the value, or saw a change not yet written. */
  readonly needsWrite: boolean;
}

/** Runs the batches of every resident value entity of a node (the entity itself is an EntityRecord). */
export class ValueEntity implements EntityProcessor {
  readonly #values: ValueStore;
  readonly #idempotency: IdempotencyStore | undefined;

  constructor(values: ValueStore, idempotency?: IdempotencyStore) {
    this.#values = values;
    this.#idempotency = idempotency;
  }

  readonly recordClass = ValueRecord;

  process(record: EntityRecord, batch: EntityEnvelope[]): Promise<void> {
    // Its table holds only records this processor created.
    return this.#processOnce(record as ValueRecord, batch, true);
  }

  runAlone(entity: EntityRecord, command: EntityCommand, context: CallContext | undefined): Promise<Uint8Array> | undefined {
    const record = entity as ValueRecord;
    // Loading, or reading idempotency keys, waits on storage: the batch path does both.
    if (!record.loaded || command.idempotencyKey !== undefined) return undefined;
    const before = fromResident(record.state!);
    let result: CommandResult;
    try {
      result = this.#run(record, command, context, before);
    } catch (err) {
      return endAlone(record, err);
    }
    if (result.failure) return endAlone(record, failureToError(result.failure));
    const reply = result.reply;
    const changesValue = result.stateAction === StateAction.UPDATE || result.stateAction === StateAction.DELETE;
    const outbox = loneOutbox(command.effects, record, record.version + 1);
    if (!changesValue && outbox === undefined) {
      record.aloneEnded();
      return Promise.resolve(reply);
    }
    const value = result.stateAction === StateAction.UPDATE ? result.state : result.stateAction === StateAction.DELETE ? undefined : before;
    return this.#values.write(record.id, value, record.version, outbox?.extras()).then(
      (version) => {
        record.version = version;
        record.state = toResident(value);
        record.aloneEnded();
        return reply;
      },
      (err: unknown) => this.#aloneWriteFailed(record, command, context, err),
    );
  }

  /** runAlone's write failed: as for a batch, the entity reloads, and a stale version retries the command once as a batch of one. */
  #aloneWriteFailed(record: ValueRecord, command: EntityCommand, context: CallContext | undefined, err: unknown): Promise<Uint8Array> {
    record.unload();
    if (!isKeystateError(err, "SEQUENCE_CONFLICT")) {
      record.aloneEnded();
      return Promise.reject(KeystateError.fromStorage(err, "writing a value entity"));
    }
    log().warn({ entity: record.id, err }, "value write refused (stale version); reloading the entity and retrying the command once");
    return retryAsBatch(record, command, context, (batch) => this.#processOnce(record, batch, false));
  }

  /**
   * One command through the guest on `value`, its effects checked; a failure the guest chose
   * is in the result. Throws what the caller sees when the guest trapped or an effect cannot be made.
   */
  #run(record: ValueRecord, command: EntityCommand, context: CallContext | undefined, value: Uint8Array | undefined): CommandResult {
    try {
      const result = keyedCommand(record.service, command.method, record.key, 0, value, command.payload, command.metadata);
      // Before its change joins the batch: a forward to an undeployed service stores nothing.
      if (!result.failure) command.effects?.accept(result);
      return result;
    } catch (err) {
      // The command changed nothing.
      throw trapToError(err, commandContext(record, { command, context }));
    }
  }

  async #processOnce(record: ValueRecord, batch: EntityEnvelope[], retryOnConflict: boolean): Promise<void> {
    if (!record.loaded) {
      try {
        const stored = await this.#values.read(record.id);
        record.state = toResident(stored.value);
        record.version = stored.version;
      } catch (err) {
        const error = KeystateError.fromStorage(err, "loading a value entity");
        for (const envelope of batch) envelope.reject(error);
        return;
      }
    }

    const id = record.id;
    let value = fromResident(record.state!);
    let changed = false;
    // Asynchronous side effects, timers and publications, stored with the value so a crash after the reply cannot lose them.
    const outbox = new OutboxBatch();
    const outcomes: Outcome[] = [];
    let keyed: IdempotentBatch | undefined;
    try {
      const loading = IdempotentBatch.load(this.#idempotency, id, batch);
      // No key in the batch (nearly always): no await, so the batch runs on in this turn.
      keyed = loading === undefined ? undefined : await loading;
    } catch (err) {
      const error = KeystateError.fromStorage(err, "reading idempotency keys");
      for (const envelope of batch) envelope.reject(error);
      return;
    }
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
        outcomes.push({ envelope, reply: replayed.reply, needsWrite: !replayed.durable });
        continue;
      }
      const sawUnwritten = changed;
      let result: CommandResult;
      try {
        result = this.#run(record, envelope.command, envelope.context, value);
      } catch (error) {
        // The command changed nothing: `value` still holds the value before it.
        outcomes.push({ envelope, error, needsWrite: false });
        continue;
      }
      if (result.failure) {
        outcomes.push({ envelope, error: failureToError(result.failure), needsWrite: sawUnwritten });
        continue;
      }
      if (result.stateAction === StateAction.UPDATE) {
        value = result.state;
        changed = true;
      } else if (result.stateAction === StateAction.DELETE) {
        value = undefined;
        changed = true;
      }
      const stored = outbox.add(envelope.command.effects, id, record.version + 1);
      const changesValue = result.stateAction === StateAction.UPDATE || result.stateAction === StateAction.DELETE;
      if (changesValue || stored > 0) keyed?.record(envelope, result.reply);
      outcomes.push({ envelope, reply: result.reply, needsWrite: sawUnwritten || changesValue || stored > 0 });
    }

    // A command with asynchronous side effects writes even when the value is unchanged: the outbox entries go with it.
    if (changed || !outbox.empty) {
      try {
        const extras = outbox.empty && keyed === undefined ? undefined : { ...outbox.extras(), replies: keyed?.replies };
        record.version = await this.#values.write(id, value, record.version, extras);
      } catch (err) {
        // The write may or may not have landed: reload on the next command rather than guess.
        record.unload();
        if (retryOnConflict && isKeystateError(err, "SEQUENCE_CONFLICT")) {
          log().warn({ entity: record.id, err }, "value write refused (stale version); reloading the entity and retrying the batch once");
          return this.#processOnce(record, batch, false);
        }
        const error = KeystateError.fromStorage(err, "writing a value entity");
        // Nothing is acknowledged that was not written: every answer that changed the
        // value, or was decided on a changed value, fails with the storage error.
        for (const outcome of outcomes) settle(outcome, outcome.needsWrite ? error : undefined);
        return;
      }
      record.state = toResident(value);
    }
    for (const outcome of outcomes) settle(outcome, undefined);
  }
}

function settle(outcome: Outcome, writeError: unknown): void {
  if (writeError !== undefined) outcome.envelope.reject(writeError);
  else if (outcome.reply !== undefined) outcome.envelope.resolve(outcome.reply);
  else outcome.envelope.reject(outcome.error);
}
