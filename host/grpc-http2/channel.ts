// A gRPC client channel on node:http2 to one address: the node-to-node hop of a forwarded
// call. One HTTP/2 connection, made on first use and again after it closes; calls are
// unary or server streaming with raw message bytes (a forwarded call relays what it was
// given). grpc-js stays the client for the CLI and tests: this is the hot path of a cluster,
// where grpc-js's per-call client machinery (interceptors, resolver, load-balancer picks,
// Metadata objects) was most of the forwarding hop's cost (bench/RESULTS.md, Cluster).
import { connect, constants, type ClientHttp2Session, type ClientHttp2Stream, type IncomingHttpHeaders, type OutgoingHttpHeaders } from "node:http2";
import { MessageReader, frameMessage } from "./messages.js";
import { RequestMetadata, type MetadataReader } from "./metadata.js";
import { GrpcStatus } from "./status.js";
import { deadlineTimer } from "./timeout.js";

export interface ChannelOptions {
  /** Ping the peer this often on an open connection (ms); a peer that does not answer in time is dropped. */
  readonly keepaliveMs: number;
  readonly keepaliveTimeoutMs: number;
}

/** How a call ended other than OK: the peer's status, or one made on this side (deadline, cancel, connection). */
export class GrpcCallError extends Error {
  constructor(
    readonly code: number,
    readonly details: string,
    readonly trailers: MetadataReader,
    /** True when the request never reached the peer (no connection was made): safe to send elsewhere. */
    readonly neverSent: boolean,
  ) {
    super(details);
  }
}

export interface CallOptions {
  /** Request metadata (ASCII values). */
  readonly metadata: Readonly<Record<string, string>>;
  /** Epoch ms; sent as grpc-timeout and enforced here too. */
  readonly deadline?: number;
}

/** What cancels a call: an AbortSignal, or anything with the same two methods. */
export interface CancelSignal {
  addEventListener(type: "abort", listener: (() => void) | { handleEvent(): void }, options?: { once?: boolean }): void;
  removeEventListener(type: "abort", listener: (() => void) | { handleEvent(): void }): void;
}

export interface StreamListener {
  /** The peer's response headers arrived (the stream is open). */
  opened(): void;
  message(bytes: Buffer): void;
  /** Exactly once: undefined for OK, else why the stream ended. */
  ended(error: GrpcCallError | undefined): void;
}

const NO_METADATA = new RequestMetadata({});

/** One connection and whether it was ever established (a call on one that never was never left this node). */
interface Link {
  readonly session: ClientHttp2Session;
  connected: boolean;
}

export class GrpcChannel {
  readonly #url: string;
  readonly #options: ChannelOptions;
  #link: Link | undefined;
  #closed = false;

  constructor(address: string, options: ChannelOptions) {
    this.#url = `http://${address}`;
    this.#options = options;
  }

