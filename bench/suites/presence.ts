// `npm run bench:presence`: replicated (CRDT) entities across cluster nodes, with the
// presence example (modules/presence, a Vote CRDT). Two real `keystate serve --redis
// --cluster` processes (a, b) on the bench's Redis (AOF, appendfsync always), presence
// deployed on a and loaded by b from the cluster's store. One flip = open a Connect for a
// user on a, time until a Monitor stream for that user delivers {online: true}; cancel the
// Connect, time until it delivers offline. Cross-node: the Monitor is open on b (a applies
// the vote, saves its copy in Redis, publishes the delta on pub/sub, b merges it and tells
// its stream). Same-node baseline, same run: the Monitor is open on a. The two kinds run in
// interleaved blocks, so drift on a shared box hits both alike. Around the timed flips, a's
// replication counters (/metrics) give the bytes published per change.
import { join } from "node:path";
import { startMember, waitSettled, type ClusterMember } from "../lib/cluster.js";
import { streamClient, type OpenStream, type StreamClient } from "../lib/grpc-stream.js";
import { Recorder, type Latency } from "../lib/histogram.js";
import { grown, readCounters } from "../lib/metrics.js";
import { REPO_ROOT } from "../lib/paths.js";
import { choosePinning } from "../lib/pinning.js";
import { ensureModuleBuilt } from "../lib/prepare.js";
import { fmtRatio, fmtUs, progress } from "../lib/progress.js";
import { REDIS_DURABILITY, startBenchRedis } from "../lib/redis.js";
import { goal, type Cell, type SuiteBody, type SuiteContext } from "../lib/result.js";
import { Redis } from "ioredis";

const SUITE = "presence";
const PROTO_DIR = join(REPO_ROOT, "modules", "presence", "proto");
const SERVICE = "keystate.examples.presence.Presence";
/** The default of `keystate serve`: the bench measures the cluster as shipped (anti-entropy every 1000 ms, the default too). */
const LEASE_MS = 5000;
/** Users per kind, each with its Monitor open for the whole run; flips cycle through them. */
const USERS_PER_KIND = 4;
/** A flip not seen within this long fails the suite (anti-entropy would have healed a lost message within ~2 s). */
const FLIP_TIMEOUT_MS = 10_000;
const GOAL_P50_MS = 10;
/**
 * Connects (each one cancelled) per client connection before the bench replaces it, untimed.
 * Measured here: a node closes a client connection ("Session closed with error code 2",
 * every stream on it ends INTERNAL) once it has reset about 1000 + 33/s streams, i.e. after
 * ~1300 cancels at this bench's ~200 a second; that matches the rapid-reset limit of nghttp2
 * (1.61 in Node 20.20) under the node's grpc-js server. A presence client cancels far less
 * often, so the bench takes a fresh connection well before the burst is spent, and keeps the
 * Monitors on connections of their own.
 */
const CONNECTS_PER_CONNECTION = 500;

const CHANGES_SENT = "keystate_crdt_changes_sent_total";
const BYTES_SENT = "keystate_crdt_sent_bytes_total";
const CHANGES_RECEIVED = "keystate_crdt_changes_received_total";
const GAPS = "keystate_crdt_gaps_total";
const COPIES_PULLED = "keystate_crdt_copies_pulled_total";
const COUNTERS = [CHANGES_SENT, BYTES_SENT, CHANGES_RECEIVED, GAPS, COPIES_PULLED];

type Kind = "cross-node" | "same-node";
const KINDS: readonly Kind[] = ["cross-node", "same-node"];

interface OnlineStatus {
  online: boolean;
}

interface Watched {
  readonly user: string;
  readonly stream: OpenStream<OnlineStatus>;
  /** Index of the next message not yet accounted for. */
  seen: number;
}

interface KindStats {
  readonly online: Recorder;
  readonly offline: Recorder;
  flips: number;
  /** Monitor messages that were not the expected flip (a repeat of the status, or a flip seen twice). */
  extra: number;
}

