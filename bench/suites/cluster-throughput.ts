// Counter throughput on a cluster of N nodes: h2load spread over the nodes with the same
// total load whatever N is: 12 keys, one h2load process per key (h2load sends one body per
// process) with 1 connection x 5 streams, 60 requests in flight. Keys are placed by
// lib/key-spread.ts: each node owns 12/N keys and is sent 12/N keys, 1/N of them its own,
// so (N-1)/N of the keys are called on a node that forwards them to the owner. After each
// run the counters are read back (applied >= answered), and every node's forward counter
// (/metrics) gives the share of calls that really were forwarded. The control for N > 1
// nodes: the same keys each sent to its owner, so nothing is forwarded and what differs
// from 1 node is only that N processes share the work.
import { forwardsOk, keysOwnedBy, shardsLostBy, type ClusterMember, type ClusterViewJson } from "../lib/cluster.js";
import { GrpcClient, grpcFrame } from "../lib/grpc-client.js";
import { GRPC_HEADERS, runLoad, type LoadTarget } from "../lib/h2load.js";
import { Recorder } from "../lib/histogram.js";
import { spreadKeys, type KeyPlacement } from "../lib/key-spread.js";
import type { Pinning } from "../lib/pinning.js";
import { fmtRate, fmtUs, progress } from "../lib/progress.js";
import type { SuiteContext } from "../lib/result.js";
import { grpcPath, type Workload } from "../lib/workloads.js";

export const KEYS = 12;
export const STREAMS_PER_KEY = 5;

export interface ThroughputRun {
  readonly nodes: number;
  readonly rps: number;
  readonly succeeded: number;
  readonly failed: number;
  readonly applied: number;
  /** Calls the nodes forwarded (sum of their forward counters) during the run. */
  readonly forwarded: number;
  /** `shard lost` log lines of the nodes during the run (leases that ran out: calls on those shards waited). */
  readonly shardsLost: number;
}

/** "spread": keys placed by spreadKeys ((N-1)/N sent to a non-owner); "owner": every key sent to its owner. */
export type Placement = "spread" | "owner";

export class NodeCountFigures {
  readonly runs: ThroughputRun[] = [];
  readonly latency = new Recorder();
  constructor(
    readonly nodes: number,
    readonly placement: Placement,
  ) {}

  /** Mean req/s of the runs (as many on the way up as on the way down, so linear drift cancels). */
  get rps(): number {
    return this.runs.reduce((s, r) => s + r.rps, 0) / this.runs.length;
  }
}

async function appliedOn(client: GrpcClient, workload: Workload, keys: readonly string[]): Promise<number> {
  let total = 0;
  for (const key of keys) total += workload.applied(await client.ok(grpcPath(workload, workload.readMethod), workload.readPayload(key)));
  return total;
}

/** One warm-up and one timed h2load run on `members` (settled, as `view` shows). */
export async function measureClusterThroughput(ctx: SuiteContext, members: readonly ClusterMember[], view: ClusterViewJson, persistenceId: string, workload: Workload, pin: Pinning, prefix: string, into: NodeCountFigures): Promise<void> {
  const suite = "cluster";
  const n = members.length;
  const placements: KeyPlacement[] = into.placement === "spread" ? spreadKeys(n, KEYS) : Array.from({ length: KEYS }, (_, j) => ({ owner: j % n, ingress: j % n }));
  const keys = placements.map((p, i) => keysOwnedBy(view, persistenceId, members[p.owner]!.id, `${prefix}-n${n}-${into.placement}-k${i}`, 1)[0]!);
  const target: LoadTarget = {
    requests: placements.map((p, i) => ({ url: `http://127.0.0.1:${members[p.ingress]!.serve.grpcPort}${grpcPath(workload, workload.writeMethod)}`, body: grpcFrame(workload.writePayload(keys[i]!)) })),
    headers: GRPC_HEADERS,
  };
  const durationS = ctx.quick ? 2 : 5;
  const warmupS = ctx.quick ? 1 : 2;
  const reader = new GrpcClient(members[0]!.serve.grpcPort);
  try {
    await runLoad(target, { durationS: warmupS, connections: 1, streamsPerConnection: STREAMS_PER_KEY, pin: pin.load });
    progress(suite, `  ${n} node(s), ${into.placement === "spread" ? "keys spread" : "each key sent to its owner"}: h2load ${durationS} s, ${KEYS} processes x 1 connection x ${STREAMS_PER_KEY} streams, ${placements.filter((p) => p.owner !== p.ingress).length} of ${KEYS} keys sent to a node that does not own them`);
    const before = await appliedOn(reader, workload, keys);
    const forwardsBefore = await Promise.all(members.map(forwardsOk));
    const lostBefore = shardsLostBy(members);
    const result = await runLoad(target, { durationS, connections: 1, streamsPerConnection: STREAMS_PER_KEY, pin: pin.load, record: into.latency });
    const forwardsAfter = await Promise.all(members.map(forwardsOk));
    const shardsLost = shardsLostBy(members) - lostBefore;
    const applied = (await appliedOn(reader, workload, keys)) - before;
    const forwarded = forwardsAfter.reduce((s, f, i) => s + f - forwardsBefore[i]!, 0);
    into.runs.push({ nodes: n, rps: result.rps, succeeded: result.succeeded, failed: result.failed, applied, forwarded, shardsLost });
    progress(suite, `    ${fmtRate(result.rps)}, p50 ${fmtUs(result.latency.p50)}, p99 ${fmtUs(result.latency.p99)}; answered ${result.succeeded}, failed ${result.failed}, applied ${applied}, forwarded ${forwarded}${shardsLost ? `; ${shardsLost} shard leases lost during the run` : ""}`);
  } finally {
    reader.close();
  }
}
