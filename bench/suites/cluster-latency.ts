// Forwarded vs local call on a 2-node cluster, same run: node A is called with keys whose
// shard A owns (local) and with keys B owns (A forwards each call to B over B's peer link), and B is
// called with its own keys (the forwarded call's work without the hop). Calls are sequential
// unary calls from one grpc-js client per node, in interleaved rounds (the order of the blocks
// rotates each round, so drift on a shared box hits all of them alike); then the same three
// with h2load, 1 connection x 1 stream, one key each. A's forward counter (/metrics) is read
// around every block, so each row shows how many of its calls A really forwarded. Two more
// blocks in every round time the bare hops (lib/bare-hop.ts): a framed echo over plain TCP
// (the floor under what the forwarded row adds) and a plain node:http2 call (the hop to a
// gRPC port), each between two processes pinned like the nodes.
import { startBareHop, type BareHop } from "../lib/bare-hop.js";
import { forwardsOk, keysOwnedBy, shardsLostBy, type ClusterMember, type ClusterViewJson } from "../lib/cluster.js";
import { GrpcJsUnary } from "../lib/grpcjs-unary.js";
import { GRPC_HEADERS, runLoad } from "../lib/h2load.js";
import { grpcFrame } from "../lib/grpc-client.js";
import { Recorder, type Latency } from "../lib/histogram.js";
import type { Pinning } from "../lib/pinning.js";
import { fmtUs, progress } from "../lib/progress.js";
import type { SuiteContext } from "../lib/result.js";
import { grpcPath, type Workload } from "../lib/workloads.js";

export type CallKind = "local on A" | "forwarded A → B" | "local on B";
export const CALL_KINDS: readonly CallKind[] = ["local on A", "forwarded A → B", "local on B"];

export interface KindFigure {
  readonly kind: CallKind;
  readonly latency: Latency;
  /** Calls A counted as forwarded (keystate_cluster_forwards_total, result ok) during this kind's timed calls. */
  readonly forwardedByA: number;
  readonly calls: number;
}

export interface LatencyFigures {
  /** Sequential calls from one grpc-js client. */
  readonly grpcJs: KindFigure[];
  readonly rounds: number;
  readonly callsPerBlock: number;
  /** Per round: p50 forwarded / p50 local on A. */
  readonly roundRatios: number[];
  /** The bare node:http2 hop, timed in its client process, in the same rounds (as many calls as each row). */
  readonly bareHop: { readonly latency: Latency; readonly calls: number };
  /** The bare TCP hop (one framed request/reply: the peer link's floor), likewise. */
  readonly bareTcpHop: { readonly latency: Latency; readonly calls: number };
  /** h2load -c1 -m1 (undefined: not run). */
  readonly h2load?: KindFigure[];
  readonly h2loadSeconds: number;
  readonly keysPerKind: number;
  /** `shard lost` lines of A and B while the rows were measured. */
  readonly shardsLost: number;
}

const KEYS_PER_KIND = 8;

