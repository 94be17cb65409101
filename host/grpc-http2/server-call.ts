// One gRPC call on one HTTP/2 stream, server side: its request metadata and deadline, the
// messages it receives, and the one way it ends (a status, once). Follows gRPC over HTTP/2
// (doc/PROTOCOL-HTTP2.md of grpc/grpc) and grpc-js's server where the spec leaves a choice,
// so a client cannot tell the two servers apart.
import type { IncomingHttpHeaders, OutgoingHttpHeaders, ServerHttp2Stream } from "node:http2";
import { deadlineTimer, parseGrpcTimeout } from "./timeout.js";
import { ACCEPTED_ENCODINGS, DecompressError, decompress } from "./decompress.js";
import { MessageReader, MessageTooLarge, frameMessage, type FramedMessage } from "./messages.js";
import { RequestMetadata, addResponseMetadata, type ResponseMetadata } from "./metadata.js";
import { GrpcStatus } from "./status.js";

const CONTENT_TYPE = "application/grpc+proto";

function responseHeaders(metadata: ResponseMetadata | undefined): OutgoingHttpHeaders {
  if (metadata === undefined) return PLAIN_HEADERS;
  const headers: Record<string, string | number | string[]> = { ...PLAIN_HEADERS };
  addResponseMetadata(headers, metadata);
  return headers;
}

// Node copies the headers it is given, so calls without metadata share one object. No date
// header: gRPC does not use it, and it is one more field to encode per response.
const PLAIN_HEADERS: Readonly<Record<string, string | number | string[]>> = {
  ":status": 200,
  "content-type": CONTENT_TYPE,
  "grpc-accept-encoding": ACCEPTED_ENCODINGS,
  "grpc-encoding": "identity",
};
const HEADERS_THEN_MORE = { waitForTrailers: true, sendDate: false } as const;
const TRAILERS_ONLY = { endStream: true, sendDate: false } as const;

function statusTrailers(code: number, details: string | undefined, metadata: ResponseMetadata | undefined): Record<string, string | number | string[]> {
  const trailers: Record<string, string | number | string[]> = { "grpc-status": code };
  // grpc-message is percent-encoded; grpc-js clients read it with decodeURI.
  if (details) trailers["grpc-message"] = encodeURI(details);
  addResponseMetadata(trailers, metadata);
  return trailers;
}

/** Where a stream's shared listeners find their call. */
const CALL = Symbol("grpc call");
type CallStream = ServerHttp2Stream & { [CALL]?: ServerCall };

/** Why a call ended before its handler answered: the client left, or its deadline passed. */
export type CancelReason = "cancelled" | "deadline";

export class ServerCall {
  readonly path: string;
  readonly metadata: RequestMetadata;
  /** When the client's grpc-timeout runs out (ms since the epoch); undefined without one. */
  readonly deadline: number | undefined;
  readonly #stream: ServerHttp2Stream;
  readonly #encoding: string;
  readonly #maxMessageBytes: number;
  #reader: MessageReader | undefined;
  #headersSent = false;
  #ended = false;
  #cancelled = false;
  #deadlineTimer: NodeJS.Timeout | undefined;
  /** The grpc-timeout header as sent, when it did not parse. */
  #invalidTimeout: string | undefined;
  #onCancel: ((reason: CancelReason) => void) | undefined;
  #onMessage: ((message: Buffer) => void) | undefined;
  #onHalfClose: (() => void) | undefined;
  /** Set once a compressed message arrives: later messages and the half-close wait their turn. */
  #inbox: Promise<void> | undefined;
  /** The status trailers, from the end of the last message until HTTP/2 asks for them. */
  #trailers: OutgoingHttpHeaders | undefined;

