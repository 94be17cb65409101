// The cluster's Prometheus series, in the node's registry: shards owned, lease renewals
// (and failures), fencing refusals, forwards (count by result, latency), hand-offs and how
// long a rebalancing round that moved shards took.
import { Counter, Gauge, Histogram, type Registry } from "prom-client";
import type { ForwardObserver } from "./forwarder.js";

export class ClusterMetrics implements ForwardObserver {
  readonly #renewals: Counter<"result">;
  readonly #fenced: Counter;
  /**
   * Forwards by result and by transport, counted in plain fields and handed to prom-client
   * when scraped: its inc() hashes the labels object on every call, and every call a node
   * does not own is forwarded.
   */
  readonly #forwards = { ok: 0, moved: 0, unreachable: 0, error: 0 };
  readonly #forwardTransports = { peer: 0, grpc: 0 };
  readonly #forwardLatency: Histogram;
  readonly #handoffs: Counter;
  readonly #acquisitions: Counter;
  readonly #rebalance: Histogram;

  constructor(registry: Registry, ownedShards: () => number) {
    const registers = [registry];
    new Gauge({
      name: "keystate_cluster_shards_owned",
      help: "Shards whose lease this node holds",
      registers,
      collect() {
        this.set(ownedShards());
      },
    });
    this.#renewals = new Counter({ name: "keystate_cluster_lease_renewals_total", help: "Shard lease renewals, by result (ok, lost, error)", labelNames: ["result"], registers });
    this.#fenced = new Counter({ name: "keystate_cluster_fencing_refusals_total", help: "Entity writes refused because this node's shard epoch was no longer current", registers });
    countedInFields(registers, "keystate_cluster_forwards_total", "Calls forwarded to the owner node, by result (ok, moved, unreachable, error)", "result", this.#forwards);
    countedInFields(
      registers,
      "keystate_cluster_forwards_by_transport_total",
      "Unary calls forwarded to the owner node, by the hop they took (peer: the owner's peer link; grpc: its gRPC port)",
      "transport",
      this.#forwardTransports,
    );
    this.#forwardLatency = new Histogram({
      name: "keystate_cluster_forward_seconds",
      help: "Round trip of a call forwarded to its owner node",
      buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
      registers,
    });
    this.#handoffs = new Counter({ name: "keystate_cluster_handoffs_total", help: "Shards this node handed off to another node", registers });
    this.#acquisitions = new Counter({ name: "keystate_cluster_acquisitions_total", help: "Shard leases this node acquired", registers });
    this.#rebalance = new Histogram({
      name: "keystate_cluster_rebalance_seconds",
      help: "Duration of rebalancing rounds that acquired or handed off shards",
      buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 2.5, 5, 10],
      registers,
    });
  }

  renewal(result: "ok" | "lost" | "error"): void {
    this.#renewals.inc({ result });
  }

  fenced(): void {
    this.#fenced.inc();
  }

  forwarded(result: "ok" | "moved" | "unreachable" | "error", seconds: number, transport: "peer" | "grpc"): void {
    this.#forwards[result]++;
    this.#forwardTransports[transport]++;
    this.#forwardLatency.observe(seconds);
  }

  handedOff(count: number): void {
    this.#handoffs.inc(count);
  }

  acquired(count: number): void {
    this.#acquisitions.inc(count);
  }

  rebalanced(seconds: number): void {
    this.#rebalance.observe(seconds);
  }
}

/** A counter with one label whose values are kept in `counts` (by label value) and read when scraped; a value still at 0 has no series. */
function countedInFields(registers: Registry[], name: string, help: string, label: string, counts: Readonly<Record<string, number>>): void {
  new Counter({
    name,
    help,
    labelNames: [label],
    registers,
    collect() {
      this.reset();
      for (const [value, count] of Object.entries(counts)) if (count > 0) this.inc({ [label]: value }, count);
    },
  });
}
