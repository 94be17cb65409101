// modules/presence (contract shared/contracts/presence.proto, a Vote CRDT) against a real
// `keystate serve` process on a real redis-server, with plain gRPC clients built from the
// contract: Connect keeps a user online while its stream is open, Monitor reports the
// status at once and each flip, and cancelling the last Connect takes the user offline.
import test, { type ExecutionContext } from "ava";
import { join } from "node:path";
import { status } from "@grpc/grpc-js";
import { streamClient, type StreamClient } from "../helpers/grpc-stream.js";
import { buildBeforeAll, serveWith } from "../helpers/built-module.js";
import { REPO_ROOT, type NodeProcess } from "../helpers/node-process.js";
import { startRedis, type RunningRedis } from "../helpers/redis-server.js";

const MODULE_DIR = join(REPO_ROOT, "modules", "presence");
const SERVICE = "keystate.examples.presence.Presence";
const wasm = buildBeforeAll(test, MODULE_DIR);
let redis: RunningRedis | undefined;

test.before(async () => {
  redis = await startRedis();
});

test.after.always(async () => {
  await redis?.stop();
});

const startPresenceNode = (t: ExecutionContext, redisUrl: string) => serveWith(t, wasm(), redisUrl);

function presence(t: ExecutionContext, node: NodeProcess): StreamClient {
  const client = streamClient(join(MODULE_DIR, "proto"), "presence.proto", SERVICE, node.grpcPort);
  t.teardown(() => client.close());
  return client;
}

/** Resolves when `ms` passed without `stream` receiving more than `count` messages. */
async function quietFor(t: ExecutionContext, stream: { messages: unknown[] }, count: number, ms: number): Promise<void> {
  await new Promise((r) => setTimeout(r, ms));
  t.is(stream.messages.length, count, `no more messages: ${JSON.stringify(stream.messages)}`);
}

test("Connect keeps a user online; Monitor sees online, then offline within a second of the last Connect's cancel", async (t) => {
  const node = await startPresenceNode(t, redis!.url);
  const client = presence(t, node);

  const monitor = client.open<{ online: boolean }>("Monitor", { name: "alice" }, { requestId: "monitor-alice-1" });
  t.deepEqual(await monitor.nth(0), { online: false }, "the current status at once: nobody connected");
  t.deepEqual((await monitor.headers).get("x-request-id"), ["monitor-alice-1"], "the stream echoes the client's request id");

  const connect = client.open("Connect", { name: "alice" });
  t.deepEqual(await monitor.nth(1), { online: true }, "Connect took alice online");
  // A second monitor opened now sees the current status, online.
  const late = client.open<{ online: boolean }>("Monitor", { name: "alice" });
  t.deepEqual(await late.nth(0), { online: true });
  // Other users are independent.
  const bob = client.open<{ online: boolean }>("Monitor", { name: "bob" });
  t.deepEqual(await bob.nth(0), { online: false });
  const generated = (await bob.headers).get("x-request-id");
  t.is(generated.length, 1, "a stream without a request id gets one of the node's");
  t.not(generated[0], "monitor-alice-1");

  // Stays online while the stream is open: no flip, no message.
  await quietFor(t, monitor, 2, 700);
  t.deepEqual(connect.messages, [], "Connect sends nothing");

  const cancelledAt = Date.now();
  connect.cancel();
  t.deepEqual(await monitor.nth(2, 1_000), { online: false }, "offline within a second of the cancel");
  t.true(Date.now() - cancelledAt < 1_000);
  t.deepEqual(await late.nth(1, 1_000), { online: false });
  t.is((await connect.ended).code, status.CANCELLED);
  t.deepEqual(bob.messages, [{ online: false }], "bob's monitor never flipped");
  for (const s of [monitor, late, bob]) s.cancel();
});

test("two Connects: cancelling one keeps the user online, cancelling the last takes them offline", async (t) => {
  const node = await startPresenceNode(t, redis!.url);
  const client = presence(t, node);
  const first = client.open("Connect", { name: "carol" });
  const second = client.open("Connect", { name: "carol" });
  const monitor = client.open<{ online: boolean }>("Monitor", { name: "carol" });
  t.deepEqual(await monitor.nth(0), { online: true });

  first.cancel();
  await quietFor(t, monitor, 1, 800);

  second.cancel();
  t.deepEqual(await monitor.nth(1, 1_000), { online: false });

  // And back: a new Connect flips it again.
  const third = client.open("Connect", { name: "carol" });
  t.deepEqual(await monitor.nth(2), { online: true });
  third.cancel();
  t.deepEqual(await monitor.nth(3), { online: false });
  monitor.cancel();
});

