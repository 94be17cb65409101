// An active value (key-value) entity: its value bytes, loaded from the value store on
// the first command and kept resident. Each mailbox batch runs its commands through
// the guest one after another (each sees the value the previous one left), writes the
// batch's final value once (put, or delete), and only replies after that write is
// durable. A command the guest refused or trapped on changes nothing.
import { StateAction } from "../abi/abi-codec.js";
import { KeystateError } from "../errors.js";
import type { EntityId, ValueStore } from "../journal/types.js";
import type { EntityCommand } from "./event-sourced.js";
import { callerGone } from "./call-context.js";
import { guestCommand } from "./guest-command.js";
import { failureToError, trapToError } from "./guest-errors.js";
import { compactBytes } from "./memory-budget.js";
import type { Envelope } from "./mailbox.js";
import type { ServiceRuntime } from "./service-runtime.js";

interface Resident {
  /** undefined: no stored value (never written, or deleted). */
  value: Uint8Array | undefined;
}

interface Outcome {
  readonly envelope: Envelope<EntityCommand, Uint8Array>;
  readonly reply?: Uint8Array;
  readonly error?: unknown;
  /** Its answer stands only once the batch's write does: it changed the value, or saw a change not yet written. */
  readonly needsWrite: boolean;
}

export class ValueEntity {
  readonly id: EntityId;
  readonly #service: ServiceRuntime;
  readonly #values: ValueStore;
  #resident: Resident | undefined;

  constructor(id: EntityId, service: ServiceRuntime, values: ValueStore) {
    this.id = id;
    this.#service = service;
    this.#values = values;
  }

  /** Value bytes kept between commands (charged against the node's entity memory budget). */
  get residentBytes(): number {
    return this.#resident?.value?.byteLength ?? 0;
  }

  async process(batch: Envelope<EntityCommand, Uint8Array>[]): Promise<void> {
    let resident: Resident;
    try {
      resident = this.#resident ?? (this.#resident = { value: await this.#values.get(this.id) });
    } catch (err) {
      const error = KeystateError.fromStorage(err, "loading a value entity");
      for (const envelope of batch) envelope.reject(error);
      return;
    }

    let value = resident.value;
    let changed = false;
    const outcomes: Outcome[] = [];
    for (const envelope of batch) {
      // A caller that left while earlier commands ran: its command never reaches the guest.
      const gone = callerGone(envelope.context);
      if (gone) {
        envelope.reject(gone);
        continue;
      }
      const sawUnwritten = changed;
      try {
        const result = guestCommand(this.#service, {
          method: envelope.command.method,
          entityKey: this.id.key,
          sequence: 0,
          state: value,
          payload: envelope.command.payload,
        });
        if (result.failure) {
          outcomes.push({ envelope, error: failureToError(result.failure), needsWrite: sawUnwritten });
          continue;
        }
        // Before its change joins the batch: a forward to an undeployed service stores nothing.
        envelope.command.effects?.accept(result);
        if (result.stateAction === StateAction.UPDATE) {
          value = result.state;
          changed = true;
        } else if (result.stateAction === StateAction.DELETE) {
          value = undefined;
          changed = true;
        }
        const changesValue = result.stateAction === StateAction.UPDATE || result.stateAction === StateAction.DELETE;
        outcomes.push({ envelope, reply: result.reply, needsWrite: sawUnwritten || changesValue });
      } catch (err) {
        // The command changed nothing: `value` still holds the value before it.
        outcomes.push({ envelope, error: trapToError(err, this.#context(envelope)), needsWrite: false });
      }
    }

    if (changed) {
      try {
        if (value === undefined) await this.#values.delete(this.id);
        else await this.#values.put(this.id, value);
      } catch (err) {
        // The write may or may not have landed: reload on the next command rather than guess.
        this.#resident = undefined;
        const error = KeystateError.fromStorage(err, "writing a value entity");
        // Nothing is acknowledged that was not written: every answer that changed the
        // value, or was decided on a changed value, fails with the storage error.
        for (const outcome of outcomes) settle(outcome, outcome.needsWrite ? error : undefined);
        return;
      }
      resident.value = value && compactBytes(value);
    }
    for (const outcome of outcomes) settle(outcome, undefined);
  }

  #context(envelope: Envelope<EntityCommand, Uint8Array>) {
    const { command, context } = envelope;
    return { module: this.#service.moduleName, service: this.#service.name, method: command.method, entityKey: this.id.key, requestId: context?.requestId };
  }
}

function settle(outcome: Outcome, writeError: unknown): void {
  if (writeError !== undefined) outcome.envelope.reject(writeError);
  else if (outcome.reply !== undefined) outcome.envelope.resolve(outcome.reply);
  else outcome.envelope.reject(outcome.error);
}
