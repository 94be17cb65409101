// A gRPC server on node:http2 — the node's gRPC port. It replaces grpc-js's server (grpc-js
// stays the client: the CLI, forwarding between nodes, tests and benches) because per call
// grpc-js runs interceptor chains, a Metadata object, a stream decoder and several closures
// and timers that a call routed to an entity never uses; measured in bench/RESULTS.md.
// Methods are added and removed at run time (deploys), each looked up by path per call.
import { createServer, type Http2Server, type Http2Session, type IncomingHttpHeaders, type ServerHttp2Stream } from "node:http2";
import { listenOn } from "../listen.js";
import { log } from "../log.js";
import { ServerCall, type CancelReason } from "./server-call.js";
import type { MetadataReader, ResponseMetadata } from "./metadata.js";
import { GrpcStatus } from "./status.js";

/**
 * What a unary handler uses of its call: the request's metadata and deadline, a cancel
 * listener, and the one answer. A ServerCall is one; so is a call that came over the
 * cluster's peer link (host/cluster/peer-server.ts), which runs the same handlers.
 */
export interface UnaryCall {
  readonly path: string;
  readonly metadata: MetadataReader;
  /** Epoch ms; undefined without a deadline. */
  readonly deadline: number | undefined;
  onCancel(listener: (reason: CancelReason) => void): void;
  reply(message: Uint8Array, trailers?: ResponseMetadata): void;
  fail(code: number, details: string | undefined, trailers?: ResponseMetadata): void;
}

/** A method whose client sends one message (unary and server streaming): called after it arrived. */
export interface SingleRequestMethod {
  readonly requestStream: false;
  /** For error messages: "unary" or "server streaming". */
  readonly kind: string;
  handle(call: ServerCall, request: Buffer): void;
}

/** A unary method that needs no more of its call than UnaryCall, so the peer link can run it too. */
export interface UnaryMethod extends SingleRequestMethod {
  readonly kind: "unary";
  handle(call: UnaryCall, request: Buffer): void;
}

/** A method whose client streams: called at once; it reads with `call.read`. */
export interface StreamingRequestMethod {
  readonly requestStream: true;
  handle(call: ServerCall): void;
}

export type MethodHandler = SingleRequestMethod | StreamingRequestMethod;

export interface GrpcServerOptions {
  /** Largest request message accepted, in bytes (RESOURCE_EXHAUSTED beyond). */
  readonly maxReceiveMessageBytes: number;
}

/** Shared by every stream: not a closure per call. */
const ignoreStreamError = (): void => undefined;

export class GrpcServer {
  readonly #http2: Http2Server;
  readonly #methods = new Map<string, MethodHandler>();
  readonly #sessions = new Set<Http2Session>();
  readonly #maxMessageBytes: number;

  constructor(options: GrpcServerOptions) {
    this.#maxMessageBytes = options.maxReceiveMessageBytes;
    // The same session limits grpc-js sets: Node's default session memory cap makes a busy
    // connection refuse new streams, and gRPC metadata may be long.
    this.#http2 = createServer({ maxSessionMemory: Number.MAX_SAFE_INTEGER, maxSendHeaderBlockLength: Number.MAX_SAFE_INTEGER });
    this.#http2.on("session", (session) => {
      this.#sessions.add(session);
      session.once("close", () => this.#sessions.delete(session));
      session.on("error", () => undefined); // a broken connection closes its streams; each call sees that as a cancel
    });
    this.#http2.on("stream", (stream, headers) => this.#stream(stream, headers));
  }

  /** Serves `handler` at `path` ("/package.Service/Method"), replacing what was there. */
  add(path: string, handler: MethodHandler): void {
    this.#methods.set(path, handler);
  }

  remove(path: string): void {
    this.#methods.delete(path);
  }


  listen(host: string, port: number): Promise<number> {
    return listenOn(this.#http2, host, port);
  }

  /** Stops accepting connections and calls; resolves when the calls in flight have finished. */
  close(): Promise<void> {
    return new Promise((resolve) => {
      this.#http2.close(() => resolve());
      for (const session of this.#sessions) session.close(); // GOAWAY: running streams finish
    });
  }

  /** Drops every connection now; calls in flight see a cancel. */
  forceClose(): void {
    this.#http2.close();
    for (const session of this.#sessions) session.destroy();
  }

  #stream(stream: ServerHttp2Stream, headers: IncomingHttpHeaders): void {
    // A reset or write after the client left surfaces here; the call sees it as a cancel.
    stream.on("error", ignoreStreamError);
    const contentType = headers["content-type"];
    if (typeof contentType !== "string" || !contentType.startsWith("application/grpc")) {
      stream.respond({ ":status": 415 }, { endStream: true });
      return;
    }
    const path = headers[":path"] ?? "";
    const call = new ServerCall(stream, headers, path, this.#maxMessageBytes);
    const method = this.#methods.get(path);
    if (method === undefined) {
      call.fail(GrpcStatus.UNIMPLEMENTED, `The server does not implement the method ${path}`);
      return;
    }
    // After the method lookup, as grpc-js: an unknown method is UNIMPLEMENTED whatever its timeout.
    if (call.failIfTimeoutInvalid()) return;
    if (method.requestStream) {
      this.#run(call, () => method.handle(call));
      return;
    }
    let request: Buffer | undefined;
    call.read(
      (message) => {
        if (request === undefined) request = message;
        else call.fail(GrpcStatus.UNIMPLEMENTED, `Received a second request message for ${method.kind} method ${path}`);
      },
      () => {
        if (request === undefined) call.fail(GrpcStatus.UNIMPLEMENTED, `Received no request message for ${method.kind} method ${path}`);
        else this.#run(call, () => method.handle(call, request!));
      },
    );
  }

  /** A handler that throws must not take the node down: the call gets INTERNAL, the error is logged. */
  #run(call: ServerCall, handle: () => void): void {
    try {
      handle();
    } catch (err) {
      log().error({ err, path: call.path }, "a gRPC handler threw");
      call.fail(GrpcStatus.INTERNAL, "Internal server error");
    }
  }
}
