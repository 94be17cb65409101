// The sending end of the peer link (peer-server.ts): one TCP connection to one peer, made on
// first use and again after it closes, carrying any number of forwarded unary calls at once.
// Its calls end as GrpcChannel's do (the same GrpcCallError: status, details, trailers, and
// whether the request never left this node), so the forwarder handles both alike.
import { connect, type Socket } from "node:net";
import { GrpcCallError, type CallOptions, type CancelSignal } from "../grpc-http2/channel.js";
import { GrpcStatus } from "../grpc-http2/status.js";
import { deadlineTimer } from "../grpc-http2/timeout.js";
import { FrameError, FrameReader, FrameType, PairsReader, encodeBare, encodeCall, type Frame } from "./peer-wire.js";
import { FrameWriter } from "./peer-writer.js";

export interface PeerChannelOptions {
  /** Ping the peer this often on an open connection (ms); one that does not answer in time is dropped. */
  readonly keepaliveMs: number;
  readonly keepaliveTimeoutMs: number;
}

/** Largest answer frame accepted from a peer (a reply is as large as the entity's answer). */
const MAX_REPLY_FRAME_BYTES = 64 * 1024 * 1024;

/**
 * One call waiting for its answer: settled once, by the answer, a failure of the connection,
 * its deadline or the caller's cancel. One object per call (it is also the caller's abort
 * listener, through handleEvent), not a closure for each way it can end.
 */
class PendingCall {
  timer: NodeJS.Timeout | undefined;

  constructor(
    readonly link: Link,
    readonly id: number,
    readonly signal: CancelSignal | undefined,
    readonly onReply: (reply: Buffer) => void,
    readonly onError: (error: GrpcCallError) => void,
  ) {
    signal?.addEventListener("abort", this, ONCE);
  }

  resolve(reply: Buffer): void {
    this.#settle();
    this.onReply(reply);
  }

  fail(error: GrpcCallError): void {
    this.#settle();
    this.onError(error);
  }

  /** Ends the call here and tells the peer, unless it already ended. */
  cancel(code: number, details: string): void {
    if (this.link.pending.get(this.id) !== this) return;
    this.#settle();
    this.link.writer.write(encodeBare(FrameType.Cancel, this.id));
    this.onError(new GrpcCallError(code, details, NO_TRAILERS, false));
  }

  /** The caller's signal aborted. */
  handleEvent(): void {
    this.cancel(GrpcStatus.CANCELLED, "Cancelled on client");
  }

  #settle(): void {
    this.link.pending.delete(this.id);
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.signal?.removeEventListener("abort", this);
  }
}

const ONCE = { once: true } as const;

/** One connection, and whether it was ever established (a call on one that never was never left this node). */
interface Link {
  readonly socket: Socket;
  readonly writer: FrameWriter;
  readonly pending: Map<number, PendingCall>;
  connected: boolean;
  /** Armed by a ping, cleared by its pong; firing drops the connection. */
  pongDeadline?: NodeJS.Timeout;
}

const NO_TRAILERS = new PairsReader([]);

export class PeerChannel {
  readonly #host: string;
  readonly #port: number;
  readonly #options: PeerChannelOptions;
  #link: Link | undefined;
  #nextId = 1;
  #closed = false;

  /** `address` is host:port of the peer's peer link port. */
  constructor(address: string, options: PeerChannelOptions) {
    const colon = address.lastIndexOf(":");
    this.#host = address.slice(0, colon).replace(/^\[(.*)\]$/, "$1");
    this.#port = Number(address.slice(colon + 1));
    this.#options = options;
  }

