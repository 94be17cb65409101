// The receiving end of the peer link: a TCP port on which the other nodes of the cluster send
// forwarded unary calls (peer-wire.ts frames). Each call runs the same unary handler as a
// gRPC call on the public port (metadata, deadline, cancel, status and trailers included),
// so the owner cannot tell the two hops apart; only the transport differs. A loopback
// node:http2 round trip between two processes costs ~260-300 us on a 2-core box, a TCP one
// ~55-65 us (bench/RESULTS.md, Cluster), and a forward is on the path of every call a node
// does not own. Server streams keep the HTTP/2 hop: they are opened once and then flow.
import { createServer, type Server, type Socket } from "node:net";
import type { UnaryCall, UnaryMethod } from "../grpc-http2/server.js";
import type { CancelReason } from "../grpc-http2/server-call.js";
import { responseMetadataPairs, type MetadataReader, type ResponseMetadata } from "../grpc-http2/metadata.js";
import { GrpcStatus } from "../grpc-http2/status.js";
import { listenOn } from "../listen.js";
import { log } from "../log.js";
import { deadlineTimer } from "../grpc-http2/timeout.js";
import { FrameError, FrameReader, FrameType, PairsReader, encodeBare, encodeFail, encodeReply, type CallFrame } from "./peer-wire.js";
import { FrameWriter } from "./peer-writer.js";

export interface PeerServerOptions {
  /** Largest request payload accepted, as on the gRPC port. */
  readonly maxReceiveMessageBytes: number;
  /** The unary handler served at a method path now (GrpcIngress.unaryMethod). */
  readonly lookup: (path: string) => UnaryMethod | undefined;
}

/** Frame bytes beyond the payload a call may carry (path, metadata). */
const FRAME_OVERHEAD_BYTES = 64 * 1024;

export class PeerServer {
  readonly #server: Server;
  /** Each open connection, with the number of its calls not answered yet. */
  readonly #sockets = new Map<Socket, { inFlight: number }>();
  readonly #options: PeerServerOptions;
  #closing = false;

  constructor(options: PeerServerOptions) {
    this.#options = options;
    this.#server = createServer((socket) => this.#connection(socket));
  }

  listen(host: string, port: number): Promise<number> {
    return listenOn(this.#server, host, port);
  }

  /**
   * Stops accepting connections; each open one closes once its calls are answered. Resolves
   * when all are closed (a graceful stop bounds the wait and then calls forceClose).
   */
  close(): Promise<void> {
    this.#closing = true;
    for (const [socket, state] of this.#sockets) if (state.inFlight === 0) socket.end();
    return new Promise((resolve) => this.#server.close(() => resolve()));
  }

  /** Drops every connection now: calls running here see a cancel, their senders UNAVAILABLE. */
  forceClose(): void {
    this.#closing = true;
    this.#server.close();
    for (const socket of this.#sockets.keys()) socket.destroy();
  }

  #connection(socket: Socket): void {
    socket.setNoDelay(true);
    const state = { inFlight: 0 };
    this.#sockets.set(socket, state);
    const writer = new FrameWriter(socket);
    const reader = new FrameReader(this.#options.maxReceiveMessageBytes + FRAME_OVERHEAD_BYTES);
    const calls = new Map<number, PeerCall>();
    socket.on("data", (chunk: Buffer) => {
      let frames;
      try {
        frames = reader.push(chunk);
      } catch (err) {
        if (!(err instanceof FrameError)) throw err;
        log().warn({ err: err.message, remote: socket.remoteAddress }, "peer link: a malformed frame; connection closed");
        socket.destroy();
        return;
      }
      for (const frame of frames) {
        if (frame.type === FrameType.Call) this.#call(frame, writer, calls, socket, state);
        else if (frame.type === FrameType.Cancel) calls.get(frame.id)?.cancel("cancelled");
        else if (frame.type === FrameType.Ping) writer.write(encodeBare(FrameType.Pong, frame.id));
      }
    });
    socket.on("error", () => undefined); // the close below cancels what was running
    socket.once("close", () => {
      this.#sockets.delete(socket);
      for (const call of calls.values()) call.cancel("cancelled");
      calls.clear();
    });
  }

  #call(frame: CallFrame, writer: FrameWriter, calls: Map<number, PeerCall>, socket: Socket, state: { inFlight: number }): void {
    state.inFlight++;
    const call = new PeerCall(frame, writer, () => {
      calls.delete(frame.id);
      // A closing server lets each connection finish its calls, then closes it (after the answer is written).
      if (--state.inFlight === 0 && this.#closing) setImmediate(() => socket.end());
    });
    const method = this.#options.lookup(frame.path);
    if (method === undefined) {
      call.fail(GrpcStatus.UNIMPLEMENTED, `The server does not implement the method ${frame.path}`);
      return;
    }
    if (frame.payload.length > this.#options.maxReceiveMessageBytes) {
      call.fail(GrpcStatus.RESOURCE_EXHAUSTED, `Received message larger than max (${frame.payload.length} vs. ${this.#options.maxReceiveMessageBytes})`);
      return;
    }
    calls.set(frame.id, call);
    try {
      method.handle(call, frame.payload);
    } catch (err) {
      // A handler that throws must not take the node down, as on the gRPC port.
      log().error({ err, path: frame.path }, "a peer link handler threw");
      call.fail(GrpcStatus.INTERNAL, "Internal server error");
    }
  }
}

/** One forwarded unary call: answered once (REPLY or FAIL), or cancelled by the sender, its connection or its deadline. */
class PeerCall implements UnaryCall {
  readonly path: string;
  readonly metadata: MetadataReader;
  readonly deadline: number | undefined;
  readonly #id: number;
  readonly #writer: FrameWriter;
  readonly #forget: () => void;
  #ended = false;
  #timer: NodeJS.Timeout | undefined;
  #onCancel: ((reason: CancelReason) => void) | undefined;

  constructor(frame: CallFrame, writer: FrameWriter, forget: () => void) {
    this.#id = frame.id;
    this.#writer = writer;
    this.#forget = forget;
    this.path = frame.path;
    this.metadata = new PairsReader(frame.metadata);
    const timeoutMs = frame.timeoutMs;
    // The sender's clock is not ours: the deadline travels as the time left, as grpc-timeout does.
    this.deadline = timeoutMs === undefined ? undefined : Date.now() + timeoutMs;
    this.#timer = deadlineTimer(timeoutMs, () => {
      this.fail(GrpcStatus.DEADLINE_EXCEEDED, "Deadline exceeded");
      this.#fire("deadline");
    });
  }

  onCancel(listener: (reason: CancelReason) => void): void {
    this.#onCancel = listener;
  }

  reply(message: Uint8Array, trailers?: ResponseMetadata): void {
    if (this.#end()) this.#writer.write(encodeReply(this.#id, responseMetadataPairs(trailers), message));
  }

  fail(code: number, details: string | undefined, trailers?: ResponseMetadata): void {
    if (this.#end()) this.#writer.write(encodeFail(this.#id, code, details ?? "", responseMetadataPairs(trailers)));
  }

  /** The sender left (CANCEL, or its connection closed) before the answer: the handler's listener runs. */
  cancel(reason: CancelReason): void {
    if (this.#end()) this.#fire(reason);
  }

  #fire(reason: CancelReason): void {
    const listener = this.#onCancel;
    this.#onCancel = undefined;
    listener?.(reason);
  }

  /** Marks the call ended; false when it already was. */
  #end(): boolean {
    if (this.#ended) return false;
    this.#ended = true;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#forget();
    return true;
  }
}
