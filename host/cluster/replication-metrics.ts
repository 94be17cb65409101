// Prometheus series of CRDT replication, read from the replication's own running totals
// when scraped (nothing is counted twice on the hot path).
import { Counter, type Registry } from "prom-client";
import type { ReplicationStats } from "./crdt-replication.js";

const SERIES: ReadonlyArray<[keyof ReplicationStats, string, string]> = [
  ["changesSent", "keystate_crdt_changes_sent_total", "Replicated entity changes (one entity's batch) published to the other nodes"],
  ["bytesSent", "keystate_crdt_sent_bytes_total", "Bytes of the replication messages this node published"],
  ["changesDropped", "keystate_crdt_changes_dropped_total", "Changes dropped on purpose by the test-only fault injection switch"],
  ["changesReceived", "keystate_crdt_changes_received_total", "Changes received from other nodes"],
  ["gapsSeen", "keystate_crdt_gaps_total", "Gaps in another node's save counters (changes lost on the way)"],
  ["copiesPulled", "keystate_crdt_copies_pulled_total", "Other nodes' stored copies pulled by anti-entropy"],
];

export function registerReplicationMetrics(registry: Registry, stats: () => Readonly<ReplicationStats>): void {
  for (const [field, name, help] of SERIES) {
    new Counter({
      name,
      help,
      registers: [registry],
      collect() {
        this.reset();
        this.inc(stats()[field]);
      },
    });
  }
}
