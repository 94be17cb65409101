// The node-to-node gRPC client (host/grpc-http2/channel.ts) against the node's gRPC server:
// what a forwarded call relies on — replies, a peer's status with its message and trailers,
// deadlines and cancels that reach the peer, "never sent" only when no connection was ever
// made (a forwarded call may then go elsewhere), streams, and a peer that is not gRPC.
import test from "ava";
import { createServer as createHttp2Server } from "node:http2";
import { createServer as createNetServer, type AddressInfo } from "node:net";
import { GrpcCallError, GrpcChannel } from "../../host/grpc-http2/channel.js";
import { GrpcServer } from "../../host/grpc-http2/server.js";
import type { ServerCall } from "../../host/grpc-http2/server-call.js";
import { GrpcStatus } from "../../host/grpc-http2/status.js";

const KEEPALIVE = { keepaliveMs: 10_000, keepaliveTimeoutMs: 5_000 };

interface Peer {
  readonly server: GrpcServer;
  readonly address: string;
  readonly seen: { metadata?: Record<string, string>; deadline?: number; handledAt?: number; cancelled: boolean };
}

async function peer(): Promise<Peer> {
  const server = new GrpcServer({ maxReceiveMessageBytes: 1024 * 1024 });
  const seen: Peer["seen"] = { cancelled: false };
  const record = (call: ServerCall) => {
    seen.metadata = { forwarded: String(call.metadata.get("x-forwarded")[0] ?? ""), requestId: String(call.metadata.get("x-request-id")[0] ?? "") };
    seen.deadline = call.deadline;
    seen.handledAt = Date.now();
    call.onCancel(() => (seen.cancelled = true));
  };
  server.add("/t.T/Echo", { requestStream: false, kind: "unary", handle: (call, request) => (record(call), call.reply(Buffer.concat([Buffer.from("echo:"), request]))) });
  server.add("/t.T/Refuse", {
    requestStream: false,
    kind: "unary",
    handle: (call) => call.fail(GrpcStatus.FAILED_PRECONDITION, "café is closed 100%", { "x-moved": "node-b" }),
  });
  server.add("/t.T/Hang", { requestStream: false, kind: "unary", handle: (call) => record(call) });
  server.add("/t.T/Later", { requestStream: false, kind: "unary", handle: (call, request) => setTimeout(() => call.reply(request), 30) });
  server.add("/t.T/Count", {
    requestStream: false,
    kind: "server streaming",
    handle: (call, request) => {
      const n = request[0]!;
      for (let i = 0; i < n; i++) call.write(Buffer.from([i]));
      if (request[1] === 1) call.fail(GrpcStatus.ABORTED, "stopped after the messages");
      else call.end();
    },
  });
  const port = await server.listen("127.0.0.1", 0);
  return { server, address: `127.0.0.1:${port}`, seen };
}

async function failure(promise: Promise<unknown>): Promise<GrpcCallError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(err instanceof GrpcCallError)) throw new Error(`expected a GrpcCallError, got ${String(err)}`);
  return err;
}

test("a unary call gets the peer's reply; metadata and the deadline reach the peer", async (t) => {
  const p = await peer();
  const channel = new GrpcChannel(p.address, KEEPALIVE);
  const deadline = Date.now() + 5_000;
  const sentAfter = Date.now();
  const reply = await channel.unary("/t.T/Echo", Buffer.from("hi"), { metadata: { "x-forwarded": "node-a", "x-request-id": "r-1" }, deadline });
  t.is(reply.toString(), "echo:hi");
  t.deepEqual(p.seen.metadata, { forwarded: "node-a", requestId: "r-1" });
  // grpc-timeout is relative (whole ms, rounded up): the peer's deadline may pass the caller's by
  // the time the request took to reach it, and no more. (A fixed slack failed on a loaded box.)
  const transitMs = p.seen.handledAt! - sentAfter;
  t.true(p.seen.deadline! > deadline - 1_000 && p.seen.deadline! <= deadline + transitMs + 1, `peer deadline ${p.seen.deadline} vs ${deadline} (${transitMs} ms in transit)`);
  // Many calls on one connection, concurrently.
  const replies = await Promise.all(Array.from({ length: 50 }, (_, i) => channel.unary("/t.T/Echo", Buffer.from(String(i)), { metadata: {} })));
  t.deepEqual(
    replies.map((r) => r.toString()),
    Array.from({ length: 50 }, (_, i) => `echo:${i}`),
  );
  channel.close();
  await p.server.close();
});

test("a peer's error status arrives with its code, its (decoded) message and its trailers; never-sent is false", async (t) => {
  const p = await peer();
  const channel = new GrpcChannel(p.address, KEEPALIVE);
  const err = await failure(channel.unary("/t.T/Refuse", Buffer.alloc(0), { metadata: {} }));
  t.is(err.code, GrpcStatus.FAILED_PRECONDITION);
  t.is(err.details, "café is closed 100%");
  t.deepEqual(err.trailers.get("x-moved"), ["node-b"]);
  t.false(err.neverSent);
  const unknown = await failure(channel.unary("/t.T/Nope", Buffer.alloc(0), { metadata: {} }));
  t.is(unknown.code, GrpcStatus.UNIMPLEMENTED);
  t.is(unknown.details, "The server does not implement the method /t.T/Nope");
  channel.close();
  await p.server.close();
});

