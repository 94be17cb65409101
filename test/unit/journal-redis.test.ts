// The Redis store against a real redis-server: the shared contract, plus what happens
// when Redis goes away, hangs, and comes back.
import test, { type ExecutionContext } from "ava";
import { isKeystateError } from "../../host/errors.js";
import { openStore } from "../../host/journal/open-store.js";
import { RedisStore } from "../../host/journal/redis-store.js";
import type { Store } from "../../host/journal/types.js";
import { startRedis, type RunningRedis } from "../helpers/redis-server.js";
import { registerStoreContract, newEntity, eventsNumbered } from "../helpers/store-contract.js";
import { tempDirFor } from "../helpers/temp-dir.js";

/** The design promises failure "within ~2 s" instead of a hang. */
const FAIL_FAST_MS = 2000;

let shared: RunningRedis | undefined;
test.before(async () => {
  shared = await startRedis();
});
test.after.always(async () => {
  await shared?.stop();
});

registerStoreContract("redis", () => RedisStore.open(shared!.url));

async function openOwned(t: ExecutionContext, url: string): Promise<Store> {
  const store = await RedisStore.open(url);
  t.teardown(() => store.close());
  return store;
}

/** Runs `call`, expects STORAGE_UNAVAILABLE, and returns how long the failure took. */
async function failureTime(t: ExecutionContext, call: () => Promise<unknown>): Promise<number> {
  const started = performance.now();
  const err = await t.throwsAsync(call());
  t.true(isKeystateError(err, "STORAGE_UNAVAILABLE"), String(err));
  return performance.now() - started;
}

async function eventually(check: () => Promise<void>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await check();
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

test("redis: openStore with a Redis URL opens the Redis store", async (t) => {
  const store = await openStore({ redisUrl: shared!.url, dataDir: "/nonexistent/never-created" });
  t.teardown(() => store.close());
  t.is(store.kind, "redis");
});

test("redis: opening against a server that is not there fails fast with STORAGE_UNAVAILABLE", async (t) => {
  const gone = await startRedis();
  await gone.stop();
  const took = await failureTime(t, () => RedisStore.open(gone.url));
  t.true(took < FAIL_FAST_MS, `took ${took.toFixed(0)} ms`);
});

test("redis: while the server is down calls fail fast; after a restart on the same port the store works again", async (t) => {
  const dataDir = await tempDirFor(t, "redis-aof");
  let server = await startRedis({ appendOnly: true, dataDir });
  t.teardown(() => server.stop());
  const store = await openOwned(t, server.url);
  const id = newEntity();
  await store.journal.append(id, 0, eventsNumbered(1, 2));

  server.kill();
  for (const call of [
    () => store.journal.append(id, 2, eventsNumbered(3, 1, " lost")),
    () => store.journal.recover(id),
    () => store.values.get(id),
    () => store.modules.list(),
    () => store.ping(),
  ]) {
    const took = await failureTime(t, call);
    t.true(took < FAIL_FAST_MS, `took ${took.toFixed(0)} ms`);
  }

  server = await startRedis({ port: server.port, appendOnly: true, dataDir });
  await eventually(() => store.ping(), 5000);
  // Acknowledged events survived the kill (AOF, fsync always); the refused one was never written.
  const recovered = await store.journal.recover(id);
  t.deepEqual(recovered.events.map((e) => Buffer.from(e.payload).toString()), ["event 1", "event 2"]);
  // The Lua scripts are gone from the restarted server's cache; appends must still work.
  await store.journal.append(id, 2, eventsNumbered(3, 1));
  t.is((await store.journal.recover(id)).lastSeq, 3);
});

test("redis: a server that hangs makes calls fail within the command timeout, not hang", async (t) => {
  const server = await startRedis();
  t.teardown(() => server.stop());
  const store = await openOwned(t, server.url);
  const id = newEntity();
  await store.journal.append(id, 0, eventsNumbered(1, 1));

  server.pause();
  const took = await failureTime(t, () => store.journal.append(id, 1, eventsNumbered(2, 1)));
  t.true(took < FAIL_FAST_MS + 500, `took ${took.toFixed(0)} ms`);
  server.resume();
  // The outcome of the timed-out append is unknown to the caller: recovery tells the truth.
  await eventually(async () => {
    const { lastSeq } = await store.journal.recover(id);
    await store.journal.append(id, lastSeq, eventsNumbered(lastSeq + 1, 1));
  }, 5000);
  t.true((await store.journal.recover(id)).lastSeq >= 2);
});
