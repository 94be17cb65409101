// `npm run bench:cluster`: Keystate nodes in one cluster on one Redis (the bench's own
// redis-server, AOF with appendfsync always, as the end-to-end throughput rows), counter
// module deployed on the first node. (1) The cost of a forwarded call: on 2 nodes, A called
// with keys A owns vs keys B owns (A forwards to B), sequential unary calls. (2) Counter
// throughput on 1, 2 and 3 nodes of this box under the same h2load load, each as a ratio to
// 1 node in the same run, next to a control with each key sent to its owner. Nodes join one
// by one (and, in a full run, leave again, twice over, so every node count is measured on
// the way up and on the way down).
import { execFileSync } from "node:child_process";
import os from "node:os";
import { BARE_HOP_LABEL, BARE_TCP_HOP_LABEL } from "../lib/bare-hop.js";
import { persistenceIdOf, startMember, waitServing, waitSettled, type ClusterMember, type ClusterViewJson } from "../lib/cluster.js";
import type { Latency } from "../lib/histogram.js";
import { choosePinning } from "../lib/pinning.js";
import { ensureModuleBuilt } from "../lib/prepare.js";
import { fmtRate, fmtRatio, fmtUs, progress } from "../lib/progress.js";
import { REDIS_DURABILITY, startBenchRedis } from "../lib/redis.js";
import { goal, type Cell, type SuiteBody, type SuiteContext } from "../lib/result.js";
import { counterWorkload } from "../lib/workloads.js";
import { measureForwardLatency, type KindFigure, type LatencyFigures } from "./cluster-latency.js";
import { KEYS, measureClusterThroughput, NodeCountFigures, STREAMS_PER_KEY, type Placement } from "./cluster-throughput.js";

/** The default of `keystate serve` (host/cluster/README.md): the bench measures the cluster as shipped. */
const LEASE_MS = 5000;