  /** One unary call; rejects with a GrpcCallError. */
  unary(path: string, request: Uint8Array, options: CallOptions, signal?: CancelSignal): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      if (this.#closed) {
        reject(new GrpcCallError(GrpcStatus.UNAVAILABLE, "the peer could not be reached: the channel is closed", NO_TRAILERS, true));
        return;
      }
      const link = this.#linkNow();
      const id = this.#nextId;
      this.#nextId = id >= 0xffffffff ? 1 : id + 1;
      const call = new PendingCall(link, id, signal, resolve, reject);
      link.pending.set(id, call);
      const timeoutMs = options.deadline === undefined ? undefined : Math.max(0, options.deadline - Date.now());
      call.timer = deadlineTimer(timeoutMs, () => call.cancel(GrpcStatus.DEADLINE_EXCEEDED, "Deadline exceeded"));
      const metadata: Array<[string, string]> = [];
      for (const key in options.metadata) metadata.push([key, options.metadata[key]!]);
      link.writer.write(encodeCall(id, path, timeoutMs, metadata, request));
    });
  }

  /** Closes the connection; calls in flight fail with UNAVAILABLE. */
  close(): void {
    this.#closed = true;
    this.#link?.socket.destroy();
    this.#link = undefined;
  }

  #linkNow(): Link {
    const current = this.#link;
    // Not one the peer has ended (a graceful close): a call written there would never be read.
    if (current !== undefined && !current.socket.destroyed && current.socket.writable) return current;
    // Writes made before the connection is up are buffered by the socket and sent on connect.
    const socket = connect({ host: this.#host, port: this.#port, noDelay: true });
    const link: Link = { socket, writer: new FrameWriter(socket), pending: new Map(), connected: false };
    this.#link = link;
    const reader = new FrameReader(MAX_REPLY_FRAME_BYTES);
    let failure: Error | undefined;
    socket.once("connect", () => {
      link.connected = true;
      this.#keepalive(link);
    });
    socket.on("data", (chunk: Buffer) => {
      let frames: Frame[];
      try {
        frames = reader.push(chunk);
      } catch (err) {
        if (!(err instanceof FrameError)) throw err;
        failure = new Error(`the peer sent a malformed frame: ${err.message}`);
        socket.destroy();
        return;
      }
      for (const frame of frames) this.#answer(link, frame);
    });
    socket.on("error", (err) => {
      failure = err;
    });
    socket.once("close", () => {
      if (this.#link === link) this.#link = undefined;
      const neverSent = !link.connected;
      const why = failure?.message ?? "the connection closed";
      const error = new GrpcCallError(GrpcStatus.UNAVAILABLE, neverSent ? `the peer could not be reached: ${why}` : why, NO_TRAILERS, neverSent);
      const pending = [...link.pending.values()];
      link.pending.clear();
      for (const call of pending) call.fail(error);
    });
    return link;
  }

  #answer(link: Link, frame: Frame): void {
    if (frame.type === FrameType.Pong) {
      clearTimeout(link.pongDeadline);
      link.pongDeadline = undefined;
      return;
    }
    const call = link.pending.get(frame.id);
    if (call === undefined) return; // cancelled here, or timed out: its answer is dropped
    if (frame.type === FrameType.Reply) call.resolve(frame.payload);
    else if (frame.type === FrameType.Fail) call.fail(new GrpcCallError(frame.code, frame.details, new PairsReader(frame.trailers), false));
  }

  /** Pings an open connection; one the peer does not answer in time is dropped, so calls reconnect. */
  #keepalive(link: Link): void {
    const { keepaliveMs, keepaliveTimeoutMs } = this.#options;
    const { socket } = link;
    let ping = 0;
    const interval = setInterval(() => {
      if (link.pongDeadline !== undefined) return; // the last ping is still waiting
      link.pongDeadline = setTimeout(() => socket.destroy(new Error("the peer did not answer a ping in time")), keepaliveTimeoutMs);
      link.pongDeadline.unref();
      link.writer.write(encodeBare(FrameType.Ping, ping++));
    }, keepaliveMs);
    interval.unref();
    socket.once("close", () => {
      clearInterval(interval);
      clearTimeout(link.pongDeadline);
    });
  }
}
