// The network helpers against real redis-servers: the TCP proxy that partitions one
// client from Redis (blackhole, cut, heal), and the 3-master Redis Cluster.
import test, { type ExecutionContext } from "ava";
import { Cluster, Redis } from "ioredis";
import { createConnection } from "node:net";
import { startRedisCluster } from "../helpers/redis-cluster.js";
import { answersPing } from "../helpers/server-process.js";
import { startRedis, type RunningRedis } from "../helpers/redis-server.js";
import { startTcpProxy, type TcpProxy } from "../helpers/tcp-proxy.js";

/** Long enough for a loopback round trip many times over; a blackholed command exceeds it. */
const HANG_MS = 500;

let shared: RunningRedis | undefined;
test.before(async () => {
  shared = await startRedis();
});
test.after.always(async () => {
  await shared?.stop();
});

async function proxyFor(t: ExecutionContext): Promise<TcpProxy> {
  const proxy = await startTcpProxy(shared!.port);
  t.teardown(() => proxy.close());
  return proxy;
}

/** A raw RESP connection: sees exactly what the proxy does, with no client retries in between. */
interface RawConnection {
  /** Writes `command`, then waits for the reply (see `reply`). */
  send(command: string, timeoutMs?: number): Promise<string>;
  /** The first line of the next bytes to arrive, or "timeout", or "closed: <error code or clean>". */
  reply(timeoutMs?: number): Promise<string>;
  /** Resolves with "closed: <error code or clean>" once the connection goes away. */
  readonly closed: Promise<string>;
}

function rawConnect(t: ExecutionContext, port: number): Promise<RawConnection> {
  return new Promise((resolve, reject) => {
    const socket = createConnection({ host: "127.0.0.1", port });
    t.teardown(() => socket.destroy());
    let lastError = "clean";
    socket.on("error", (err: NodeJS.ErrnoException) => (lastError = err.code ?? err.message));
    const closed = new Promise<string>((r) => socket.once("close", () => r(`closed: ${lastError}`)));
    const reply = (timeoutMs = HANG_MS) =>
      new Promise<string>((r) => {
        const onData = (data: Buffer) => finish(data.toString().split("\r\n")[0]!);
        const timer = setTimeout(() => finish("timeout"), timeoutMs);
        const finish = (result: string) => {
          clearTimeout(timer);
          socket.off("data", onData);
          r(result);
        };
        socket.once("data", onData);
        void closed.then(finish);
      });
    socket.once("error", reject);
    socket.once("connect", () => {
      socket.off("error", reject);
      resolve({
        send(command, timeoutMs) {
          const answer = reply(timeoutMs);
          socket.write(`${command}\r\n`);
          return answer;
        },
        reply,
        closed,
      });
    });
  });
}

/** A direct client to the shared server, past the proxy. */
function direct(t: ExecutionContext): Redis {
  const client = new Redis(shared!.url, { commandTimeout: 2000, maxRetriesPerRequest: 1 });
  t.teardown(() => client.disconnect());
  return client;
}

test("proxy: a real redis-server answers PING through it", async (t) => {
  const proxy = await proxyFor(t);
  t.is(proxy.url, `redis://127.0.0.1:${proxy.port}`);
  t.not(proxy.port, shared!.port);
  const raw = await rawConnect(t, proxy.port);
  t.is(await raw.send("PING"), "+PONG");
  t.is(await raw.send("SET proxy:relay 42"), "+OK");
  t.is(await direct(t).get("proxy:relay"), "42");
});

test("proxy: blackhole() hangs open and new connections; heal() resets them and relays new ones", async (t) => {
  const proxy = await proxyFor(t);
  const before = await rawConnect(t, proxy.port);
  t.is(await before.send("PING"), "+PONG");

  proxy.blackhole();
  t.is(await before.send("SET proxy:held lost"), "timeout");
  const during = await rawConnect(t, proxy.port); // the connect itself succeeds
  t.is(await during.send("PING"), "timeout");

  proxy.heal();
  t.regex(await before.closed, /^closed/);
  t.regex(await during.closed, /^closed/);
  t.is(await direct(t).get("proxy:held"), null, "held bytes are dropped, never delivered");
  const after = await rawConnect(t, proxy.port);
  t.is(await after.send("PING"), "+PONG");
});

test("proxy: heal({ resumeHeld }) delivers what the partition held, late", async (t) => {
  const proxy = await proxyFor(t);
  const raw = await rawConnect(t, proxy.port);
  t.is(await raw.send("PING"), "+PONG");

  proxy.blackhole();
  t.is(await raw.send("SET proxy:late arrived", 300), "timeout");
  t.is(await direct(t).get("proxy:late"), null);

  // The reply to the timed-out SET arrives once the link resumes: the write happened.
  const late = raw.reply(2000);
  proxy.heal({ resumeHeld: true });
  t.is(await late, "+OK");
  t.is(await direct(t).get("proxy:late"), "arrived");
});

