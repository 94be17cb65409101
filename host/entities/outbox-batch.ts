// The outbox part of one entity's batch write: the entries its commands stored and the named
// timers they cancelled, in command order, so a timer scheduled by one command and cancelled
// by the next (or the other way round) ends as the last command left it.
import type { EntityId, OutboxEntry, WriteExtras } from "../journal/types.js";
import type { CommandEffects } from "./effects.js";

export class OutboxBatch {
  /** By slot (an entry's slot, or its id): a later command's entry replaces an earlier one's. Made on first use: most batches store nothing. */
  #entries: Map<string, OutboxEntry> | undefined;
  #cancelled: Set<string> | undefined;

  /**
   * Adds what `effects` (a successful command of `entity`, written as `sequence`) stores;
   * resolves how many outbox changes that made (0: nothing to write for it).
   */
  add(effects: CommandEffects | undefined, entity: EntityId, sequence: number): number {
    if (effects === undefined || effects.none) return 0;
    const entries = effects.toOutbox(entity, sequence);
    const changes = entries.length + effects.cancelled.length;
    if (changes === 0) return 0;
    const stored = (this.#entries ??= new Map());
    const cancelled = (this.#cancelled ??= new Set());
    for (const slot of effects.cancelled) {
      stored.delete(slot);
      cancelled.add(slot);
    }
    for (const entry of entries) {
      const slot = entry.slot ?? entry.id;
      cancelled.delete(slot);
      stored.set(slot, entry);
    }
    return changes;
  }

  get empty(): boolean {
    return this.#entries === undefined;
  }

  /** The write's outbox extras (undefined when the batch stores none). */
  extras(): Pick<WriteExtras, "outbox" | "cancelled"> | undefined {
    if (this.#entries === undefined) return undefined;
    return { outbox: [...this.#entries.values()], cancelled: [...this.#cancelled!] };
  }
}