  constructor(stream: ServerHttp2Stream, headers: IncomingHttpHeaders, path: string, maxMessageBytes: number) {
    this.#stream = stream;
    this.path = path;
    this.metadata = new RequestMetadata(headers);
    this.#maxMessageBytes = maxMessageBytes;
    const encoding = headers["grpc-encoding"];
    this.#encoding = typeof encoding === "string" ? encoding : "identity";
    let timeoutMs: number | undefined;
    try {
      timeoutMs = parseGrpcTimeout(headers["grpc-timeout"]);
    } catch {
      // Answered by failIfTimeoutInvalid, once the server knows the method exists.
      this.#invalidTimeout = String(headers["grpc-timeout"]);
    }
    this.deadline = timeoutMs === undefined ? undefined : Date.now() + timeoutMs;
    this.#deadlineTimer = deadlineTimer(timeoutMs, () => {
      this.fail(GrpcStatus.DEADLINE_EXCEEDED, "Deadline exceeded");
      this.#cancel("deadline");
    });
    // The stream's listeners are shared functions that find their call on the stream: no
    // closures (and no once() wrappers) per call. Each of these events fires once per stream.
    (stream as CallStream)[CALL] = this;
    stream.on("close", ServerCall.#streamClosed);
  }

  static #streamClosed(this: CallStream): void {
    const call = this[CALL]!;
    if (!call.#ended) call.#cancel("cancelled");
  }

  static #streamData(this: CallStream, chunk: Buffer): void {
    this[CALL]!.#data(chunk);
  }

  static #streamEnded(this: CallStream): void {
    this[CALL]!.#halfClosed();
  }

  static #streamWantsTrailers(this: CallStream): void {
    const call = this[CALL]!;
    const trailers = call.#trailers!;
    call.#trailers = undefined;
    this.sendTrailers(trailers);
  }

  /** Answers INTERNAL when the client's grpc-timeout did not parse (grpc-core does too); whether it did. */
  failIfTimeoutInvalid(): boolean {
    if (this.#invalidTimeout === undefined) return false;
    this.fail(GrpcStatus.INTERNAL, `Invalid grpc-timeout value "${this.#invalidTimeout}"`);
    return true;
  }

  /** True once a status was sent or the call was cancelled: nothing more goes out. */
  get ended(): boolean {
    return this.#ended;
  }

  /**
   * `listener` runs once if the client cancels or the connection drops ("cancelled"), or the
   * deadline passes ("deadline"), before the call ends. The call's one deadline timer is here,
   * so a handler needs none of its own.
   */
  onCancel(listener: (reason: CancelReason) => void): void {
    this.#onCancel = listener;
  }

  /** Starts reading the request stream: each message to `onMessage`, then `onHalfClose` when the client is done sending. */
  read(onMessage: (message: Buffer) => void, onHalfClose: () => void): void {
    this.#onMessage = onMessage;
    this.#onHalfClose = onHalfClose;
    this.#reader = new MessageReader(this.#maxMessageBytes);
    this.#stream.on("data", ServerCall.#streamData);
    this.#stream.on("end", ServerCall.#streamEnded);
  }

  /** Sends the response headers now (with `metadata`); otherwise they go with the first message or the status. */
  sendMetadata(metadata?: ResponseMetadata): void {
    if (this.#ended || this.#headersSent) return;
    this.#headersSent = true;
    this.#stream.respond(responseHeaders(metadata), HEADERS_THEN_MORE);
  }

  /** Sends one message; false when the stream's buffer is full (more can be written, it is queued). */
  write(message: Uint8Array): boolean {
    if (this.#ended) return false;
    this.sendMetadata();
    return this.#stream.write(frameMessage(message));
  }

  /** The unary answer: headers, the one message and an OK status, in as few writes as HTTP/2 allows. */
  reply(message: Uint8Array, trailers?: ResponseMetadata): void {
    if (this.#ended) return;
    this.sendMetadata();
    this.#finish(statusTrailers(GrpcStatus.OK, undefined, trailers), frameMessage(message));
  }

  /** Ends the call with OK. */
  end(trailers?: ResponseMetadata): void {
    this.fail(GrpcStatus.OK, undefined, trailers);
  }

  /** Ends the call with `code` (trailers-only when nothing was sent yet, as grpc-js does). */
  fail(code: number, details: string | undefined, trailers?: ResponseMetadata): void {
    if (this.#ended) return;
    const status = statusTrailers(code, details, trailers);
    if (this.#headersSent) {
      this.#finish(status, undefined);
      return;
    }
    this.#ended = true;
    this.#clearDeadline();
    if (this.#stream.destroyed || this.#stream.closed) return;
    // Trailers-only is :status, content-type and the status (no grpc-encoding headers, as
    // grpc-js): a client reads these fields as trailers, so more would show as error metadata.
    this.#stream.respond({ ":status": 200, "content-type": CONTENT_TYPE, ...status }, TRAILERS_ONLY);
  }

  #finish(trailers: OutgoingHttpHeaders, last: Buffer | undefined): void {
    this.#ended = true;
    this.#clearDeadline();
    const stream = this.#stream;
    if (stream.destroyed || stream.closed) return;
    this.#trailers = trailers;
    stream.on("wantTrailers", ServerCall.#streamWantsTrailers);
    if (last === undefined) stream.end();
    else stream.end(last);
  }

  #cancel(reason: CancelReason): void {
    if (this.#cancelled) return;
    this.#cancelled = true;
    this.#ended = true;
    this.#clearDeadline();
    const listener = this.#onCancel;
    this.#onCancel = undefined;
    listener?.(reason);
  }

  #clearDeadline(): void {
    if (this.#deadlineTimer !== undefined) clearTimeout(this.#deadlineTimer);
    this.#deadlineTimer = undefined;
  }

  #data(chunk: Buffer): void {
    if (this.#ended) return;
    let messages: FramedMessage[];
    try {
      messages = this.#reader!.push(chunk);
    } catch (err) {
      if (!(err instanceof MessageTooLarge)) throw err;
      this.fail(GrpcStatus.RESOURCE_EXHAUSTED, err.message);
      return;
    }
    for (const message of messages) {
      if (this.#inbox === undefined && !message.compressed) this.#onMessage!(message.bytes);
      else this.#queue(() => this.#inflate(message));
    }
  }

  #halfClosed(): void {
    if (this.#ended) return;
    if (this.#reader!.partial) {
      this.fail(GrpcStatus.INTERNAL, "The request ended in the middle of a message");
      return;
    }
    if (this.#inbox === undefined) this.#onHalfClose!();
    else this.#queue(async () => this.#onHalfClose!());
  }

  /** Keeps messages in order behind a compressed one being inflated. */
  #queue(step: () => Promise<void>): void {
    const previous = this.#inbox ?? Promise.resolve();
    this.#inbox = previous.then(() => (this.#ended ? undefined : step()));
  }

  async #inflate(message: FramedMessage): Promise<void> {
    let bytes: Buffer;
    try {
      bytes = message.compressed ? await decompress(message.bytes, this.#encoding, this.#maxMessageBytes) : message.bytes;
    } catch (err) {
      this.fail(err instanceof DecompressError ? err.code : GrpcStatus.INTERNAL, err instanceof DecompressError ? err.message : "Failed to decompress message");
      return;
    }
    if (!this.#ended) this.#onMessage!(bytes);
  }
}