function hasH2load(): boolean {
  try {
    execFileSync("h2load", ["--version"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

/** "+123.4 us" / "-5.20 us": a difference of two latencies. */
function fmtDelta(us: number | undefined): string {
  if (us === undefined || !Number.isFinite(us)) return "n/a";
  return `${us < 0 ? "-" : "+"}${fmtUs(Math.abs(us))}`;
}

function latencyRows(figures: readonly KindFigure[]): Cell[][] {
  const base = figures.find((f) => f.kind === "local on A")!.latency;
  return figures.map((f) => [
    f.kind,
    fmtUs(f.latency.p50),
    fmtUs(f.latency.p99),
    f.latency.n,
    f.kind === "local on A" ? "(baseline)" : fmtRatio(f.latency.p50, base.p50),
    f.kind === "local on A" ? "(baseline)" : fmtRatio(f.latency.p99, base.p99),
    f.kind === "local on A" ? "(baseline)" : `${fmtDelta(f.latency.p50 - base.p50)} / ${fmtDelta(f.latency.p99 - base.p99)}`,
    `${f.forwardedByA} of ${f.calls}`,
  ]);
}

/** A bare hop's row: no Keystate node is involved, so the columns relative to A do not apply. */
function bareHopRow(label: string, bare: LatencyFigures["bareHop"]): Cell[] {
  return [label, fmtUs(bare.latency.p50), fmtUs(bare.latency.p99), bare.latency.n, "n/a", "n/a", "n/a (no call to A; see the note)", "n/a (no Keystate node)"];
}

/** What forwarding adds at p50 over a local call on A. */
function forwardAdds(figures: readonly KindFigure[]): number {
  return figures.find((f) => f.kind === "forwarded A → B")!.latency.p50 - figures.find((f) => f.kind === "local on A")!.latency.p50;
}

/** How much of what forwarding adds at p50 is the round trip itself, by the bare hops of the same run. */
function floorNote(figures: readonly KindFigure[], tcp: Latency, h2: Latency, bareWhere = ""): string {
  const added = forwardAdds(figures);
  return `The forwarding hop adds ${fmtDelta(added)} at p50 over local on A; a bare TCP round trip (one framed request and its echo) between two processes pinned the same way takes ${fmtUs(tcp.p50)} (p99 ${fmtUs(tcp.p99)}${bareWhere}), so Keystate's own share of the hop is ${fmtDelta(added - tcp.p50)} at p50; a bare node:http2 round trip, the hop to a gRPC port, takes ${fmtUs(h2.p50)} (p99 ${fmtUs(h2.p99)}).`;
}

/** The hop alone: the forwarded call minus the same keys called on their owner directly. */
function hopNote(figures: readonly KindFigure[], what: string): string {
  const fwd = figures.find((f) => f.kind === "forwarded A → B")!.latency;
  const ownerB = figures.find((f) => f.kind === "local on B")!.latency;
  const localA = figures.find((f) => f.kind === "local on A")!.latency;
  return `${what}: the hop adds ${fmtDelta(fwd.p50 - localA.p50)} at p50 (${fmtRatio(fwd.p50, localA.p50)}) and ${fmtDelta(fwd.p99 - localA.p99)} at p99 (${fmtRatio(fwd.p99, localA.p99)}) over a local call on A; against the same keys called on their owner B directly, ${fmtDelta(fwd.p50 - ownerB.p50)} at p50 and ${fmtDelta(fwd.p99 - ownerB.p99)} at p99.`;
}

const LATENCY_COLUMNS = ["call", "p50", "p99", "calls", "p50 vs local on A", "p99 vs local on A", "added vs local on A (p50 / p99)", "forwarded by A (its /metrics)"];

export async function runCluster(ctx: SuiteContext): Promise<SuiteBody> {
  const suite = "cluster";
  const workload = counterWorkload;
  const wasm = ensureModuleBuilt(suite, workload.module);
  if (!wasm) throw new Error(`modules/${workload.module} does not build`);
  const persistenceId = persistenceIdOf(workload);
  const withH2load = hasH2load();
  const notes: string[] = [];
  if (!withH2load) notes.push("The h2load rows and the throughput table are missing: h2load is not installed (`bash scripts/ensure-system-deps.sh` installs nghttp2-client).");

  const cores = os.availableParallelism(); // before this process is pinned to one core
  const pin = choosePinning();
  // The grpc-js client of the latency rows runs in this process: on the load generator's core, off the nodes'.
  pin.pinPid(process.pid, "load");
  const redis = await startBenchRedis();
  pin.pinPid(redis.pid, "load");
  const run = `r${Date.now() % 100000}`;
  const clusterName = `bench-${run}`;
  const members: ClusterMember[] = [];
  const started = new Set<ClusterMember>();
  const byCount = new Map<string, NodeCountFigures>();
  const settleSeconds: string[] = [];
  const lostByReason = new Map<string, number>();
  const tallyLost = (member: ClusterMember) => {
    for (const [reason, count] of member.shardsLost) lostByReason.set(reason, (lostByReason.get(reason) ?? 0) + count);
  };
  let latency: LatencyFigures | undefined;
  // Up to 3 nodes and, in a full run, back down, twice: each count measured 4 times, alternating
  // with the others within seconds, so slow drift on a shared box cancels in the mean.
  const cycle = [1, 2, 3, 3, 2, 1];
  const sequence = ctx.quick ? [1, 2, 3] : [...cycle, ...cycle];
  try {
    for (const [step, n] of sequence.entries()) {
      let change = "";
      while (members.length < n) {
        const id = `node-${members.length + 1}`;
        progress(suite, `starting ${id} (cluster ${clusterName}, lease ${LEASE_MS} ms)`);
        const member = await startMember({ redisUrl: redis.url, cluster: clusterName, nodeId: id, leaseMs: LEASE_MS, deploy: members.length === 0 ? [wasm] : [], prefix: pin.server });
        members.push(member);
        started.add(member);
        change = `${id} joined`;
      }
      while (members.length > n) {
        const member = members.pop()!;
        progress(suite, `${member.id} leaving (SIGTERM: hands its shards off, then exits)`);
        await member.leave();
        tallyLost(member);
        started.delete(member);
        change = `${member.id} left`;
      }
      const t0 = performance.now();
      const view: ClusterViewJson = await waitSettled(members);
      await waitServing(members, workload);
      const settled = (performance.now() - t0) / 1000;
      if (change) settleSeconds.push(`${change}: ${settled.toFixed(1)} s`);
      progress(suite, `${n} node(s) settled${change ? ` ${settled.toFixed(1)} s after ${change}` : ""}: ${view.nodes.filter((x) => x.alive).map((x) => `${x.id} ${x.shards.length} shards`).join(", ")}`);

      if (n === 2 && !latency) {
        progress(suite, "forwarded vs local call (2 nodes)");
        latency = await measureForwardLatency(ctx, members[0]!, members[1]!, view, persistenceId, workload, pin, run, withH2load);
      }
      if (withH2load) {
        // With more than one node, also the control (every key sent to its owner); on the way down in the other order.
        const placements: Placement[] = n === 1 ? ["spread"] : step % cycle.length < cycle.length / 2 ? ["spread", "owner"] : ["owner", "spread"];
        for (const placement of placements) {
          let figures = byCount.get(`${n} ${placement}`);
          if (!figures) byCount.set(`${n} ${placement}`, (figures = new NodeCountFigures(n, placement)));
          await measureClusterThroughput(ctx, members, view, persistenceId, workload, pin, `${run}-s${step}`, figures);
        }
      }
    }
  } finally {
    for (const member of started) {
      tallyLost(member);
      await member.kill();
    }
    await redis.stop();
    pin.unpinPid(process.pid);
  }
  const lostTotal = [...lostByReason.values()].reduce((s, c) => s + c, 0);
  if (lostTotal > 0) {
    const reasons = [...lostByReason].map(([reason, count]) => `${count} ${reason}`).join(", ");
    notes.push(`The nodes logged ${lostTotal} \`shard lost\` line(s) in this run (${reasons}; "not renewed in time": a lease renewal was not confirmed within its safety deadline, which a node starved of CPU misses): calls on such a shard wait until a node acquires it again. The "shard leases lost" column and the latency tables' notes say how many fell inside the measurements; rows with losses measured a cluster recovering, not a steady one.`);
  }

  const counts = [...byCount.values()].sort((x, y) => x.nodes - y.nodes || (x.placement === "spread" ? -1 : 1));
  const one = byCount.get("1 spread")?.rps;
  const forwardedShare = (f: NodeCountFigures) => {
    const forwarded = f.runs.reduce((s, r) => s + r.forwarded, 0);
    const answered = f.runs.reduce((s, r) => s + r.succeeded, 0);
    return answered > 0 ? `${((100 * forwarded) / answered).toFixed(1)}%` : "n/a";
  };
  const throughputRows: Cell[][] = counts.map((f) => {
    const l = f.latency.summary();
    const answered = f.runs.reduce((s, r) => s + r.succeeded, 0);
    const applied = f.runs.reduce((s, r) => s + r.applied, 0);
    const failed = f.runs.reduce((s, r) => s + r.failed, 0);
    const control = f.nodes > 1 && f.placement === "spread" ? byCount.get(`${f.nodes} owner`)?.rps : undefined;
    return [
      `${f.nodes} node${f.nodes > 1 ? "s" : ""}`,
      f.nodes === 1 ? "the node (owns every key)" : f.placement === "spread" ? `spread: ${(KEYS * (f.nodes - 1)) / f.nodes} of ${KEYS} keys to a non-owner` : "each key to its owner (control)",
      fmtRate(f.rps),
      f.nodes === 1 ? "x1.00 (baseline)" : fmtRatio(f.rps, one),
      f.nodes === 1 ? "n/a" : f.placement === "owner" ? "(control)" : fmtRatio(f.rps, control),
      f.runs.map((r) => fmtRate(r.rps)).join(", "),
      fmtUs(l.p50),
      fmtUs(l.p99),
      forwardedShare(f),
      `${answered} / ${applied}${failed ? ` (${failed} failed)` : ""}`,
      f.runs.reduce((s, r) => s + r.shardsLost, 0),
    ];
  });

  const durability = `${REDIS_DURABILITY}; reply after the write is acknowledged`;
  const pinning = `${pin.describe.replace("server process(es)", "every Keystate node")}; the latency rows' grpc-js client runs in the bench process, pinned with h2load`;
  const tables = [];
  if (latency) {
    tables.push({
      title: `Forwarded vs local call, 2 nodes, ${workload.describe}: sequential unary calls from one grpc-js client`,
      columns: LATENCY_COLUMNS,
      rows: [...latencyRows(latency.grpcJs), bareHopRow(BARE_TCP_HOP_LABEL, latency.bareTcpHop), bareHopRow(BARE_HOP_LABEL, latency.bareHop)],
      notes: [
        `Two nodes (node-1 = A, node-2 = B, ${latency.keysPerKind} keys per row, shard owner from GET /cluster and shardOf()); state in ${durability}. "local on A": A called with keys whose shard A owns; "forwarded A → B": A called with keys B owns, so A forwards each call to B over B's peer link (one length-prefixed frame each way on a TCP connection, host/cluster/peer-*.ts); "local on B": the same B-owned keys called on B directly (the forwarded call's work without the hop). ${latency.rounds} rounds of ${latency.callsPerBlock} calls per row, one call at a time, the rows' order rotating each round; every sample is in the p50/p99. Per-round p50 ratio forwarded / local on A: ${fmtRatioRange(latency.roundRatios)}.`,
        `"${BARE_TCP_HOP_LABEL}": the floor of the peer link's hop on this box, no Keystate code and no Redis in it: a plain node:net server that echoes each length-prefixed frame and a plain node:net client on one connection (bench/servers/bare-tcp-echo.ts, bare-tcp-client.ts). "${BARE_HOP_LABEL}": the same for a gRPC-shaped HTTP/2 call, the hop to a node's gRPC port (forwarding took it before the peer link, and a server stream still does): a plain node:http2 server that echoes each POST as a gRPC reply (200, application/grpc, trailer grpc-status 0) and a plain node:http2 client on one session (bench/servers/bare-h2-echo.ts, bare-h2-client.ts). Each is two processes pinned to the nodes' core as A and B are, sending the same Increase request bytes one call at a time, each call timed in the client process; ${latency.callsPerBlock} calls per round as two more blocks in the same rotation, after a warm-up. In a forwarded call A is that client and B that server.`,
        hopNote(latency.grpcJs, "grpc-js client") + " " + floorNote(latency.grpcJs, latency.bareTcpHop.latency, latency.bareHop.latency) + (latency.shardsLost > 0 ? ` ${latency.shardsLost} shard leases were lost on A or B while these rows (and the h2load ones below) were measured: some calls include waiting for a new owner.` : ""),
        `"forwarded by A": the growth of A's keystate_cluster_forwards_total{result="ok"} during the row's timed calls (a check that the forwarded row was forwarded and the local rows were not). Pinning: ${pinning}; both nodes share core 0, so the hop includes a switch between the two processes on that core.`,
      ],
    });
    if (latency.h2load) {
      tables.push({
        title: "The same three calls from h2load, 1 connection x 1 stream (one request in flight)",
        columns: LATENCY_COLUMNS,
        rows: latencyRows(latency.h2load),
        notes: [
          `One h2load process per row, ${latency.h2loadSeconds} s, one key (h2load sends one body per process), gRPC frames as in the throughput suite: a native client, so less of each figure is the client's own time than with grpc-js. "calls" counts the requests h2load saw complete; A's forward counter can be one higher (the call in flight when h2load stopped).`,
          hopNote(latency.h2load, "h2load") + " " + floorNote(latency.h2load, latency.bareTcpHop.latency, latency.bareHop.latency, "; the bare hop rows of the table above"),
        ],
      });
    }
  }
  if (counts.length > 0) {
    tables.push({
      title: `Counter throughput on 1, 2 and 3 nodes of this box, ${workload.describe}`,
      columns: ["cluster", "calls sent to", "req/s", "vs 1 node", "vs the control (same nodes, nothing forwarded)", "runs (req/s)", "p50", "p99", "calls forwarded (measured)", "answered / applied", "shard leases lost"],
      rows: throughputRows,
      notes: [
        `Same load for every row: ${KEYS} h2load processes (one key each) x 1 connection x ${STREAMS_PER_KEY} streams = ${KEYS * STREAMS_PER_KEY} requests in flight (${KEYS} keys: a multiple of 1, 2 and 3, so each node owns ${KEYS}/N keys and is sent ${KEYS}/N keys, 1/N of them its own). "spread": with N nodes (N-1)/N of the keys are called on a node that forwards them to the owner; "control": the same number of keys per node, each called on its owner, so nothing is forwarded and the only change from 1 node is that N processes share the work. "calls forwarded (measured)" is the growth of the nodes' forward counters over the calls answered (a forwarded key is slower, so its h2load process sends fewer calls). State in ${durability}; nodes joined one at a time${ctx.quick ? "" : " and then left one at a time (SIGTERM: shards handed off), twice over, so each row was measured twice on the way up and twice on the way down (\"runs\", in order; spread and control in the opposite order on the way down); req/s is their mean, p50/p99 over every request of all runs"}. Each run starts once every node's GET /cluster shows the shards where the assignment puts them (seconds from a joining node being up, or a leaving node's exit, to that: ${settleSeconds.join("; ")}).`,
        `**This box has ${cores} cores and everything shares them: ${pinning}.** More nodes therefore cannot add CPU here, and the ratios are not a scaling figure: with the nodes' CPU fixed, they show what it costs to split one core's work over N processes (the control) and what forwarding adds on top (spread vs control: each forwarded call is a second gRPC call, client side on one node and server side on the owner). Scaling out needs a node per core or per machine.`,
      ],
    });
  }

  const figures: Record<string, number | undefined> = {};
  for (const f of latency?.grpcJs ?? []) {
    figures[`grpc-js | ${f.kind} | p50 us`] = f.latency.p50;
    figures[`grpc-js | ${f.kind} | p99 us`] = f.latency.p99;
  }
  if (latency) {
    figures["bare node:http2 hop | p50 us"] = latency.bareHop.latency.p50;
    figures["bare node:http2 hop | p99 us"] = latency.bareHop.latency.p99;
    figures["bare TCP hop | p50 us"] = latency.bareTcpHop.latency.p50;
    figures["bare TCP hop | p99 us"] = latency.bareTcpHop.latency.p99;
  }
  for (const f of latency?.h2load ?? []) {
    figures[`h2load c1 m1 | ${f.kind} | p50 us`] = f.latency.p50;
    figures[`h2load c1 m1 | ${f.kind} | p99 us`] = f.latency.p99;
  }
  for (const f of counts) {
    figures[`${f.nodes} nodes | ${f.placement} | rps`] = f.rps;
    figures[`${f.nodes} nodes | ${f.placement} | rps vs 1 node`] = one ? f.rps / one : undefined;
  }
  return {
    title: "Cluster: forwarded calls and 1, 2, 3 nodes on one box",
    tables,
    goals: latency
      ? [goal("a forwarded call costs at most one extra loopback hop: forwarded p50 <= local p50 + 150 us (grpc-js client)", `+${fmtUs(forwardAdds(latency.grpcJs))}`, forwardAdds(latency.grpcJs) <= 150)]
      : [],
    goalsFrom: "issue 14",
    notes,
    charts: counts.length > 0
      ? [{
          file: "cluster.svg",
          title: `Counter req/s, ${KEYS * STREAMS_PER_KEY} in flight: 1, 2, 3 nodes sharing one core`,
          unit: "k req/s",
          bars: counts.map((f) => ({ label: f.nodes === 1 ? "1 node" : `${f.nodes} nodes, ${f.placement === "spread" ? "keys spread" : "each key to its owner"}`, value: f.rps / 1000, baseline: f.nodes === 1 })),
        }]
      : [],
    figures,
  };
}

function fmtRatioRange(ratios: readonly number[]): string {
  if (ratios.length === 0) return "n/a";
  const sorted = [...ratios].sort((a, b) => a - b);
  const median = sorted[Math.floor(sorted.length / 2)]!;
  return `median x${median.toFixed(2)}, range x${sorted[0]!.toFixed(2)} to x${sorted[sorted.length - 1]!.toFixed(2)} over ${ratios.length} rounds`;
}
