// Commands of one event-loop turn leave a single-Redis connection in one write (the socket
// is corked for the turn): against a real redis-server, they still arrive in order, each
// gets its own reply, nothing waits past the turn, and a reconnected client corks its new
// socket rather than the dead one.
import test from "ava";
import { connectRedis, closeRedis } from "../../host/journal/redis-connection.js";
import { coalesceTurnWrites } from "../../host/journal/redis-turn-writes.js";
import type { Redis } from "ioredis";
import { startRedis, type RunningRedis } from "../helpers/redis-server.js";

let shared: RunningRedis | undefined;
test.before(async () => {
  shared = await startRedis();
});
test.after.always(async () => {
  await shared?.stop();
});

async function client(url: string): Promise<Redis> {
  const redis = (await connectRedis({ urls: [url], cluster: false }, { commandTimeoutMs: 2000 })) as Redis;
  coalesceTurnWrites(redis);
  return redis;
}

const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

test("the commands of one turn are held together and answered in order", async (t) => {
  const redis = await client(shared!.url);
  t.teardown(() => closeRedis(redis));
  t.is(redis.stream.writableCorked, 0);
  const pushes: Promise<number>[] = [];
  for (let i = 0; i < 50; i++) {
    pushes.push(redis.rpush("order", String(i)));
    // Corked once for the whole turn, not once per command.
    t.is(redis.stream.writableCorked, 1);
  }
  t.true(redis.stream.writableLength > 0, "the turn's commands wait in the socket's buffer");
  t.deepEqual(
    await Promise.all(pushes),
    Array.from({ length: 50 }, (_, i) => i + 1),
  );
  t.is(redis.stream.writableCorked, 0);
  t.deepEqual(await redis.lrange("order", 0, -1), Array.from({ length: 50 }, (_, i) => String(i)));
});

test("a command of a later turn is sent at the end of that turn, not held for company", async (t) => {
  const redis = await client(shared!.url);
  t.teardown(() => closeRedis(redis));
  for (let i = 1; i <= 5; i++) {
    await nextTurn();
    t.is(await redis.incr("turns"), i);
    t.is(redis.stream.writableCorked, 0);
  }
});

test("commands issued from promise callbacks of the same turn join the write", async (t) => {
  const redis = await client(shared!.url);
  t.teardown(() => closeRedis(redis));
  const first = redis.set("chained", "a");
  // A batch that resumes after an await issues its command in a microtask of this turn.
  const second = Promise.resolve().then(() => {
    t.is(redis.stream.writableCorked, 1, "still corked while the turn's promise callbacks run");
    return redis.append("chained", "b");
  });
  t.is(await first, "OK");
  t.is(await second, 2);
  t.is(await redis.get("chained"), "ab");
});

test("after Redis restarts, the reconnected client corks its new socket", async (t) => {
  const own = await startRedis();
  t.teardown(() => own.stop());
  const redis = await client(own.url);
  t.teardown(() => closeRedis(redis));
  t.is(await redis.incr("k"), 1);
  const before = redis.stream;
  own.kill();
  await t.throwsAsync(redis.incr("k"));
  const again = await startRedis({ port: own.port });
  t.teardown(() => again.stop());
  const deadline = Date.now() + 5000;
  while (redis.status !== "ready" && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
  t.is(redis.status, "ready");
  t.not(redis.stream, before);
  const reply = redis.incr("k");
  t.is(redis.stream.writableCorked, 1);
  t.is(await reply, 1, "a fresh server without persistence starts from nothing");
  t.is(redis.stream.writableCorked, 0);
});
