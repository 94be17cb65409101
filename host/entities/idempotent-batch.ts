// Idempotency keys within one mailbox batch. A command that carries a key (a client's
// `idempotency-key`, or a redelivered side effect's outbox id) and already ran answers with
// the reply stored under that key and runs nothing; one that runs and changes something has
// its reply stored with the batch's write, atomically. Commands that change nothing are
// not recorded: running them again changes nothing either.
import type { EntityId, IdempotencyStore, IdempotentReply } from "../journal/types.js";
import type { EntityEnvelope } from "./entity-record.js";

export interface Replayed {
  readonly reply: Uint8Array;
  /** False when the reply was made earlier in this batch: it stands or falls with the batch's write. */
  readonly durable: boolean;
}

export class IdempotentBatch {
  /** Replies already stored, by key (only the keys of this batch). */
  readonly #stored: ReadonlyMap<string, Uint8Array>;
  /** Replies of this batch's commands that changed something: written with the batch. */
  readonly #recorded = new Map<string, Uint8Array>();

  private constructor(stored: ReadonlyMap<string, Uint8Array>) {
    this.#stored = stored;
  }

  /**
   * The batch's keys and their stored replies; undefined at once, with no read and no promise
   * to wait for, when no command carries a key (the common case: the caller need not await).
   */
  static load(store: IdempotencyStore | undefined, id: EntityId, batch: readonly EntityEnvelope[]): Promise<IdempotentBatch> | undefined {
    let keys: string[] | undefined;
    for (const envelope of batch) {
      const key = envelope.command.idempotencyKey;
      if (key !== undefined) (keys ??= []).push(key);
    }
    if (keys === undefined || store === undefined) return undefined;
    return IdempotentBatch.#read(store, id, keys);
  }

  static async #read(store: IdempotencyStore, id: EntityId, keys: string[]): Promise<IdempotentBatch> {
    const replies = await store.replies(id, keys);
    const stored = new Map<string, Uint8Array>();
    keys.forEach((key, i) => {
      const reply = replies[i];
      if (reply !== undefined) stored.set(key, reply);
    });
    return new IdempotentBatch(stored);
  }

  /** What a command with this envelope's key answered before, if anything. */
  replay(envelope: EntityEnvelope): Replayed | undefined {
    const key = envelope.command.idempotencyKey;
    if (key === undefined) return undefined;
    const stored = this.#stored.get(key);
    if (stored !== undefined) return { reply: stored, durable: true };
    const recorded = this.#recorded.get(key);
    return recorded === undefined ? undefined : { reply: recorded, durable: false };
  }

  /** A command with a key ran and changed something: its reply goes into the batch's write. */
  record(envelope: EntityEnvelope, reply: Uint8Array): void {
    const key = envelope.command.idempotencyKey;
    if (key !== undefined) this.#recorded.set(key, reply);
  }

  get replies(): IdempotentReply[] {
    return [...this.#recorded].map(([key, reply]) => ({ key, reply }));
  }
}
