// Storage that acknowledges every write at once and keeps nothing. With it, commands
// still run for real (mailbox, guest call, events, state kept resident), but the figures
// show the host and the guest alone: no storage latency, and no storage bytes in RSS.
import type { EntityId, Journal, JournalEvent, Recovered, Snapshot, StoredEvent, ValueStore } from "../../host/journal/types.js";

const EMPTY: Recovered = { snapshot: undefined, events: [], lastSeq: 0 };

export const discardJournal: Journal = {
  append(_id: EntityId, _expectedSeq: number, _events: readonly JournalEvent[]): Promise<void> {
    return Promise.resolve();
  },
  saveSnapshot(_id: EntityId, _snapshot: Snapshot): Promise<void> {
    return Promise.resolve();
  },
  recover(_id: EntityId): Promise<Recovered> {
    return Promise.resolve(EMPTY);
  },
  readEvents(_id: EntityId, _fromSeq: number): Promise<StoredEvent[]> {
    return Promise.resolve([]);
  },
  lastSeq(_id: EntityId): Promise<number> {
    return Promise.resolve(0);
  },
};

export const discardValues: ValueStore = {
  get: () => Promise.resolve(undefined),
  read: () => Promise.resolve({ value: undefined, version: 0 }),
  // Acknowledges at once, as if the write were durable (the command path alone is measured).
  write: (_id, _value, expectedVersion) => Promise.resolve(expectedVersion + 1),
  put: () => Promise.resolve(),
  delete: () => Promise.resolve(),
};