export async function measureForwardLatency(ctx: SuiteContext, a: ClusterMember, b: ClusterMember, view: ClusterViewJson, persistenceId: string, workload: Workload, pin: Pinning, run: string, withH2load: boolean): Promise<LatencyFigures> {
  const suite = "cluster";
  const keys = {
    a: keysOwnedBy(view, persistenceId, a.id, `${run}-lat-${a.id}`, KEYS_PER_KIND),
    b: keysOwnedBy(view, persistenceId, b.id, `${run}-lat-${b.id}`, KEYS_PER_KIND),
  };
  const clientA = new GrpcJsUnary(a.serve.grpcPort);
  const clientB = new GrpcJsUnary(b.serve.grpcPort);
  const path = grpcPath(workload, workload.writeMethod);
  const plan: Record<CallKind, { client: GrpcJsUnary; keys: string[]; port: number }> = {
    "local on A": { client: clientA, keys: keys.a, port: a.serve.grpcPort },
    "forwarded A → B": { client: clientA, keys: keys.b, port: a.serve.grpcPort },
    "local on B": { client: clientB, keys: keys.b, port: b.serve.grpcPort },
  };
  const payloads = new Map([...keys.a, ...keys.b].map((k) => [k, workload.writePayload(k)]));
  const rounds = ctx.quick ? 4 : 10;
  const perBlock = ctx.quick ? 150 : 300;
  let bare: BareHop | undefined;
  let bareTcp: BareHop | undefined;
  try {
    await Promise.all([clientA.ready(), clientB.ready()]);
    // The same bytes as the forwarded row's hop carries: an Increase for one of B's keys.
    bare = await startBareHop(pin, path, payloads.get(keys.b[0]!)!, "h2");
    bareTcp = await startBareHop(pin, path, payloads.get(keys.b[0]!)!, "tcp");
    // Warm-up: entities resident on their owners, A's channel to B open, JIT settled.
    for (const kind of CALL_KINDS) {
      const { client, keys: ks } = plan[kind];
      for (let i = 0; i < (ctx.quick ? 200 : 1000); i++) await client.call(path, payloads.get(ks[i % ks.length]!)!);
    }
    await bare.time(ctx.quick ? 200 : 500);
    await bareTcp.time(ctx.quick ? 200 : 500);
    const bareTotal = new Recorder();
    const bareTcpTotal = new Recorder();
    const total = Object.fromEntries(CALL_KINDS.map((k) => [k, new Recorder()])) as Record<CallKind, Recorder>;
    const forwarded = Object.fromEntries(CALL_KINDS.map((k) => [k, 0])) as Record<CallKind, number>;
    const roundRatios: number[] = [];
    const lostBefore = shardsLostBy([a, b]);
    progress(suite, `  sequential grpc-js calls: ${rounds} rounds x ${CALL_KINDS.length} kinds x ${perBlock} calls (${KEYS_PER_KIND} keys per kind), and ${perBlock} bare node:http2 and TCP hops per round`);
    // Each round: the three kinds and the bare hops, in an order that rotates round by round.
    const blocks = [...CALL_KINDS, "bare hop", "bare TCP hop"] as const;
    for (let r = 0; r < rounds; r++) {
      const round = new Map<CallKind, Recorder>();
      for (let k = 0; k < blocks.length; k++) {
        const kind = blocks[(k + r) % blocks.length]!;
        if (kind === "bare hop" || kind === "bare TCP hop") {
          const [hop, into] = kind === "bare hop" ? [bare, bareTotal] : [bareTcp, bareTcpTotal];
          for (const ns of await hop.time(perBlock)) into.recordNs(ns);
          continue;
        }
        const { client, keys: ks } = plan[kind];
        const recorder = new Recorder();
        const before = await forwardsOk(a);
        for (let i = 0; i < perBlock; i++) {
          const payload = payloads.get(ks[i % ks.length]!)!;
          const start = process.hrtime.bigint();
          await client.call(path, payload);
          const ns = Number(process.hrtime.bigint() - start);
          recorder.recordNs(ns);
          total[kind].recordNs(ns);
        }
        forwarded[kind] += (await forwardsOk(a)) - before;
        round.set(kind, recorder);
      }
      roundRatios.push(round.get("forwarded A → B")!.summary().p50 / round.get("local on A")!.summary().p50);
    }
    const grpcJs = CALL_KINDS.map((kind) => ({ kind, latency: total[kind].summary(), forwardedByA: forwarded[kind], calls: rounds * perBlock }));
    for (const f of grpcJs) progress(suite, `    ${f.kind}: p50 ${fmtUs(f.latency.p50)}, p99 ${fmtUs(f.latency.p99)}; A forwarded ${f.forwardedByA} of ${f.calls}`);
    const bareHop = { latency: bareTotal.summary(), calls: bareTotal.count };
    progress(suite, `    bare node:http2 hop: p50 ${fmtUs(bareHop.latency.p50)}, p99 ${fmtUs(bareHop.latency.p99)} (${bareHop.calls} calls)`);
    const bareTcpHop = { latency: bareTcpTotal.summary(), calls: bareTcpTotal.count };
    progress(suite, `    bare TCP hop: p50 ${fmtUs(bareTcpHop.latency.p50)}, p99 ${fmtUs(bareTcpHop.latency.p99)} (${bareTcpHop.calls} calls)`);

    let h2load: KindFigure[] | undefined;
    const h2loadSeconds = ctx.quick ? 1 : 4;
    if (withH2load) {
      progress(suite, `  h2load -c1 -m1, ${h2loadSeconds} s per kind, one key each`);
      h2load = [];
      for (const kind of CALL_KINDS) {
        const { keys: ks, port } = plan[kind];
        const before = await forwardsOk(a);
        const result = await runLoad(
          { requests: [{ url: `http://127.0.0.1:${port}${path}`, body: grpcFrame(payloads.get(ks[0]!)!) }], headers: GRPC_HEADERS },
          { durationS: h2loadSeconds, connections: 1, streamsPerConnection: 1, pin: pin.load },
        );
        const fwd = (await forwardsOk(a)) - before;
        h2load.push({ kind, latency: result.latency, forwardedByA: fwd, calls: result.succeeded });
        progress(suite, `    ${kind}: p50 ${fmtUs(result.latency.p50)}, p99 ${fmtUs(result.latency.p99)}; ${result.succeeded} answered (${result.failed} failed); A forwarded ${fwd}`);
      }
    }
    const shardsLost = shardsLostBy([a, b]) - lostBefore;
    if (shardsLost > 0) progress(suite, `    ${shardsLost} shard leases lost while measuring`);
    return { grpcJs, rounds, callsPerBlock: perBlock, roundRatios, bareHop, bareTcpHop, ...(h2load ? { h2load } : {}), h2loadSeconds, keysPerKind: KEYS_PER_KIND, shardsLost };
  } finally {
    clientA.close();
    clientB.close();
    await bare?.stop();
    await bareTcp?.stop();
  }
}
