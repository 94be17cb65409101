// `npm run bench:eventing`: topics and topic subscriptions on Redis Streams. A node (startNode,
// in this process, so the bench sees each delivery's outcome through the runner's observer
// instead of polling) on the bench's redis-server, with test/fixtures/topics-bench deployed:
// Sink (an action that does nothing: the delivery path alone) on topic bench-action, Counter
// (a value entity per partition: one durable write per message) on bench-entity. Measured:
//   latency     one message at a time: publish (XADD, as the outbox does) -> the handler returned;
//               and for Counter also from a guest command (Publisher.Publish: value write +
//               outbox + XADD) -> the handler returned;
//   throughput  a burst of messages over 64 partition keys published as fast as Redis takes
//               them -> the last one handled, messages/s.
// Baseline, same run, same Redis: a bare Redis Streams loop from this process (XADD on one
// connection, XREADGROUP BLOCK on another, XACK), timed the same way.
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { Redis } from "ioredis";
import protobuf from "protobufjs";
import type { TopicMessage } from "../../host/journal/types.js";
import { startNode, type KeystateNode } from "../../host/node.js";
import { Recorder, type Latency } from "../lib/histogram.js";
import { tempDir } from "../lib/inproc.js";
import { KEYSTATE_BIN, REPO_ROOT } from "../lib/paths.js";
import { ensureDist } from "../lib/prepare.js";
import { fmtRate, fmtRatio, fmtUs, progress } from "../lib/progress.js";
import { REDIS_DURABILITY, startBenchRedis } from "../lib/redis.js";
import { goal, type Cell, type SuiteBody, type SuiteContext } from "../lib/result.js";

const SUITE = "eventing";
const FIXTURE = join(REPO_ROOT, "test", "fixtures", "topics-bench");
const PACKAGE = "keystate.bench.topics";
const SUBSCRIBERS = {
  action: { topic: "bench-action", subscription: `topics-bench/${PACKAGE}.Sink/OnPing`, label: "Sink (action, no state)" },
  entity: { topic: "bench-entity", subscription: `topics-bench/${PACKAGE}.Counter/OnPing`, label: "Counter (value entity, a write per message)" },
} as const;
type Kind = keyof typeof SUBSCRIBERS;
const KINDS: readonly Kind[] = ["action", "entity"];
const PARTITIONS = 64;
/** A message not handled within this long fails the suite. */
const HANDLED_TIMEOUT_MS = 30_000;

const Ping = new protobuf.Type("Ping").add(new protobuf.Field("partition", 1, "string")).add(new protobuf.Field("sequence", 2, "int64"));
const PublishRequest = new protobuf.Type("PublishRequest").add(new protobuf.Field("partition", 1, "string")).add(new protobuf.Field("topic", 2, "string"));

function nsSince(start: bigint): number {
  return Number(process.hrtime.bigint() - start);
}

/** Resolves waiters as the node's subscriptions report handled messages. */
class Deliveries {
  readonly #byId = new Map<string, () => void>();
  readonly #next = new Map<string, Array<(message: TopicMessage) => void>>();

  constructor(node: KeystateNode) {
    node.topicSubscriptions.observe({
      handled: (subscription, message) => {
        const waiter = this.#byId.get(message.id);
        if (waiter) {
          this.#byId.delete(message.id);
          waiter();
        }
        this.#next.get(subscription)?.shift()?.(message);
      },
      failed: () => undefined,
      deadLettered: () => undefined,
    });
  }

