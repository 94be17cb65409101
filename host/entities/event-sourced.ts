// An active event-sourced entity: its state bytes and sequence number, kept resident
// between commands. Each mailbox batch runs its commands through the guest one after
// another, appends all resulting events in one journal write that carries the expected
// sequence number, and only then replies.
import { KeystateError, isKeystateError } from "../errors.js";
import type { AbiEvent } from "../abi/abi-codec.js";
import type { EntityId, Journal, JournalEvent } from "../journal/types.js";
import { log } from "../log.js";
import type { Envelope } from "./mailbox.js";
import { callerGone } from "./call-context.js";
import { guestCommand } from "./guest-command.js";
import { failureToError, trapToError } from "./guest-errors.js";
import { compactBytes } from "./memory-budget.js";
import type { ServiceRuntime } from "./service-runtime.js";
import type { CommandEffects } from "./effects.js";

export interface EntityCommand {
  readonly method: string;
  readonly payload: Uint8Array;
  /** Receives the command's forward and side effects; throws (failing the command) when one cannot be made. */
  readonly effects?: CommandEffects;
}

interface Resident {
  state: Uint8Array | undefined;
  seq: number;
  snapshotSeq: number;
}

export class EventSourcedEntity {
  readonly id: EntityId;
  readonly #service: ServiceRuntime;
  readonly #journal: Journal;
  #resident: Resident | undefined;

  constructor(id: EntityId, service: ServiceRuntime, journal: Journal) {
    this.id = id;
    this.#service = service;
    this.#journal = journal;
  }

  /** State bytes kept between commands (charged against the node's entity memory budget). */
  get residentBytes(): number {
    return this.#resident?.state?.byteLength ?? 0;
  }

  get sequence(): number {
    return this.#resident?.seq ?? 0;
  }

  async process(batch: Envelope<EntityCommand, Uint8Array>[]): Promise<void> {
    try {
      await this.#processOnce(batch, true);
    } catch (err) {
      for (const envelope of batch) envelope.reject(err);
    }
  }

  async #processOnce(batch: Envelope<EntityCommand, Uint8Array>[], retryOnConflict: boolean): Promise<void> {
    const resident = this.#resident ?? (this.#resident = await this.#recover());
    let state = resident.state;
    const pending: JournalEvent[] = [];
    const outcomes: Array<{ envelope: Envelope<EntityCommand, Uint8Array>; reply?: Uint8Array; error?: unknown; sawUncommitted: boolean }> = [];
    for (const envelope of batch) {
      // A caller that left while earlier commands ran: its command never reaches the guest.
      const gone = callerGone(envelope.context);
      if (gone) {
        envelope.reject(gone);
        continue;
      }
      const sawUncommitted = pending.length > 0;
      try {
        const result = guestCommand(this.#service, {
          method: envelope.command.method,
          entityKey: this.id.key,
          sequence: resident.seq + pending.length,
          state,
          payload: envelope.command.payload,
        });
        if (result.failure) {
          outcomes.push({ envelope, error: failureToError(result.failure), sawUncommitted });
          continue;
        }
        this.#checkEvents(result.events);
        // Before its events join the batch: a forward to an undeployed service stores nothing.
        envelope.command.effects?.accept(result);
        pending.push(...result.events);
        state = result.state;
        outcomes.push({ envelope, reply: result.reply, sawUncommitted });
      } catch (err) {
        // The command changed nothing: `state` still holds the state before it.
        outcomes.push({ envelope, error: trapToError(err, this.#context(envelope)), sawUncommitted });
      }
    }

    if (pending.length > 0) {
      try {
        await this.#journal.append(this.id, resident.seq, pending);
      } catch (err) {
        this.#resident = undefined; // Reload from the journal on the next command.
        if (retryOnConflict && isKeystateError(err, "SEQUENCE_CONFLICT")) {
          log().warn({ entity: this.id, err }, "journal append refused; reloading the entity and retrying the batch once");
          return this.#processOnce(batch, false);
        }
        // Nothing is acknowledged that was not written: every reply that depended on
        // the unwritten events fails with the storage error.
        for (const outcome of outcomes) {
          if (outcome.reply !== undefined || outcome.sawUncommitted) outcome.envelope.reject(err);
          else outcome.envelope.reject(outcome.error);
        }
        return;
      }
      resident.seq += pending.length;
      resident.state = state && compactBytes(state);
      this.#maybeSnapshot(resident);
    }
    for (const outcome of outcomes) {
      if (outcome.reply !== undefined) outcome.envelope.resolve(outcome.reply);
      else outcome.envelope.reject(outcome.error);
    }
  }

  #checkEvents(events: AbiEvent[]): void {
    const allowed = this.#service.eventTypes;
    for (const event of events) {
      if (allowed.size > 0 && !allowed.has(event.type)) {
        throw new KeystateError("GUEST_TRAP", `the entity emitted an event of undeclared type ${event.type}`);
      }
    }
  }

  async #recover(): Promise<Resident> {
    const recovered = await this.#journal.recover(this.id);
    let state = recovered.snapshot?.state;
    if (recovered.events.length > 0) {
      // One guest call folds the whole batch of events.
      const result = this.#service.pool.run((guest) =>
        guest.replay({ service: this.#service.name, state, events: recovered.events }),
      );
      if (result.failure) throw failureToError(result.failure);
      state = result.state;
    }
    return { state, seq: recovered.lastSeq, snapshotSeq: recovered.snapshot?.seq ?? 0 };
  }

  #maybeSnapshot(resident: Resident): void {
    const every = this.#service.snapshotEvery;
    if (every <= 0 || resident.state === undefined || resident.seq - resident.snapshotSeq < every) return;
    const snapshot = { seq: resident.seq, state: resident.state };
    resident.snapshotSeq = resident.seq;
    // The journal is the source of truth; a lost snapshot only costs a longer replay.
    this.#journal.saveSnapshot(this.id, snapshot).catch((err: unknown) => {
      log().warn({ entity: this.id, err }, "snapshot write failed");
    });
  }

  #context(envelope: Envelope<EntityCommand, Uint8Array>) {
    const { command, context } = envelope;
    return { module: this.#service.moduleName, service: this.#service.name, method: command.method, entityKey: this.id.key, requestId: context?.requestId };
  }
}
