// One subscription's consumer loop (host/eventing/subscription-loop.ts) against the real
// embedded store, with a scripted handler in place of a guest: per-key order with keys
// concurrent, retries with the delivery count carried over, dead letters after maxAttempts,
// transient failures not counted, the CloudEvents metadata and idempotency key of a delivery,
// and a stop that leaves unfinished messages pending for the next consumer.
import test, { type ExecutionContext } from "ava";
import type { CallMetadata } from "../../host/abi/abi-codec.js";
import { KeystateError } from "../../host/errors.js";
import { setLogLevel } from "../../host/log.js";
import { EmbeddedStore } from "../../host/journal/embedded-store.js";
import type { TopicMessage } from "../../host/journal/types.js";
import { SubscriptionLoop, idempotencyKeyOf, type ActiveSubscription, type DeliverMessage } from "../../host/eventing/subscription-loop.js";
import type { SubscriptionObserver } from "../../host/eventing/subscription-metrics.js";
import { tempDirFor } from "../helpers/temp-dir.js";

setLogLevel("silent");

const SUB: ActiveSubscription = { id: "m/pkg.Svc/OnMsg", module: "m", topic: "t", service: "pkg.Svc", method: "OnMsg", maxAttempts: 3, fromStart: true };
const FAST = { batch: 100, blockMs: 200, retryDelayMs: 5, maxRetryDelayMs: 20, staleAfterMs: 60_000 };

interface Call {
  readonly text: string;
  readonly idempotencyKey: string;
  readonly metadata: CallMetadata;
}

async function storeFor(t: ExecutionContext): Promise<EmbeddedStore> {
  const store = await EmbeddedStore.open(await tempDirFor(t, "lmdb"));
  t.teardown(() => store.close());
  return store;
}

function publish(store: EmbeddedStore, text: string, partitionKey: string): Promise<string> {
  return store.topics.publish(SUB.topic, { id: `id-${text}`, source: "src", type: "pkg.Msg", time: Date.UTC(2026, 0, 2, 3, 4, 5, 6), partitionKey, payload: Buffer.from(text) });
}

function startLoop(t: ExecutionContext, store: EmbeddedStore, deliver: DeliverMessage, observer: Partial<SubscriptionObserver> = {}, sub = SUB): SubscriptionLoop {
  const loop = new SubscriptionLoop(sub, {
    topics: store.topics,
    consumer: "local",
    deliver,
    observer: { handled: () => undefined, failed: () => undefined, deadLettered: () => undefined, ...observer },
    timings: FAST,
  });
  loop.start();
  t.teardown(() => loop.stop());
  return loop;
}

