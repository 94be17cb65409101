// What the value and event-sourced processors share when they run a command alone (a batch
// of one for an idle entity, mailbox.ts runAlone): the outbox part of its write, made only
// when the command stores something, and the retry of a command whose write was refused as
// stale, which goes through the processor's batch path as a batch of one.
import type { EntityId } from "../journal/types.js";
import type { CallContext } from "./call-context.js";
import type { CommandEffects } from "./effects.js";
import type { EntityEnvelope, EntityRecord } from "./entity-record.js";
import type { EntityCommand } from "./event-sourced.js";
import { OutboxBatch } from "./outbox-batch.js";

/**
 * The outbox entries and cancelled timers of a command of `entity` written as `sequence`;
 * undefined when it stores none (nearly always). Takes the record, not its id: the id is an
 * object made on each read, needed only when there is something to store.
 */
export function loneOutbox(effects: CommandEffects | undefined, entity: { readonly id: EntityId }, sequence: number): OutboxBatch | undefined {
  if (effects === undefined || effects.none) return undefined;
  const outbox = new OutboxBatch();
  return outbox.add(effects, entity.id, sequence) === 0 ? undefined : outbox;
}

/** A lone command that ends with `error` before any write (the guest trapped or refused it): the entity is free again. */
export function endAlone(record: EntityRecord, error: unknown): Promise<never> {
  record.aloneEnded();
  return Promise.reject(error);
}

/**
 * Runs `command` again through `processBatch` as a batch of one (its lone write was refused
 * because the stored version moved on, and `record` is unloaded). The mailbox stays busy
 * until it settles; then what queued meanwhile runs.
 */
export function retryAsBatch(
  record: EntityRecord,
  command: EntityCommand,
  context: CallContext | undefined,
  processBatch: (batch: EntityEnvelope[]) => Promise<void>,
): Promise<Uint8Array> {
  return new Promise<Uint8Array>((resolve, reject) => {
    // The command runs again: if the Router handed its promise on without waiting (effects.ts
    // handOff) and this run asks for effects, they run before the answer.
    const { effects } = command;
    const answer = (reply: Uint8Array) =>
      resolve(effects === undefined ? reply : effects.afterRerun(reply, { module: record.service.moduleName, service: record.service.name, method: command.method, entityKey: record.key }));
    // processBatch settles the command itself; the catch is the mailbox's safety net for a bug.
    void processBatch([{ command, context, resolve: answer, reject }])
      .catch(reject)
      .finally(() => record.aloneEnded());
  });
}