test("proxy: ioredis times out under blackhole() and recovers by itself after heal()", async (t) => {
  const proxy = await proxyFor(t);
  const client = new Redis(proxy.url, { commandTimeout: 300, maxRetriesPerRequest: 1, retryStrategy: () => 50 });
  client.on("error", () => undefined); // the resets at heal() are the point, not noise to log
  t.teardown(() => client.disconnect());
  t.is(await client.ping(), "PONG");

  proxy.blackhole();
  const started = performance.now();
  await t.throwsAsync(client.ping(), { message: /timed out/i });
  t.true(performance.now() - started < HANG_MS + 300);

  proxy.heal();
  const deadline = Date.now() + 3000;
  for (;;) {
    try {
      t.is(await client.ping(), "PONG");
      break;
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
});

test("proxy: cut() resets open connections and new connections fail fast; heal() restores", async (t) => {
  const proxy = await proxyFor(t);
  const open = await rawConnect(t, proxy.port);
  t.is(await open.send("PING"), "+PONG");

  proxy.cut();
  t.is(await open.closed, "closed: ECONNRESET");
  const started = performance.now();
  const fresh = await rawConnect(t, proxy.port).then(
    (raw) => raw.send("PING"),
    (err: NodeJS.ErrnoException) => `closed: ${err.code}`,
  );
  t.regex(fresh, /^closed: (ECONNRESET|EPIPE|clean)$/);
  t.true(performance.now() - started < 200, `took ${(performance.now() - started).toFixed(0)} ms`);

  proxy.heal();
  const after = await rawConnect(t, proxy.port);
  t.is(await after.send("PING"), "+PONG");
});

test("proxy: a target that goes away resets the client instead of crashing the test", async (t) => {
  const target = await startRedis();
  const proxy = await startTcpProxy(target.port);
  t.teardown(() => proxy.close());
  const raw = await rawConnect(t, proxy.port);
  t.is(await raw.send("PING"), "+PONG");
  target.kill();
  t.regex(await raw.closed, /^closed/);
  // Nothing listens on the target port now: the client is reset, the proxy keeps running.
  const again = await rawConnect(t, proxy.port);
  t.regex(await again.send("PING"), /^closed/);
});

test("cluster: 3 masters serve keys in every slot range through an ioredis Cluster client", async (t) => {
  const cluster = await startRedisCluster();
  t.teardown(() => cluster.stop());
  t.is(cluster.seeds.length, 3);
  t.deepEqual(
    cluster.urls,
    cluster.seeds.map((seed) => `redis://127.0.0.1:${seed.port}`),
  );

  const client = new Cluster([...cluster.seeds], { redisOptions: { commandTimeout: 2000 } });
  t.teardown(() => client.disconnect());
  const keys = Array.from({ length: 30 }, (_, i) => `key-${i}`);
  for (const key of keys) await client.set(key, `value of ${key}`);
  for (const key of keys) t.is(await client.get(key), `value of ${key}`);

  // Every master holds some of the keys: the slots really are spread over the nodes.
  const sizes = await Promise.all(client.nodes("master").map((node) => node.dbsize()));
  t.is(sizes.length, 3);
  t.true(sizes.every((size) => size > 0), `keys per master: ${sizes.join(", ")}`);
  t.is(
    sizes.reduce((a, b) => a + b, 0),
    keys.length,
  );

  const info = String(await client.cluster("INFO"));
  t.regex(info, /^cluster_state:ok\r$/m);
  t.regex(info, /^cluster_known_nodes:3\r$/m);
  t.regex(info, /^cluster_size:3\r$/m);
  const flags = String(await client.cluster("NODES"))
    .trim()
    .split("\n")
    .map((line) => line.split(" ")[2]!);
  t.is(flags.filter((f) => f.split(",").includes("master")).length, 3, flags.join(" | "));

  cluster.kill(2);
  const deadline = Date.now() + 2000;
  while (await answersPing(cluster.seeds[2]!.port)) {
    if (Date.now() > deadline) return t.fail("the killed node still answers PING");
    await new Promise((r) => setTimeout(r, 25));
  }
});

test.serial("cluster: without redis-server on PATH it fails and says how to install it", async (t) => {
  const path = process.env.PATH;
  process.env.PATH = "";
  try {
    await t.throwsAsync(startRedisCluster(), { message: /redis-server is not installed.*apt-get install redis-server/s });
  } finally {
    process.env.PATH = path;
  }
});