function nsSince(start: bigint, end: bigint): number {
  return Number(end - start);
}

/** The client Connects are opened with: a new connection every CONNECTS_PER_CONNECTION Connects. */
class ConnectClients {
  #client: StreamClient | undefined;
  #used = 0;
  total = 0;
  connections = 0;
  /** Times the connection was found down between two Connects (the server closed it), and set up again untimed. */
  dropped = 0;

  constructor(readonly make: () => StreamClient) {}

  async get(): Promise<StreamClient> {
    if (this.#client === undefined || this.#used >= CONNECTS_PER_CONNECTION) {
      this.#client?.close();
      this.#client = this.make();
      await this.#client.ready();
      this.#used = 0;
      this.connections++;
    } else if (!this.#client.isReady()) {
      this.dropped++;
      await this.#client.ready();
    }
    this.#used++;
    this.total++;
    return this.#client;
  }

  close(): void {
    this.#client?.close();
  }
}

/** Until a Monitor on `client` answers with the current status (the module is loaded there). */
async function waitServingPresence(client: StreamClient, node: string, user: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = "";
  for (;;) {
    const probe = client.open<OnlineStatus>("Monitor", { name: user }, 5_000);
    try {
      await probe.next(0, () => true, 5_000);
      return;
    } catch (err) {
      last = (await Promise.race([probe.ended.then((e) => `status ${e.code}: ${e.details}`), new Promise<string>((r) => setTimeout(() => r((err as Error).message), 100))]));
    } finally {
      probe.cancel();
    }
    if (Date.now() > deadline) throw new Error(`node ${node} did not serve ${SERVICE} within ${timeoutMs} ms (last: ${last})`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

/**
 * One flip on `watched`'s Monitor: Connect on a (through `connectClient`) → online seen,
 * cancel → offline seen. Returns both latencies (ns) and how many unexpected messages came first.
 */
async function flip(connects: ConnectClients, watched: Watched): Promise<{ onlineNs: number; offlineNs: number; extra: number }> {
  const connectClient = await connects.get();
  const from = watched.seen;
  const start = process.hrtime.bigint();
  const connect = connectClient.open<unknown>("Connect", { name: watched.user }, 120_000);
  const endedEarly = connect.ended.then((e) => {
    throw new Error(`Connect for ${watched.user} ended before it was cancelled: status ${e.code} ${e.details}`);
  });
  endedEarly.catch(() => undefined);
  const on = await Promise.race([watched.stream.next(from, (s) => s.online === true, FLIP_TIMEOUT_MS), endedEarly]).catch((err: Error) => {
    throw new Error(`flip ${connects.total} (Connect ${connects.total} on this run's connection ${connects.connections}): ${err.message}`);
  });
  const cancelAt = process.hrtime.bigint();
  connect.cancel();
  const off = await watched.stream.next(on.index + 1, (s) => s.online !== true, FLIP_TIMEOUT_MS).catch((err: Error) => {
    throw new Error(`flip ${connects.total} (cancel): ${err.message}`);
  });
  watched.seen = off.index + 1;
  await connect.ended;
  return { onlineNs: nsSince(start, on.message.atNs), offlineNs: nsSince(cancelAt, off.message.atNs), extra: on.index - from + (off.index - on.index - 1) };
}

/** The bare pub/sub hop from this process: PUBLISH on one connection → the message on a subscribed one (sequential). */
async function pubSubFloor(url: string, samples: number, bytes: number): Promise<Latency> {
  const publisher = new Redis(url);
  const subscriber = new Redis(url);
  try {
    const channel = `bench-presence-floor-${process.pid}`;
    await subscriber.subscribe(channel);
    let waiting: ((at: bigint) => void) | undefined;
    subscriber.on("messageBuffer", () => {
      const at = process.hrtime.bigint();
      const w = waiting;
      waiting = undefined;
      w?.(at);
    });
    const payload = Buffer.alloc(bytes, 7);
    const recorder = new Recorder();
    for (let i = -50; i < samples; i++) {
      const arrived = new Promise<bigint>((resolve) => (waiting = resolve));
      const start = process.hrtime.bigint();
      await publisher.publish(channel, payload);
      const at = await arrived;
      if (i >= 0) recorder.recordNs(nsSince(start, at));
    }
    return recorder.summary();
  } finally {
    publisher.disconnect();
    subscriber.disconnect();
  }
}

/** "+123.4 us" / "-5.20 us": a difference of two latencies. */
function fmtDelta(us: number): string {
  if (!Number.isFinite(us)) return "n/a";
  return `${us < 0 ? "-" : "+"}${fmtUs(Math.abs(us))}`;
}

function fmtMs(us: number): string {
  return `${(us / 1000).toFixed(2)} ms`;
}

export async function runPresence(ctx: SuiteContext): Promise<SuiteBody> {
  const wasm = ensureModuleBuilt(SUITE, "presence");
  if (!wasm) throw new Error("modules/presence does not build");
  const notes: string[] = [];
  const pin = choosePinning();
  // The grpc-js clients run in this process: on the load core with Redis, off the nodes' core.
  pin.pinPid(process.pid, "load");
  const redis = await startBenchRedis();
  pin.pinPid(redis.pid, "load");
  const run = `p${Date.now() % 100000}`;
  const cluster = `bench-${run}`;
  const members: ClusterMember[] = [];
  const clients: StreamClient[] = [];
  let connects: ConnectClients | undefined;
  let connectStats = { total: 0, connections: 0, dropped: 0 };
  const monitors: Watched[] = [];
  const stats = Object.fromEntries(KINDS.map((k) => [k, { online: new Recorder(), offline: new Recorder(), flips: 0, extra: 0 }])) as Record<Kind, KindStats>;
  const roundRatios: { online: number[]; offline: number[] } = { online: [], offline: [] };
  const rounds = ctx.quick ? 4 : 40;
  const perBlock = ctx.quick ? 25 : 50;
  const warmupFlips = ctx.quick ? 20 : 100;
  const budgetMs = ctx.budget(90_000, 8_000);
  let roundsDone = 0;
  let floor: Latency | undefined;
  let writeFloor: Latency | undefined;
  let before: Record<string, number | undefined> = {};
  let after: Record<string, number | undefined> = {};
  let beforeB: Record<string, number | undefined> = {};
  let afterB: Record<string, number | undefined> = {};
  let monitorOpenChanges: number | undefined;
  let trailing = 0;
  let settleSeconds = 0;
  try {
    progress(SUITE, `starting node a (cluster ${cluster}, presence deployed) and node b`);
    const a = await startMember({ redisUrl: redis.url, cluster, nodeId: "a", leaseMs: LEASE_MS, deploy: [wasm], prefix: pin.server });
    members.push(a);
    const b = await startMember({ redisUrl: redis.url, cluster, nodeId: "b", leaseMs: LEASE_MS, prefix: pin.server });
    members.push(b);
    const t0 = performance.now();
    await waitSettled(members);
    const onA = streamClient(PROTO_DIR, "presence.proto", SERVICE, a.serve.grpcPort);
    clients.push(onA);
    const onB = streamClient(PROTO_DIR, "presence.proto", SERVICE, b.serve.grpcPort);
    clients.push(onB);
    connects = new ConnectClients(() => streamClient(PROTO_DIR, "presence.proto", SERVICE, a.serve.grpcPort));
    await Promise.all([onA.ready(), onB.ready()]);
    await Promise.all([waitServingPresence(onA, "a", `${run}-probe`), waitServingPresence(onB, "b", `${run}-probe`)]);
    settleSeconds = (performance.now() - t0) / 1000;
    progress(SUITE, `2 nodes settled and serving presence ${settleSeconds.toFixed(1)} s after b started`);

    // Monitors stay open for the whole run: cross-node users watched on b, same-node users on a.
    const countersBeforeMonitors = await readCounters(a.serve.httpPort, COUNTERS);
    const users: Record<Kind, Watched[]> = { "cross-node": [], "same-node": [] };
    for (const kind of KINDS) {
      for (let i = 0; i < USERS_PER_KIND; i++) {
        const user = `${run}-${kind === "cross-node" ? "x" : "s"}${i}`;
        const stream = (kind === "cross-node" ? onB : onA).open<OnlineStatus>("Monitor", { name: user });
        const first = await stream.next(0, () => true, FLIP_TIMEOUT_MS);
        if (first.message.value.online) throw new Error(`a fresh user ${user} is online before any Connect`);
        const watched: Watched = { user, stream, seen: 1 };
        users[kind].push(watched);
        monitors.push(watched);
      }
    }
    monitorOpenChanges = grown(countersBeforeMonitors, await readCounters(a.serve.httpPort, COUNTERS), CHANGES_SENT);

    progress(SUITE, `warm-up: ${warmupFlips} untimed flips per kind`);
    for (const kind of KINDS) for (let i = 0; i < warmupFlips; i++) await flip(connects, users[kind][i % USERS_PER_KIND]!);

    floor = await pubSubFloor(redis.url, ctx.quick ? 300 : 2000, 64);
    writeFloor = await durableWriteFloor(redis.url, ctx.quick ? 300 : 2000);
    progress(SUITE, `from this process: Redis pub/sub hop p50 ${fmtUs(floor.p50)}, p99 ${fmtUs(floor.p99)}; durable SET p50 ${fmtUs(writeFloor.p50)}, p99 ${fmtUs(writeFloor.p99)}`);

    [before, beforeB] = await Promise.all([readCounters(a.serve.httpPort, COUNTERS), readCounters(b.serve.httpPort, COUNTERS)]);
    progress(SUITE, `timed: up to ${rounds} rounds x ${KINDS.length} kinds x ${perBlock} flips (budget ${(budgetMs / 1000).toFixed(0)} s), ${USERS_PER_KIND} users per kind`);
    const deadline = performance.now() + budgetMs;
    for (let r = 0; r < rounds; r++) {
      if (r >= 2 && performance.now() > deadline) break;
      const round = new Map<Kind, { online: Recorder; offline: Recorder }>();
      for (let k = 0; k < KINDS.length; k++) {
        const kind = KINDS[(k + r) % KINDS.length]!;
        const block = { online: new Recorder(), offline: new Recorder() };
        for (let i = 0; i < perBlock; i++) {
          const result = await flip(connects, users[kind][i % USERS_PER_KIND]!);
          block.online.recordNs(result.onlineNs);
          block.offline.recordNs(result.offlineNs);
          stats[kind].online.recordNs(result.onlineNs);
          stats[kind].offline.recordNs(result.offlineNs);
          stats[kind].flips++;
          stats[kind].extra += result.extra;
        }
        round.set(kind, block);
      }
      const cross = round.get("cross-node")!;
      const same = round.get("same-node")!;
      roundRatios.online.push(cross.online.summary().p50 / same.online.summary().p50);
      roundRatios.offline.push(cross.offline.summary().p50 / same.offline.summary().p50);
      roundsDone++;
    }
    [after, afterB] = await Promise.all([readCounters(a.serve.httpPort, COUNTERS), readCounters(b.serve.httpPort, COUNTERS)]);
    // A repeated status after the last flip would show up here.
    await new Promise((resolve) => setTimeout(resolve, 200));
    for (const w of monitors) trailing += w.stream.messages.length - w.seen;
    progress(SUITE, `  ${connects.total} Connects on ${connects.connections} client connection(s) (a new one every ${CONNECTS_PER_CONNECTION}); found closed by the server between flips: ${connects.dropped}`);
    connectStats = { total: connects.total, connections: connects.connections, dropped: connects.dropped };
    for (const kind of KINDS) {
      const s = stats[kind];
      progress(SUITE, `  ${kind}: online p50 ${fmtUs(s.online.summary().p50)} p99 ${fmtUs(s.online.summary().p99)}; offline p50 ${fmtUs(s.offline.summary().p50)} p99 ${fmtUs(s.offline.summary().p99)} (${s.flips} flips)`);
    }
  } finally {
    for (const w of monitors) w.stream.cancel();
    for (const c of clients) c.close();
    connects?.close();
    for (const m of members) await m.kill();
    await redis.stop();
    pin.unpinPid(process.pid);
  }

  const summary = Object.fromEntries(KINDS.map((k) => [k, { online: stats[k].online.summary(), offline: stats[k].offline.summary() }])) as Record<Kind, { online: Latency; offline: Latency }>;
  const cross = summary["cross-node"];
  const same = summary["same-node"];
  const flips = stats["cross-node"].flips + stats["same-node"].flips;
  const changes = grown(before, after, CHANGES_SENT);
  const bytes = grown(before, after, BYTES_SENT);
  const received = grown(beforeB, afterB, CHANGES_RECEIVED);
  const gaps = grown(beforeB, afterB, GAPS);
  const pulled = grown(beforeB, afterB, COPIES_PULLED);
  const bytesPerChange = changes && bytes !== undefined ? bytes / changes : undefined;
  const extra = stats["cross-node"].extra + stats["same-node"].extra + trailing;

  const row = (label: string, what: "online" | "offline", kind: Kind): Cell[] => {
    const l = summary[kind][what];
    const base = same[what];
    return [
      label,
      fmtUs(l.p50),
      fmtUs(l.p99),
      fmtUs(l.max),
      l.n,
      kind === "same-node" ? "(baseline)" : fmtRatio(l.p50, base.p50),
      kind === "same-node" ? "(baseline)" : fmtRatio(l.p99, base.p99),
      kind === "same-node" ? "(baseline)" : `${fmtDelta(l.p50 - base.p50)} / ${fmtDelta(l.p99 - base.p99)}`,
    ];
  };
  const pinning = pin.server.length > 0 ? "both Keystate nodes pinned to core 0; redis-server and the bench process (its grpc-js clients) to core 1 (taskset)" : pin.describe;
  const durability = `${REDIS_DURABILITY}`;
  const tables = [
    {
      title: "Presence flip seen by a Monitor stream: Connect on node a, Monitor on node b (cross-node) vs on node a (same-node)",
      columns: ["flip seen", "p50", "p99", "max", "samples", "p50 vs same-node", "p99 vs same-node", "added by the other node (p50 / p99)"],
      rows: [
        row("online seen on b (Connect opened on a)", "online", "cross-node"),
        row("online seen on a (same-node baseline)", "online", "same-node"),
        row("offline seen on b (Connect cancelled on a)", "offline", "cross-node"),
        row("offline seen on a (same-node baseline)", "offline", "same-node"),
        ...(floor ? [["floor: Redis PUBLISH → message on a subscriber (ioredis, bench process, 64 B)", fmtUs(floor.p50), fmtUs(floor.p99), fmtUs(floor.max), floor.n, "", "", ""] as Cell[]] : []),
        ...(writeFloor ? [["floor: Redis SET acknowledged, fsynced (ioredis, bench process, 64 B)", fmtUs(writeFloor.p50), fmtUs(writeFloor.p99), fmtUs(writeFloor.max), writeFloor.n, "", "", ""] as Cell[]] : []),
      ],
      notes: [
        `Two \`keystate serve --redis --cluster\` nodes (a with presence deployed, b loading it from the cluster's store; lease ${LEASE_MS} ms and anti-entropy every 1000 ms, the defaults) on one redis-server, ${durability}. One flip: a grpc-js client (built from presence.proto with @grpc/proto-loader) opens \`Connect\` for a user on a and the time runs until that user's \`Monitor\` stream delivers {online: true}; then the Connect is cancelled and the time runs until the Monitor delivers offline. Each message is timestamped in the client's data handler. Cross-node: a applies the vote, saves its copy in Redis, publishes the delta on pub/sub; b merges it into its resident replica and writes to its stream. Same-node: the Monitor is on a, so no hop (a still saves and publishes).`,
        `${USERS_PER_KIND} users per kind, each Monitor open for the whole run (the Monitors on a on a client connection of their own), flips cycling through them; ${warmupFlips} untimed flips per kind first. The Connects go over another client connection, replaced (untimed) every ${CONNECTS_PER_CONNECTION} Connects: a node closes a connection once it has reset about 1000 + 33/s streams (nghttp2's rapid-reset limit under grpc-js, as measured: ~1300 cancels in), which would also end every Monitor sharing it. ${roundsDone} rounds of ${perBlock} flips per kind, the two kinds alternating which goes first, one flip at a time; every flip is in the p50/p99. Per-round p50 ratio cross / same-node: online ${fmtRatioRange(roundRatios.online)}; offline ${fmtRatioRange(roundRatios.offline)}.`,
        `The floor rows, measured from the bench process on the same Redis in the same run: the bare pub/sub hop the cross-node path adds (besides b's merge and its own stream write), and one durable Redis write, which every flip pays on both kinds (a saves its copy before it answers, tells its streams or publishes). Pinning: ${pinning}; both nodes share core 0, so b's work on a flip waits for a's to yield the core.`,
      ],
    },
    {
      title: "Replication traffic for the timed flips (node a's and b's /metrics)",
      columns: ["figure", "value"],
      rows: [
        ["flips timed (both kinds; each is one Connect and one cancel on a)", flips],
        [`changes published by a (${CHANGES_SENT})`, changes ?? "n/a (not exported by this build)"],
        ["  expected: one per Connect and one per cancel", 2 * flips],
        [`bytes published by a (${BYTES_SENT})`, bytes ?? "n/a (not exported by this build)"],
        ["bytes per change", bytesPerChange === undefined ? "n/a" : `${bytesPerChange.toFixed(1)} B`],
        [`changes received by b (${CHANGES_RECEIVED})`, received ?? "n/a"],
        [`gaps seen by b / copies pulled by b's anti-entropy`, `${gaps ?? "n/a"} / ${pulled ?? "n/a"}`],
        ["changes published by a while the Monitors opened (before the flips)", monitorOpenChanges ?? "n/a"],
        ["Monitor messages that were not the expected flip (repeats, duplicates)", extra],
        [`client connections the Connects used (a new one every ${CONNECTS_PER_CONNECTION}, untimed) / found closed by a between flips`, `${connectStats.connections} / ${connectStats.dropped}`],
      ],
      notes: [
        `Counters read just before and just after the timed flips (warm-up excluded). Bytes are whole pub/sub messages (a DeltaBatch, proto/keystate/replication.proto: origin node id, then per change the persistence id "presence", the user key (${`${run}-x0`.length} characters here), shard, save counter, ack id and the encoded Vote delta); with one flip at a time each message carries one change, so bytes per change is the size of one message. Same-node flips publish too (every node keeps a replica), so both kinds count.`,
      ],
    },
  ];

  const worstCrossP50 = Math.max(cross.online.p50, cross.offline.p50);
  const goals = [
    goal(
      `cross-node presence flip seen p50 < ${GOAL_P50_MS} ms (online and offline)`,
      `online ${fmtMs(cross.online.p50)}, offline ${fmtMs(cross.offline.p50)} (same-node ${fmtMs(same.online.p50)} / ${fmtMs(same.offline.p50)}; x${(cross.online.p50 / same.online.p50).toFixed(2)} / x${(cross.offline.p50 / same.offline.p50).toFixed(2)})`,
      stats["cross-node"].flips > 0 ? worstCrossP50 < GOAL_P50_MS * 1000 : undefined,
    ),
    goal(
      "every flip delivered once, in order (no repeated or missed Monitor message)",
      `${flips} flips (plus ${2 * warmupFlips} warm-up), ${extra} unexpected message(s)`,
      flips > 0 ? extra === 0 : undefined,
    ),
  ];
  if (changes !== undefined && changes !== 2 * flips) notes.push(`Node a counted ${changes} changes published for ${flips} flips (2 expected per flip): bytes per change is over what was counted.`);

  const figures: Record<string, number | undefined> = {
    "cross-node | online seen | p50 us": cross.online.p50,
    "cross-node | online seen | p99 us": cross.online.p99,
    "cross-node | offline seen | p50 us": cross.offline.p50,
    "cross-node | offline seen | p99 us": cross.offline.p99,
    "same-node | online seen | p50 us": same.online.p50,
    "same-node | online seen | p99 us": same.online.p99,
    "same-node | offline seen | p50 us": same.offline.p50,
    "same-node | offline seen | p99 us": same.offline.p99,
    "cross vs same | online | p50 ratio": cross.online.p50 / same.online.p50,
    "cross vs same | offline | p50 ratio": cross.offline.p50 / same.offline.p50,
    "redis pubsub floor | p50 us": floor?.p50,
    "redis pubsub floor | p99 us": floor?.p99,
    "redis durable SET floor | p50 us": writeFloor?.p50,
    "redis durable SET floor | p99 us": writeFloor?.p99,
    flips,
    "changes sent by a": changes,
    "bytes sent by a": bytes,
    "bytes per change": bytesPerChange,
    "changes received by b": received,
    "unexpected monitor messages": extra,
    "connect connections found closed": connectStats.dropped,
  };
  return {
    title: "Presence: replicated (CRDT) entity flips across 2 nodes",
    goalsFrom: "set by this bench; no target was given",
    tables,
    goals,
    notes,
    charts: [
      {
        file: "presence.svg",
        title: "Presence flip seen by a Monitor, p50 (ms): Monitor on the other node vs on the Connect's node",
        unit: "ms",
        bars: [
          { label: "online, Monitor on a (same node)", value: same.online.p50 / 1000, baseline: true },
          { label: "online, Monitor on b (cross-node)", value: cross.online.p50 / 1000 },
          { label: "offline, Monitor on a (same node)", value: same.offline.p50 / 1000, baseline: true },
          { label: "offline, Monitor on b (cross-node)", value: cross.offline.p50 / 1000 },
        ],
      },
    ],
    figures,
  };
}

/** A durable write from this process: SET acknowledged by Redis (with appendfsync always, after its fsync), sequential. */
async function durableWriteFloor(url: string, samples: number): Promise<Latency> {
  const client = new Redis(url);
  try {
    const recorder = new Recorder();
    const value = Buffer.alloc(64, 7);
    for (let i = -50; i < samples; i++) {
      const start = process.hrtime.bigint();
      await client.set(`bench-presence-floor-${i % 8}`, value);
      if (i >= 0) recorder.recordNs(nsSince(start, process.hrtime.bigint()));
    }
    return recorder.summary();
  } finally {
    client.disconnect();
  }
}

function fmtRatioRange(ratios: readonly number[]): string {
  if (ratios.length === 0) return "n/a";
  const sorted = [...ratios].sort((x, y) => x - y);
  const median = sorted[Math.floor(sorted.length / 2)]!;
  return `median x${median.toFixed(2)}, range x${sorted[0]!.toFixed(2)} to x${sorted[sorted.length - 1]!.toFixed(2)} over ${ratios.length} rounds`;
}