async function until(check: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error("timed out");
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

test("each key's messages in order, one at a time; different keys at the same time; CloudEvents metadata and the idempotency key", async (t) => {
  const store = await storeFor(t);
  for (let i = 1; i <= 4; i++) {
    await publish(store, `a${i}`, "a");
    await publish(store, `b${i}`, "b");
  }
  const calls: Call[] = [];
  let inFlight = new Map<string, number>();
  let maxTogether = 0;
  startLoop(t, store, async (_service, _method, payload, options) => {
    const text = Buffer.from(payload).toString();
    const key = text[0]!;
    inFlight.set(key, (inFlight.get(key) ?? 0) + 1);
    t.is(inFlight.get(key), 1, `never two of key ${key} at once`);
    maxTogether = Math.max(maxTogether, [...inFlight.values()].reduce((a, b) => a + b, 0));
    await sleep(5);
    inFlight.set(key, inFlight.get(key)! - 1);
    calls.push({ text, ...options });
  });
  await until(() => calls.length === 8);
  t.deepEqual(calls.filter((c) => c.text.startsWith("a")).map((c) => c.text), ["a1", "a2", "a3", "a4"]);
  t.deepEqual(calls.filter((c) => c.text.startsWith("b")).map((c) => c.text), ["b1", "b2", "b3", "b4"]);
  t.is(maxTogether, 2, "the two keys ran concurrently");
  t.is(calls[0]!.idempotencyKey, idempotencyKeyOf(`id-${calls[0]!.text}`, "OnMsg"));
  t.deepEqual(Object.fromEntries(calls.find((c) => c.text === "a1")!.metadata), {
    "ce-specversion": "1.0",
    "ce-id": "id-a1",
    "ce-source": "src",
    "ce-type": "pkg.Msg",
    "ce-time": "2026-01-02T03:04:05.006Z",
    "ce-subject": "a",
  });
  inFlight = new Map();
});

test("a failing message is retried, then dead-lettered after maxAttempts; its key's next messages follow; transient failures are not attempts", async (t) => {
  const store = await storeFor(t);
  await publish(store, "x1", "x");
  await publish(store, "x2", "x");
  await publish(store, "x3", "x");
  const handled: string[] = [];
  const tries = new Map<string, number>();
  let failures = 0;
  let deadLettered = 0;
  startLoop(
    t,
    store,
    async (_s, _m, payload) => {
      const text = Buffer.from(payload).toString();
      tries.set(text, (tries.get(text) ?? 0) + 1);
      // x1 meets a subscriber that is unreachable twice (a shard moving), then succeeds.
      if (text === "x1" && tries.get(text)! <= 2) throw new KeystateError("NOT_OWNER", "moving");
      if (text === "x2") throw new KeystateError("GUEST_FAILURE", "x2 is refused");
      handled.push(text);
    },
    { failed: () => void failures++, deadLettered: () => void deadLettered++ },
  );
  await until(() => handled.length === 2);
  t.deepEqual(handled, ["x1", "x3"]);
  t.is(tries.get("x1"), 3, "transient failures do not use up attempts");
  t.is(tries.get("x2"), 3, "maxAttempts tries of the refused message");
  t.is(deadLettered, 1);
  t.is(failures, 5);
  const letters = await store.topics.deadLetters(SUB.topic, SUB.id, 10);
  t.is(letters.length, 1);
  t.like(letters[0], { reason: "x2 is refused", attempts: 3 });
  t.is(Buffer.from(letters[0]!.message.payload).toString(), "x2");
});

test("stopped mid-message, the rest stays pending and the next consumer continues; earlier deliveries count as attempts", async (t) => {
  const store = await storeFor(t);
  for (let i = 1; i <= 3; i++) await publish(store, `k${i}`, "k");
  const seen: string[] = [];
  let release!: () => void;
  const blocked = new Promise<void>((resolve) => (release = resolve));
  const first = startLoop(t, store, async (_s, _m, payload) => {
    const text = Buffer.from(payload).toString();
    seen.push(text);
    if (text === "k2") await blocked;
  });
  await until(() => seen.includes("k2"));
  const stopping = first.stop();
  release();
  await stopping;
  t.deepEqual(seen, ["k1", "k2"], "k3 never started after the stop");

  // The next consumer: k2 finished under the old loop and was acknowledged; k3 is redelivered.
  const again: Array<{ text: string; deliveries: number }> = [];
  startLoop(t, store, async (_s, _m, payload) => {
    again.push({ text: Buffer.from(payload).toString(), deliveries: 0 });
  }, {
    handled: (_sub, message: TopicMessage & { deliveries?: number }) => {
      again[again.length - 1]!.deliveries = message.deliveries ?? 0;
    },
  });
  await until(() => again.length === 1);
  await sleep(100);
  t.deepEqual(again, [{ text: "k3", deliveries: 2 }], "k3 once more, counted as its second delivery; nothing acknowledged comes back");

  // A message already delivered maxAttempts times gets one last try here, then is given up.
  const poison = { ...SUB, id: "m/pkg.Svc/Poison", maxAttempts: 2 };
  await publish(store, "p1", "p");
  const consumer = await store.topics.consume(SUB.topic, poison.id, "local", { fromStart: true });
  await consumer.next(10, 100); // an earlier process took it (delivery 1) and died
  t.deepEqual((await consumer.pending(10)).map((m) => m.deliveries).slice(-1), [2], "another took it again (delivery 2) and died too");
  let tries = 0;
  startLoop(t, store, async (_s, _m, payload) => {
    if (Buffer.from(payload).toString() === "p1") {
      tries++;
      throw new KeystateError("GUEST_TRAP", "trap");
    }
  }, {}, poison);
  await consumer.close();
  const letters = await (async () => {
    for (let i = 0; i < 200; i++) {
      const found = await store.topics.deadLetters(SUB.topic, poison.id, 10);
      if (found.length > 0) return found;
      await sleep(10);
    }
    return [];
  })();
  t.is(tries, 1, "tried once here");
  t.like(letters.find((l) => Buffer.from(l.message.payload).toString() === "p1"), { attempts: 3 });
});