  /** One unary call; rejects with a GrpcCallError. */
  unary(path: string, request: Uint8Array, options: CallOptions, signal?: CancelSignal): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      let reply: Buffer | undefined;
      this.#call(path, request, options, signal, {
        opened: () => undefined,
        message: (bytes) => {
          reply = bytes;
        },
        ended: (error) => {
          if (error) reject(error);
          else if (reply === undefined) reject(new GrpcCallError(GrpcStatus.UNIMPLEMENTED, "the peer answered a unary call with no message", NO_METADATA, false));
          else resolve(reply);
        },
      });
    });
  }

  /** A server-streaming call; `cancel()` resets it (the listener then hears nothing more). */
  serverStream(path: string, request: Uint8Array, options: CallOptions, listener: StreamListener): { cancel(): void } {
    return this.#call(path, request, options, undefined, listener);
  }

  close(): void {
    this.#closed = true;
    this.#link?.session.close();
    this.#link = undefined;
  }

  #call(path: string, request: Uint8Array, options: CallOptions, signal: CancelSignal | undefined, listener: StreamListener): { cancel(): void } {
    let done = false;
    let timer: NodeJS.Timeout | undefined;
    const end = (error: GrpcCallError | undefined) => {
      if (done) return;
      done = true;
      if (timer !== undefined) clearTimeout(timer);
      signal?.removeEventListener("abort", onAbort);
      listener.ended(error);
    };
    const headers: OutgoingHttpHeaders = { ":method": "POST", ":path": path, "content-type": "application/grpc", te: "trailers", ...options.metadata };
    if (options.deadline !== undefined) headers["grpc-timeout"] = timeoutHeader(options.deadline - Date.now());
    let stream: ClientHttp2Stream;
    const link = this.#linkNow();
    try {
      stream = link.session.request(headers);
    } catch (err) {
      end(new GrpcCallError(GrpcStatus.UNAVAILABLE, `the peer could not be reached: ${(err as Error).message}`, NO_METADATA, true));
      return { cancel: () => undefined };
    }
    const cancel = (code: number, details: string) => {
      end(new GrpcCallError(code, details, NO_METADATA, false));
      if (!stream.closed) stream.close(constants.NGHTTP2_CANCEL);
    };
    const onAbort = () => cancel(GrpcStatus.CANCELLED, "Cancelled on client");
    signal?.addEventListener("abort", onAbort, { once: true });
    const timeoutMs = options.deadline === undefined ? undefined : Math.max(0, options.deadline - Date.now());
    timer = deadlineTimer(timeoutMs, () => cancel(GrpcStatus.DEADLINE_EXCEEDED, "Deadline exceeded"));
    const reader = new MessageReader(Number.MAX_SAFE_INTEGER);
    let trailers: IncomingHttpHeaders | undefined;
    let failure: Error | undefined;
    let httpStatus = 0;
    stream.once("response", (responseHeaders) => {
      httpStatus = Number(responseHeaders[":status"]);
      if (responseHeaders["grpc-status"] !== undefined) trailers = responseHeaders; // trailers-only
      else if (httpStatus === 200 && !done) listener.opened();
    });
    stream.on("data", (chunk: Buffer) => {
      if (done) return;
      for (const message of reader.push(chunk)) {
        if (message.compressed) return cancel(GrpcStatus.INTERNAL, "the peer sent a compressed message, which was not asked for");
        listener.message(message.bytes);
      }
    });
    stream.once("trailers", (received) => {
      trailers = received;
    });
    stream.on("error", (err) => {
      failure = err;
    });
    stream.once("close", () => {
      if (done) return;
      if (trailers !== undefined) return end(statusError(trailers));
      if (httpStatus !== 0 && httpStatus !== 200) return end(httpError(httpStatus));
      // No status: the connection failed or the peer reset the stream.
      const neverSent = !link.connected;
      const why = failure?.message ?? `the stream was reset (HTTP/2 code ${stream.rstCode})`;
      end(new GrpcCallError(GrpcStatus.UNAVAILABLE, neverSent ? `the peer could not be reached: ${why}` : why, NO_METADATA, neverSent));
    });
    stream.end(frameMessage(request));
    return { cancel: () => cancel(GrpcStatus.CANCELLED, "Cancelled on client") };
  }

  #linkNow(): Link {
    const current = this.#link;
    if (current !== undefined && !current.session.closed && !current.session.destroyed) return current;
    // Same session limit as grpc-js: Node's default makes a busy connection refuse streams.
    const link: Link = { session: connect(this.#url, { maxSessionMemory: Number.MAX_SAFE_INTEGER }), connected: false };
    this.#link = link;
    const { session } = link;
    session.once("connect", () => {
      link.connected = true;
      this.#keepalive(session);
    });
    const forget = () => {
      if (this.#link === link) this.#link = undefined;
    };
    session.once("close", forget);
    session.once("goaway", forget);
    session.on("error", () => undefined); // each stream on it sees the failure
    if (this.#closed) session.close();
    return link;
  }

  /** Pings an open connection; one the peer does not answer in time is dropped, so calls reconnect. */
  #keepalive(session: ClientHttp2Session): void {
    const { keepaliveMs, keepaliveTimeoutMs } = this.#options;
    const interval = setInterval(() => {
      const timeout = setTimeout(() => session.destroy(), keepaliveTimeoutMs);
      timeout.unref();
      const sent = session.ping((err) => {
        clearTimeout(timeout);
        if (err) session.destroy();
      });
      if (!sent) clearTimeout(timeout);
    }, keepaliveMs);
    interval.unref();
    session.once("close", () => clearInterval(interval));
  }
}

/** A GrpcCallError for a non-OK status; undefined for OK. */
function statusError(trailers: IncomingHttpHeaders): GrpcCallError | undefined {
  const code = Number(trailers["grpc-status"]);
  if (code === GrpcStatus.OK) return undefined;
  const raw = trailers["grpc-message"];
  let details = typeof raw === "string" ? raw : "";
  try {
    details = decodeURIComponent(details);
  } catch {
    // not percent-encoded after all: keep it as sent
  }
  return new GrpcCallError(Number.isInteger(code) ? code : GrpcStatus.UNKNOWN, details, new RequestMetadata(trailers), false);
}

/** An answer that is not gRPC (a proxy, or not a Keystate port): the HTTP status mapped as gRPC clients map it. */
function httpError(status: number): GrpcCallError {
  const code = status === 401 ? GrpcStatus.UNAUTHENTICATED : status === 403 ? GrpcStatus.PERMISSION_DENIED : status === 404 ? GrpcStatus.UNIMPLEMENTED : status === 429 || (status >= 502 && status <= 504) ? GrpcStatus.UNAVAILABLE : GrpcStatus.UNKNOWN;
  return new GrpcCallError(code, `the peer answered HTTP ${status}, not gRPC`, NO_METADATA, false);
}

/** grpc-timeout: at most 8 digits and a unit. */
function timeoutHeader(ms: number): string {
  const left = Math.max(1, Math.ceil(ms));
  return left < 100_000_000 ? `${left}m` : `${Math.ceil(left / 1000)}S`;
}
