// The event-log subscription runner (host/eventing/event-log-subscriptions.ts) on a real
// embedded store, with a recording stand-in for the Router: order per entity, entities at
// once, skipped types, stored offsets, "now", and parking (never skipping) a failing entity.
import test, { type ExecutionContext } from "ava";
import { Registry } from "prom-client";
import type { CallOptions } from "../../host/entities/router.js";
import type { ServiceRuntime } from "../../host/entities/service-runtime.js";
import { EventLogSubscriptions } from "../../host/eventing/event-log-subscriptions.js";
import type { SubscriptionManifest } from "../../host/runtime/subscriptions.js";
import { EmbeddedStore } from "../../host/journal/embedded-store.js";
import type { ModuleRegistry } from "../../host/runtime/module-registry.js";
import { setLogLevel } from "../../host/log.js";
import { tempDirFor } from "../helpers/temp-dir.js";

// The parking test fails deliveries on purpose: its warnings and errors are expected.
setLogLevel("silent");

const SERVICE = "t.Projection";
const SUBSCRIPTION = `m/${SERVICE}`;

interface Call {
  readonly key: string;
  readonly seq: number;
  readonly method: string;
  readonly options: CallOptions;
}

/** A registry with module "m" declaring `subscription`; its service takes t.Added (OnAdded) and t.Removed (OnRemoved), not t.Noted. */
function registryWith(subscription: Partial<SubscriptionManifest>): ModuleRegistry {
  const method = (name: string, inputType: string) => [name, { name, inputType, clientStreaming: false, serverStreaming: false }] as const;
  const service = { name: SERVICE, methods: new Map([method("OnAdded", "t.Added"), method("OnRemoved", "t.Removed")]) } as unknown as ServiceRuntime;
  const sub: SubscriptionManifest = { topic: "", eventLog: "cart", service: SERVICE, method: "", maxAttempts: 0, fromStart: true, ...subscription };
  return {
    modules: [{ name: "m", manifest: { subscriptions: [sub] } }],
    service: (name: string) => (name === SERVICE ? service : undefined),
    onServicesChanged: () => undefined,
  } as unknown as ModuleRegistry;
}

/** A Router stand-in recording each delivery; `fail` decides whether a call throws. */
function recorder(fail: (call: Call) => boolean = () => false) {
  const calls: Call[] = [];
  let inFlight = 0;
  let mostAtOnce = 0;
  const router = {
    servedShards: () => [0],
    async call(_service: string, method: string, _payload: Uint8Array, options: CallOptions): Promise<Uint8Array> {
      const meta = new Map(options.metadata ?? []);
      const call = { key: meta.get("ce-subject")!, seq: Number(meta.get("ce-sequence")), method, options };
      inFlight++;
      mostAtOnce = Math.max(mostAtOnce, inFlight);
      try {
        await new Promise((resolve) => setTimeout(resolve, Math.random() * 3));
        if (fail(call)) throw new Error(`refused ${call.key}@${call.seq}`);
        calls.push(call);
        return new Uint8Array();
      } finally {
        inFlight--;
      }
    },
  };
  return { router, calls, mostAtOnce: () => mostAtOnce };
}

async function openStore(t: ExecutionContext): Promise<EmbeddedStore> {
  const store = await EmbeddedStore.open(await tempDirFor(t, "event-logs"));
  t.teardown(() => store.close());
  return store;
}

/** Appends `types` as the next events of cart `key` (one append). */
async function append(store: EmbeddedStore, key: string, types: readonly string[]): Promise<void> {
  const id = { persistenceId: "cart", key };
  await store.journal.append(id, await store.journal.lastSeq(id), types.map((type) => ({ type, payload: Buffer.from(type) })));
}

function run(t: ExecutionContext, store: EmbeddedStore, registry: ModuleRegistry, router: ReturnType<typeof recorder>["router"], metrics?: Registry): EventLogSubscriptions {
  const runner = new EventLogSubscriptions({ registry, router, store, metricsRegistry: metrics, pollMs: 20, parkedRetryMs: 300 });
  runner.start();
  t.teardown(() => runner.stop());
  return runner;
}

