// Node-to-node calls: a call for a shard another node owns goes to that node's public gRPC
// port, on the same method path, with the request bytes as received (no re-encoding), the
// caller's deadline, request id and hop count, and a header that marks it forwarded (a
// forwarded call is never forwarded again). One long-lived HTTP/2 channel per peer.
import * as grpc from "@grpc/grpc-js";
import type { CallMetadata } from "../abi/abi-codec.js";
import { performance } from "node:perf_hooks";
import { callerGone, type CallContext } from "../entities/call-context.js";
import { FORWARDED_HEADER, HOPS_HEADER, CALL_METADATA_HEADER, IDEMPOTENCY_KEY_HEADER, MOVED_HEADER } from "../entities/placement.js";
import type { StreamHandle, StreamSink } from "../entities/replicated-stream.js";
import { KeystateError } from "../errors.js";

const REQUEST_ID_HEADER = "x-request-id";

const passthrough = (value: Buffer): Buffer => value;

/** The receiver did not own the shard and ran nothing: refresh the routes and retry once. */
export class MovedError extends Error {
  constructor(readonly owner: string) {
    super(`the entity's shard moved${owner ? ` to ${owner}` : ""}`);
  }
}

/** The peer could not be reached at all: the call never left this node, so retrying is safe. */
export class PeerUnreachableError extends Error {}

export interface ForwardObserver {
  forwarded(result: "ok" | "moved" | "unreachable" | "error", seconds: number): void;
}

export interface ForwardContext {
  readonly context?: CallContext;
  readonly hops: number;
  readonly idempotencyKey?: string;
  readonly metadata?: CallMetadata;
}

export class Forwarder {
  readonly #clients = new Map<string, grpc.Client>();

  constructor(
    private readonly selfId: string,
    private readonly observer?: ForwardObserver,
  ) {}

  #client(address: string): grpc.Client {
    let client = this.#clients.get(address);
    if (!client) {
      client = new grpc.Client(address, grpc.credentials.createInsecure(), {
        "grpc.max_receive_message_length": -1,
        "grpc.max_send_message_length": -1,
        "grpc.enable_channelz": 0,
        // Notice a dead peer's connection without waiting for the OS.
        "grpc.keepalive_time_ms": 10_000,
        "grpc.keepalive_timeout_ms": 5_000,
      });
      this.#clients.set(address, client);
    }
    return client;
  }

  #metadata(forward: ForwardContext): grpc.Metadata {
    const metadata = new grpc.Metadata();
    metadata.set(FORWARDED_HEADER, this.selfId);
    metadata.set(HOPS_HEADER, String(forward.hops));
    if (forward.context) metadata.set(REQUEST_ID_HEADER, forward.context.requestId);
    if (forward.idempotencyKey !== undefined) metadata.set(IDEMPOTENCY_KEY_HEADER, forward.idempotencyKey);
    if (forward.metadata !== undefined && forward.metadata.length > 0) metadata.set(CALL_METADATA_HEADER, JSON.stringify(forward.metadata));
    return metadata;
  }

  #options(forward: ForwardContext): grpc.CallOptions {
    const deadline = forward.context?.deadline;
    return deadline === undefined ? {} : { deadline: new Date(deadline) };
  }

  /** One unary call at `address`; rejects with MovedError, PeerUnreachableError or the peer's status. */
  unary(address: string, path: string, payload: Uint8Array, forward: ForwardContext): Promise<Uint8Array> {
    const started = performance.now();
    return new Promise<Uint8Array>((resolve, reject) => {
      const gone = callerGone(forward.context);
      if (gone) return reject(gone);
      const request = Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength);
      const call = this.#client(address).makeUnaryRequest(path, passthrough, passthrough, request, this.#metadata(forward), this.#options(forward), (err, reply) => {
        signal?.removeEventListener("abort", cancel);
        if (err) {
          const translated = translate(err);
          this.observer?.forwarded(resultOf(translated), (performance.now() - started) / 1000);
          reject(translated);
        } else {
          this.observer?.forwarded("ok", (performance.now() - started) / 1000);
          resolve(reply ?? new Uint8Array(0));
        }
      });
      const signal = forward.context?.signal;
      const cancel = () => call.cancel();
      signal?.addEventListener("abort", cancel, { once: true });
    });
  }

  /**
   * A server stream at `address`, relayed into `sink`. `onMoved` runs instead of failing the
   * sink when the peer answered "moved" (or was unreachable) before sending anything.
   */
  stream(address: string, path: string, payload: Uint8Array, sink: StreamSink, forward: ForwardContext, onMoved: (err: Error) => void): StreamHandle {
    const request = Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength);
    const call = this.#client(address).makeServerStreamRequest(path, passthrough, passthrough, request, this.#metadata(forward), this.#options(forward));
    let opened = false;
    let done = false;
    const open = () => {
      if (!opened) sink.opened?.();
      opened = true;
    };
    call.on("metadata", open);
    call.on("data", (message: Buffer) => {
      open();
      if (!done) sink.send(message);
    });
    call.on("error", (err: grpc.ServiceError) => {
      if (done) return;
      done = true;
      const translated = translate(err);
      if (!opened && (translated instanceof MovedError || translated instanceof PeerUnreachableError)) onMoved(translated);
      else sink.fail(translated);
    });
    call.on("end", () => {
      if (done) return;
      done = true;
      sink.end();
    });
    return {
      cancel: () => {
        done = true;
        call.cancel();
      },
    };
  }

  /** Closes channels to peers that are no longer members. */
  retain(addresses: ReadonlySet<string>): void {
    for (const [address, client] of this.#clients) {
      if (addresses.has(address)) continue;
      client.close();
      this.#clients.delete(address);
    }
  }

  close(): void {
    for (const client of this.#clients.values()) client.close();
    this.#clients.clear();
  }
}

function resultOf(err: Error): "moved" | "unreachable" | "error" {
  return err instanceof MovedError ? "moved" : err instanceof PeerUnreachableError ? "unreachable" : "error";
}

/** A failed connect, before any byte of the call was sent (safe to send elsewhere). */
const NEVER_SENT = /No connection established|ECONNREFUSED|EHOSTUNREACH|ENOTFOUND|Failed to connect/i;

function translate(err: grpc.ServiceError): Error {
  const moved = err.metadata?.get(MOVED_HEADER);
  if (moved && moved.length > 0) return new MovedError(String(moved[0]));
  if (err.code === grpc.status.UNAVAILABLE && NEVER_SENT.test(err.details ?? "")) return new PeerUnreachableError(err.details);
  // The owner's answer passes through as it is: its code and its message.
  return new KeystateError("PEER_STATUS", err.details || "the owner node failed the call", { status: err.code });
}