  /** Resolves when the message with CloudEvents id `id` was handled (register before publishing). */
  handled(id: string): Promise<void> {
    return withTimeout(new Promise<void>((resolve) => this.#byId.set(id, resolve)), `message ${id}`);
  }

  /** Resolves with the next message `subscription` handles (register before publishing). */
  nextOf(subscription: string): Promise<TopicMessage> {
    return withTimeout(
      new Promise<TopicMessage>((resolve) => {
        const list = this.#next.get(subscription) ?? [];
        list.push(resolve);
        this.#next.set(subscription, list);
      }),
      `the next message of ${subscription}`,
    );
  }
}

function withTimeout<T>(promise: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what} was not handled within ${HANDLED_TIMEOUT_MS} ms`)), HANDLED_TIMEOUT_MS)));
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

function message(kind: string, i: number): Omit<TopicMessage, "offset"> {
  const partition = `p${i % PARTITIONS}`;
  return { id: `${kind}-${i}`, source: "bench", type: `${PACKAGE}.Ping`, time: Date.now(), partitionKey: partition, payload: Ping.encode({ partition, sequence: i }).finish() };
}

interface Measured {
  readonly latency: Latency;
  readonly perSecond: number;
  readonly burst: number;
}

/** One message at a time, publish -> handled; then a burst, publish all -> last handled. */
async function measureNode(node: KeystateNode, deliveries: Deliveries, kind: Kind, samples: number, burst: number, warmup: number): Promise<Measured> {
  const { topic } = SUBSCRIBERS[kind];
  const recorder = new Recorder();
  for (let i = -warmup; i < samples; i++) {
    const m = message(`${kind}-lat`, i + warmup);
    const handled = deliveries.handled(m.id);
    const start = process.hrtime.bigint();
    await node.store.topics.publish(topic, m);
    await handled;
    if (i >= 0) recorder.recordNs(nsSince(start));
  }
  const all: Promise<void>[] = [];
  const start = process.hrtime.bigint();
  for (let i = 0; i < burst; i += 500) {
    const chunk = [];
    for (let j = i; j < Math.min(burst, i + 500); j++) {
      const m = message(`${kind}-burst`, j);
      all.push(deliveries.handled(m.id));
      chunk.push(node.store.topics.publish(topic, m));
    }
    await Promise.all(chunk);
  }
  await Promise.all(all);
  return { latency: recorder.summary(), perSecond: burst / (nsSince(start) / 1e9), burst };
}

/** A guest command publishes (value write + outbox entry, then XADD) -> Counter handled it. */
async function measureGuestPublish(node: KeystateNode, deliveries: Deliveries, samples: number, warmup: number): Promise<Latency> {
  const { subscription, topic } = SUBSCRIBERS.entity;
  const recorder = new Recorder();
  for (let i = -warmup; i < samples; i++) {
    const handled = deliveries.nextOf(subscription);
    const start = process.hrtime.bigint();
    await node.router.call(`${PACKAGE}.Publisher`, "Publish", PublishRequest.encode({ partition: `g${i & 7}`, topic }).finish());
    await handled;
    if (i >= 0) recorder.recordNs(nsSince(start));
  }
  return recorder.summary();
}

/** The bare Redis Streams loop from this process, timed like the node: XADD -> XREADGROUP got it (then XACK); a burst -> last acknowledged. */
async function measureBare(url: string, samples: number, burst: number, warmup: number): Promise<Measured> {
  const producer = new Redis(url);
  const reader = new Redis(url);
  const acker = new Redis(url);
  const stream = `bench-bare-${process.pid}`;
  await producer.xgroup("CREATE", stream, "g", "$", "MKSTREAM");
  let waiting: Map<string, () => void> = new Map();
  let running = true;
  // The consumer: blocked reads of up to 100, one XACK per batch, like a subscriber that does nothing.
  const consuming = (async () => {
    while (running) {
      const reply = (await reader.xreadgroupBuffer("GROUP", "g", "c", "COUNT", 100, "BLOCK", 1000, "STREAMS", stream, ">")) as unknown;
      if (!Array.isArray(reply) || reply.length === 0) continue;
      const entries = (Array.isArray(reply[0]) ? reply[0] : reply)[1] as Array<[Buffer, Buffer[]]>;
      const ids = entries.map(([id]) => id.toString());
      for (const [, fields] of entries) {
        const id = fields[1]!.toString();
        waiting.get(id)?.();
        waiting.delete(id);
      }
      await acker.xack(stream, "g", ...ids);
    }
  })();
  const until = (id: string) => withTimeout(new Promise<void>((resolve) => waiting.set(id, resolve)), `bare message ${id}`);
  try {
    const recorder = new Recorder();
    for (let i = -warmup; i < samples; i++) {
      const id = `lat-${i}`;
      const got = until(id);
      const start = process.hrtime.bigint();
      await producer.xadd(stream, "*", "i", id, "k", `p${i % PARTITIONS}`, "p", Ping.encode({ partition: "p", sequence: i }).finish() as Buffer);
      await got;
      if (i >= 0) recorder.recordNs(nsSince(start));
    }
    const all: Promise<void>[] = [];
    const start = process.hrtime.bigint();
    for (let i = 0; i < burst; i += 500) {
      const chunk = [];
      for (let j = i; j < Math.min(burst, i + 500); j++) {
        const id = `burst-${j}`;
        all.push(until(id));
        chunk.push(producer.xadd(stream, "*", "i", id, "k", `p${j % PARTITIONS}`, "p", Ping.encode({ partition: "p", sequence: j }).finish() as Buffer));
      }
      await Promise.all(chunk);
    }
    await Promise.all(all);
    return { latency: recorder.summary(), perSecond: burst / (nsSince(start) / 1e9), burst };
  } finally {
    running = false;
    waiting = new Map();
    reader.disconnect();
    await consuming.catch(() => undefined);
    producer.disconnect();
    acker.disconnect();
  }
}

/** The fixture's .wasm, built into `dir` with the real CLI. */
function buildFixture(dir: string): Uint8Array {
  ensureDist(SUITE);
  const wasm = join(dir, "topics-bench.wasm");
  execFileSync(process.execPath, [KEYSTATE_BIN, "build", FIXTURE, "-o", wasm], { cwd: REPO_ROOT, stdio: ["ignore", "ignore", "inherit"] });
  return readFileSync(wasm);
}

async function untilConsuming(node: KeystateNode): Promise<void> {
  const deadline = Date.now() + 20_000;
  const wanted = KINDS.map((k) => SUBSCRIBERS[k].subscription);
  while (!wanted.every((id) => node.topicSubscriptions.running.includes(id))) {
    if (Date.now() > deadline) throw new Error(`the node did not start consuming ${wanted.join(", ")} within 20 s (running: ${node.topicSubscriptions.running.join(", ")})`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  // A loop creates its consumer group ("from": "now") as it starts: give it a moment before the first publish.
  await new Promise((resolve) => setTimeout(resolve, 500));
}

export async function runEventing(ctx: SuiteContext): Promise<SuiteBody> {
  const samples = ctx.quick ? 300 : 3000;
  const warmup = ctx.quick ? 50 : 300;
  const burst = ctx.quick ? 3000 : 20_000;
  const dir = await tempDir(SUITE);
  const redis = await startBenchRedis();
  let node: KeystateNode | undefined;
  const results = {} as Record<Kind, Measured>;
  let guest: Latency | undefined;
  let bare: Measured | undefined;
  try {
    progress(SUITE, "building test/fixtures/topics-bench");
    const bytes = buildFixture(dir.path);
    progress(SUITE, `bare Redis Streams loop: ${samples} sequential messages, then a burst of ${burst}`);
    bare = await measureBare(redis.url, samples, burst, warmup);
    progress(SUITE, `  bare: p50 ${fmtUs(bare.latency.p50)} p99 ${fmtUs(bare.latency.p99)}, ${fmtRate(bare.perSecond)}`);

    node = await startNode({ redisUrl: redis.url, dataDir: dir.path, grpcPort: 0, httpPort: 0, insecureAdmin: true, cluster: { name: `bench-eventing-${process.pid}` } });
    await node.registry.deploy(bytes);
    await untilConsuming(node);
    const deliveries = new Deliveries(node);
    for (const kind of KINDS) {
      progress(SUITE, `node -> ${SUBSCRIBERS[kind].label}: ${samples} sequential messages, then a burst of ${burst}`);
      results[kind] = await measureNode(node, deliveries, kind, samples, burst, warmup);
      progress(SUITE, `  ${kind}: p50 ${fmtUs(results[kind].latency.p50)} p99 ${fmtUs(results[kind].latency.p99)}, ${fmtRate(results[kind].perSecond)}`);
    }
    progress(SUITE, `guest command publishes -> Counter: ${samples} sequential`);
    guest = await measureGuestPublish(node, deliveries, samples, warmup);
    progress(SUITE, `  guest publish: p50 ${fmtUs(guest.p50)} p99 ${fmtUs(guest.p99)}`);
  } finally {
    await node?.stop();
    await redis.stop();
    await dir.remove();
  }

  const base = bare!;
  const row = (label: string, m: Measured, baseline: boolean): Cell[] => [
    label,
    fmtUs(m.latency.p50),
    fmtUs(m.latency.p99),
    m.latency.n,
    baseline ? "(baseline)" : fmtRatio(m.latency.p50, base.latency.p50),
    fmtRate(m.perSecond),
    baseline ? "(baseline)" : fmtRatio(m.perSecond, base.perSecond),
  ];
  const tables = [
    {
      title: "Topic message: published -> handled (latency one at a time; throughput of a burst)",
      columns: ["path", "p50", "p99", "samples", "p50 vs bare", "burst throughput", "throughput vs bare"],
      rows: [
        row("bare Redis Streams: XADD -> XREADGROUP BLOCK delivers (XACK per batch)", base, true),
        row(`node: XADD -> ${SUBSCRIBERS.action.label} returned`, results.action, false),
        row(`node: XADD -> ${SUBSCRIBERS.entity.label} returned`, results.entity, false),
        ["node: guest command publishes (value write + outbox + XADD) -> Counter returned", fmtUs(guest!.p50), fmtUs(guest!.p99), guest!.n, fmtRatio(guest!.p50, base.latency.p50), "", ""],
      ],
      notes: [
        `One redis-server (${REDIS_DURABILITY}: every XADD, XACK and entity write waits for its fsync, on both paths). The node is startNode in the bench process (a cluster of one on that Redis), so the runner's observer reports when a handler returned (before its XACK); the bare loop is three ioredis connections in the same process (producer, a blocked reader, an acker) with a reader that does nothing. Latency: ${samples} messages one at a time after ${warmup} untimed, partition keys cycling over ${PARTITIONS}. Throughput: ${burst} messages over ${PARTITIONS} partition keys published in chunks of 500 as fast as Redis takes them, timed until the last one was handled (node) or received (bare); the node handles different keys of a batch (up to 100) concurrently and each key in order, and acknowledges each message on its own.`,
      ],
    },
  ];
  const figures: Record<string, number | undefined> = {
    "bare | p50 us": base.latency.p50,
    "bare | p99 us": base.latency.p99,
    "bare | msgs/s": base.perSecond,
    "action | p50 us": results.action.latency.p50,
    "action | p99 us": results.action.latency.p99,
    "action | msgs/s": results.action.perSecond,
    "entity | p50 us": results.entity.latency.p50,
    "entity | p99 us": results.entity.latency.p99,
    "entity | msgs/s": results.entity.perSecond,
    "guest publish -> entity | p50 us": guest!.p50,
    "guest publish -> entity | p99 us": guest!.p99,
    "action / bare | p50 ratio": results.action.latency.p50 / base.latency.p50,
    "action / bare | throughput ratio": results.action.perSecond / base.perSecond,
  };
  return {
    title: "Eventing: topic messages through a node vs a bare Redis Streams loop",
    goalsFrom: "set by this bench; no target was given",
    tables,
    goals: [
      goal("every published message handled (none lost in the bursts)", `${KINDS.map((k) => `${results[k].burst} of ${results[k].burst}`).join(", ")}`, true),
      goal("node (no-op action subscriber) p50 within x3 of the bare Redis Streams loop", `${fmtUs(results.action.latency.p50)} vs ${fmtUs(base.latency.p50)} (${fmtRatio(results.action.latency.p50, base.latency.p50)})`, results.action.latency.p50 <= 3 * base.latency.p50),
    ],
    notes: [],
    charts: [],
    figures,
  };
}