test("a node killed with SIGKILL while a Connect was open does not keep the user online after restart", async (t) => {
  // The same node id restarted: the new process retires its earlier incarnation's vote as it loads the entity.
  const lease = ["--lease-ms", "3000", "--node-id", "presence-restart"];
  const node = await serveWith(t, wasm(), redis!.url, undefined, lease);
  const client = presence(t, node);
  client.open("Connect", { name: "dave" });
  const monitor = client.open<{ online: boolean }>("Monitor", { name: "dave" });
  t.deepEqual(await monitor.nth(0), { online: true });
  await node.kill("SIGKILL");

  // Same Redis, fresh process: the vote stored as true belongs to a node that holds no connection now.
  const again = await serveWith(t, undefined, redis!.url, undefined, lease);
  const after = presence(t, again).open<{ online: boolean }>("Monitor", { name: "dave" });
  t.deepEqual(await after.nth(0, 10_000), { online: false });
  after.cancel();
});

/** A server-streaming call over HTTP/JSON: newline-delimited JSON lines, read as they arrive. */
async function ndjson(url: string, body: object) {
  const abort = new AbortController();
  const response = await fetch(url, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body), signal: abort.signal });
  const lines: any[] = [];
  let waiting: (() => void) | undefined;
  const reading = (async () => {
    const decoder = new TextDecoder();
    let buffered = "";
    try {
      for await (const chunk of response.body!) {
        buffered += decoder.decode(chunk as Uint8Array, { stream: true });
        let at: number;
        while ((at = buffered.indexOf("\n")) >= 0) {
          lines.push(JSON.parse(buffered.slice(0, at)));
          buffered = buffered.slice(at + 1);
          waiting?.();
        }
      }
    } catch {
      // aborted by the test
    }
  })();
  const nth = async (i: number, ms = 2_000) => {
    const deadline = Date.now() + ms;
    while (lines.length <= i) {
      if (Date.now() > deadline) throw new Error(`line #${i} did not arrive within ${ms} ms (got ${JSON.stringify(lines)})`);
      await new Promise<void>((r) => ((waiting = r), setTimeout(r, 50)));
    }
    return lines[i];
  };
  return { response, lines, nth, cancel: () => abort.abort(), reading };
}

test("presence over HTTP: newline-delimited JSON streams; aborting the HTTP Connect takes the user offline", async (t) => {
  const node = await startPresenceNode(t, redis!.url);
  const base = `http://127.0.0.1:${node.httpPort}/${SERVICE}`;
  const monitor = await ndjson(`${base}/Monitor`, { name: "erin" });
  t.is(monitor.response.status, 200);
  t.regex(monitor.response.headers.get("content-type") ?? "", /application\/x-ndjson/);
  // proto3 JSON mapping (as for unary replies): a false bool is omitted.
  t.deepEqual(await monitor.nth(0), {});

  const connect = await ndjson(`${base}/Connect`, { name: "erin" });
  t.is(connect.response.status, 200, "headers come as soon as the stream is open, before any message");
  t.deepEqual(await monitor.nth(1), { online: true });
  // A gRPC monitor sees the same entity.
  const grpcMonitor = presence(t, node).open<{ online: boolean }>("Monitor", { name: "erin" });
  t.deepEqual(await grpcMonitor.nth(0), { online: true });

  connect.cancel();
  t.deepEqual(await monitor.nth(2, 1_000), {});
  t.deepEqual(await grpcMonitor.nth(1, 1_000), { online: false });
  t.deepEqual(connect.lines, []);

  // A bad request is refused before any stream opens: a plain JSON error with its HTTP status.
  const bad = await fetch(`${base}/Monitor`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ name: "" }) });
  t.is(bad.status, 400);
  t.is(((await bad.json()) as { error: { status: string } }).error.status, "INVALID_ARGUMENT");
  monitor.cancel();
  grpcMonitor.cancel();
});

test("a Connect whose gRPC deadline passes is cancelled like any other: the user goes offline", async (t) => {
  const node = await startPresenceNode(t, redis!.url);
  const client = presence(t, node);
  const monitor = client.open<{ online: boolean }>("Monitor", { name: "gus" });
  t.deepEqual(await monitor.nth(0), { online: false });
  const connect = client.open("Connect", { name: "gus" }, { deadlineMs: 800 });
  t.deepEqual(await monitor.nth(1), { online: true });
  t.is((await connect.ended).code, status.DEADLINE_EXCEEDED);
  t.deepEqual(await monitor.nth(2, 1_000), { online: false });
  monitor.cancel();
});