async function until(check: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error("timed out");
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

async function untilAsync(check: () => Promise<boolean>, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error("timed out");
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

const seqsOf = (calls: readonly Call[], key: string) => calls.filter((c) => c.key === key).map((c) => c.seq);

test("each entity's events arrive in order, entities at once; types no method takes are skipped; a new runner resumes after the stored offset", async (t) => {
  const store = await openStore(t);
  const keys = Array.from({ length: 12 }, (_, i) => `c${i}`);
  for (let round = 0; round < 4; round++) {
    for (const key of keys) await append(store, key, ["t.Added", "t.Noted", "t.Removed"]);
  }
  const metrics = new Registry();
  const first = recorder();
  const runner = run(t, store, registryWith({}), first.router, metrics);
  await until(() => first.calls.length === keys.length * 8);
  for (const key of keys) t.deepEqual(seqsOf(first.calls, key), [1, 3, 4, 6, 7, 9, 10, 12], `${key}: in order, t.Noted skipped`);
  t.true(first.mostAtOnce() > 1, "entities were delivered concurrently");
  const call = first.calls.find((c) => c.key === "c3" && c.seq === 3)!;
  t.is(call.method, "OnRemoved");
  t.is(call.options.idempotencyKey, "cart/c3@3");
  t.is(call.options.hops, 1);
  const meta = new Map(call.options.metadata);
  t.like(Object.fromEntries(meta), { "ce-id": "cart/c3@3", "ce-source": "cart", "ce-type": "t.Removed", "ce-subject": "c3", "ce-sequence": "3", "ce-specversion": "1.0" });
  const counted = async (name: string) => (await metrics.getSingleMetric(name)!.get()).values.find((v) => v.labels.subscription === SUBSCRIPTION)?.value;
  t.is(await counted("keystate_event_log_events_delivered_total"), keys.length * 8);
  t.is(await counted("keystate_event_log_events_skipped_total"), keys.length * 4);
  await new Promise((resolve) => setTimeout(resolve, 100)); // the last batch's offset is stored after its last delivery
  await runner.stop();

  // A new process: nothing handled is delivered again, the new events are.
  await append(store, "c0", ["t.Added"]);
  const second = recorder();
  run(t, store, registryWith({}), second.router);
  await until(() => second.calls.length === 1);
  await new Promise((resolve) => setTimeout(resolve, 100));
  t.deepEqual(second.calls.map((c) => `${c.key}@${c.seq}`), ["c0@13"]);
});

test('"from": "now" starts after the events that exist when the subscription first runs', async (t) => {
  const store = await openStore(t);
  await append(store, "old", ["t.Added", "t.Added"]);
  const { router, calls } = recorder();
  run(t, store, registryWith({ fromStart: false }), router);
  await new Promise((resolve) => setTimeout(resolve, 150));
  await append(store, "old", ["t.Added"]);
  await append(store, "new", ["t.Added"]);
  await until(() => calls.length === 2);
  t.deepEqual(calls.map((c) => `${c.key}@${c.seq}`).sort(), ["new@1", "old@3"]);
});

test("an entity failing every attempt is parked (stored), the others go on, and it is retried later from the event that failed: nothing skipped, nothing twice", async (t) => {
  const store = await openStore(t);
  let refuse = true;
  const attempts: number[] = [];
  const { router, calls } = recorder((call) => {
    if (call.key !== "bad" || call.seq !== 3) return false;
    attempts.push(Date.now());
    return refuse;
  });
  for (const key of ["bad", "good"]) await append(store, key, ["t.Added", "t.Added", "t.Added", "t.Added"]);
  const metrics = new Registry();
  run(t, store, registryWith({ maxAttempts: 2 }), router, metrics);
  const parkedGauge = async () => (await metrics.getSingleMetric("keystate_event_log_parked_entities")!.get()).values.find((v) => v.labels.subscription === SUBSCRIPTION)?.value;

  await until(() => seqsOf(calls, "good").length === 4 && attempts.length === 2);
  t.deepEqual(seqsOf(calls, "bad"), [1, 2], "stopped at the event that failed");
  const cursor = { subscription: SUBSCRIPTION, persistenceId: "cart", shard: 0 };
  await untilAsync(async () => (await parkedGauge()) === 1);
  t.deepEqual(await store.eventFeeds.parked(cursor), new Map([["bad", 3]]), "parked durably at seq 3");

  // While parked, its new events wait too; another entity's do not.
  await append(store, "bad", ["t.Added"]);
  await append(store, "good", ["t.Added"]);
  await until(() => seqsOf(calls, "good").length === 5);
  t.deepEqual(seqsOf(calls, "bad"), [1, 2]);

  // The failure clears: the retry delivers 3.. to the journal's end, in order, and unparks.
  refuse = false;
  await until(() => seqsOf(calls, "bad").length === 5);
  t.deepEqual(seqsOf(calls, "bad"), [1, 2, 3, 4, 5]);
  t.true(attempts.length >= 3, "tried again after the park");
  await new Promise((resolve) => setTimeout(resolve, 100));
  t.deepEqual(await store.eventFeeds.parked(cursor), new Map());
  t.is(await parkedGauge(), 0);

  // Later events of the entity once each; the feed entries its retry covered are not redelivered.
  await append(store, "bad", ["t.Added"]);
  await until(() => seqsOf(calls, "bad").length === 6);
  await new Promise((resolve) => setTimeout(resolve, 150));
  t.deepEqual(seqsOf(calls, "bad"), [1, 2, 3, 4, 5, 6]);
});