test("a deadline ends the call with DEADLINE_EXCEEDED here and cancels it at the peer; an abort cancels it too", async (t) => {
  const p = await peer();
  const channel = new GrpcChannel(p.address, KEEPALIVE);
  const started = Date.now();
  const late = await failure(channel.unary("/t.T/Hang", Buffer.alloc(0), { metadata: {}, deadline: Date.now() + 150 }));
  t.is(late.code, GrpcStatus.DEADLINE_EXCEEDED);
  t.true(Date.now() - started < 2_000);
  await waitFor(() => p.seen.cancelled);
  t.true(p.seen.cancelled, "the peer's handler saw the cancel");

  p.seen.cancelled = false;
  const controller = new AbortController();
  const pending = failure(channel.unary("/t.T/Hang", Buffer.alloc(0), { metadata: {} }, controller.signal));
  await waitFor(() => p.seen.metadata !== undefined);
  controller.abort();
  const aborted = await pending;
  t.is(aborted.code, GrpcStatus.CANCELLED);
  await waitFor(() => p.seen.cancelled);
  t.true(p.seen.cancelled);
  channel.close();
  await p.server.close();
});

test("a deadline further off than a timer can hold (30 days) is no deadline at all, on either side, not an instant one", async (t) => {
  const p = await peer();
  const channel = new GrpcChannel(p.address, KEEPALIVE);
  const farOff = Date.now() + 30 * 24 * 3600 * 1000;
  t.is((await channel.unary("/t.T/Later", Buffer.from("late"), { metadata: {}, deadline: farOff })).toString(), "late");
  channel.close();
  await p.server.close();
});

test("no listener at the address: the call fails UNAVAILABLE and never-sent is true", async (t) => {
  const port = await freePort();
  const channel = new GrpcChannel(`127.0.0.1:${port}`, KEEPALIVE);
  const err = await failure(channel.unary("/t.T/Echo", Buffer.from("x"), { metadata: {} }));
  t.is(err.code, GrpcStatus.UNAVAILABLE);
  t.true(err.neverSent);
  t.regex(err.details, /ECONNREFUSED/);
  channel.close();
});

test("the peer drops the connection while a call is in flight: UNAVAILABLE, never-sent false; the next call reconnects", async (t) => {
  const p = await peer();
  const channel = new GrpcChannel(p.address, KEEPALIVE);
  t.is((await channel.unary("/t.T/Echo", Buffer.from("a"), { metadata: {} })).toString(), "echo:a");
  const pending = failure(channel.unary("/t.T/Hang", Buffer.alloc(0), { metadata: {} }));
  await waitFor(() => p.seen.metadata !== undefined);
  p.server.forceClose();
  const err = await pending;
  t.is(err.code, GrpcStatus.UNAVAILABLE);
  t.false(err.neverSent, "the request had reached the peer: it must not be sent elsewhere as if it never ran");
  // A new server on the same port: the channel connects again.
  const again = new GrpcServer({ maxReceiveMessageBytes: 1024 });
  again.add("/t.T/Echo", { requestStream: false, kind: "unary", handle: (call, request) => call.reply(request) });
  await again.listen("127.0.0.1", Number(p.address.split(":")[1]));
  t.is((await channel.unary("/t.T/Echo", Buffer.from("b"), { metadata: {} })).toString(), "b");
  channel.close();
  await again.close();
});

test("a server stream delivers its messages in order, then OK or the peer's status", async (t) => {
  const p = await peer();
  const channel = new GrpcChannel(p.address, KEEPALIVE);
  const run = (request: Buffer) =>
    new Promise<{ opened: boolean; messages: number[]; error?: GrpcCallError }>((resolve) => {
      const seen = { opened: false, messages: [] as number[] };
      channel.serverStream("/t.T/Count", request, { metadata: {} }, {
        opened: () => (seen.opened = true),
        message: (bytes) => seen.messages.push(bytes[0]!),
        ended: (error) => resolve(error ? { ...seen, error } : seen),
      });
    });
  t.deepEqual(await run(Buffer.from([5, 0])), { opened: true, messages: [0, 1, 2, 3, 4] });
  const failed = await run(Buffer.from([3, 1]));
  t.deepEqual(failed.messages, [0, 1, 2]);
  t.is(failed.error?.code, GrpcStatus.ABORTED);
  t.is(failed.error?.details, "stopped after the messages");
  // No message then an error: trailers-only, and "opened" is never reported.
  const refused = await new Promise<{ opened: boolean; error?: GrpcCallError }>((resolve) => {
    let opened = false;
    channel.serverStream("/t.T/Refuse", Buffer.alloc(0), { metadata: {} }, { opened: () => (opened = true), message: () => undefined, ended: (error) => resolve({ opened, error }) });
  });
  t.false(refused.opened);
  t.is(refused.error?.code, GrpcStatus.FAILED_PRECONDITION);
  channel.close();
  await p.server.close();
});

test("a peer that answers plain HTTP/2 (not gRPC) gives a status mapped from its HTTP status", async (t) => {
  const plain = createHttp2Server();
  plain.on("stream", (stream) => stream.respond({ ":status": 503 }, { endStream: true }));
  await new Promise<void>((resolve) => plain.listen(0, "127.0.0.1", resolve));
  const channel = new GrpcChannel(`127.0.0.1:${(plain.address() as AddressInfo).port}`, KEEPALIVE);
  const err = await failure(channel.unary("/t.T/Echo", Buffer.alloc(0), { metadata: {} }));
  t.is(err.code, GrpcStatus.UNAVAILABLE);
  t.is(err.details, "the peer answered HTTP 503, not gRPC");
  t.false(err.neverSent);
  channel.close();
  await new Promise<void>((resolve) => plain.close(() => resolve()));
});

async function waitFor(condition: () => boolean, ms = 3_000): Promise<void> {
  const until = Date.now() + ms;
  while (!condition() && Date.now() < until) await new Promise((resolve) => setTimeout(resolve, 10));
}

async function freePort(): Promise<number> {
  const server = createNetServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}
