// A Journal that reports each append's latency and size (group-commit batch) to an
// observer, so /metrics shows storage cost without the storage backends knowing about it.
import type { Journal } from "../journal/types.js";
import type { EntityObserver } from "../metrics.js";

export function observedJournal(journal: Journal, observer: Pick<EntityObserver, "journalAppended">): Journal {
  return {
    async append(id, expectedSeq, events, outbox) {
      const start = performance.now();
      await journal.append(id, expectedSeq, events, outbox);
      // Only durable appends are timed: a refused one wrote nothing.
      observer.journalAppended(id.persistenceId, (performance.now() - start) / 1000, events.length);
    },
    saveSnapshot: (id, snapshot) => journal.saveSnapshot(id, snapshot),
    recover: (id) => journal.recover(id),
    readEvents: (id, fromSeq, limit) => journal.readEvents(id, fromSeq, limit),
    lastSeq: (id) => journal.lastSeq(id),
  };
}
