// Node-to-node calls: a call for a shard another node owns goes to that node, on the same
// method path, with the request bytes as received (no re-encoding), the caller's deadline,
// request id and hop count, and a header that marks it forwarded (a forwarded call is never
// forwarded again). A unary call goes over the owner's peer link when it advertises one
// (peer-channel.ts: one TCP round trip), else to its public gRPC port; a server stream
// always goes to the gRPC port. One long-lived connection of each kind per peer.
import type { CallMetadata } from "../abi/abi-codec.js";
import { performance } from "node:perf_hooks";
import { callerGone, type CallContext } from "../entities/call-context.js";
import { FORWARDED_HEADER, HOPS_HEADER, CALL_METADATA_HEADER, IDEMPOTENCY_KEY_HEADER, MOVED_HEADER } from "../entities/placement.js";
import type { StreamHandle, StreamSink } from "../entities/replicated-stream.js";
import { KeystateError } from "../errors.js";
import { GrpcCallError, GrpcChannel } from "../grpc-http2/channel.js";
import { GrpcStatus, isGrpcStatus } from "../grpc-http2/status.js";
import { PeerChannel } from "./peer-channel.js";

const REQUEST_ID_HEADER = "x-request-id";

// Notice a dead peer's connection without waiting for the OS.
const KEEPALIVE = { keepaliveMs: 10_000, keepaliveTimeoutMs: 5_000 } as const;

/** The receiver did not own the shard and ran nothing: refresh the routes and retry once. */
export class MovedError extends Error {
  constructor(readonly owner: string) {
    super(`the entity's shard moved${owner ? ` to ${owner}` : ""}`);
  }
}

/** The peer could not be reached at all: the call never left this node, so retrying is safe. */
export class PeerUnreachableError extends Error {}

export interface ForwardObserver {
  forwarded(result: "ok" | "moved" | "unreachable" | "error", seconds: number, transport: "peer" | "grpc"): void;
}

export interface ForwardContext {
  readonly context?: CallContext;
  readonly hops: number;
  readonly idempotencyKey?: string;
  readonly metadata?: CallMetadata;
}

export class Forwarder {
  readonly #channels = new Map<string, GrpcChannel>();
  readonly #peers = new Map<string, PeerChannel>();

  constructor(
    private readonly selfId: string,
    private readonly observer?: ForwardObserver,
  ) {}

  #channel(address: string): GrpcChannel {
    let channel = this.#channels.get(address);
    if (!channel) {
      channel = new GrpcChannel(address, KEEPALIVE);
      this.#channels.set(address, channel);
    }
    return channel;
  }

  #peer(address: string): PeerChannel {
    let channel = this.#peers.get(address);
    if (!channel) {
      channel = new PeerChannel(address, KEEPALIVE);
      this.#peers.set(address, channel);
    }
    return channel;
  }

  #callOptions(forward: ForwardContext): { metadata: Record<string, string>; deadline?: number } {
    const metadata: Record<string, string> = { [FORWARDED_HEADER]: this.selfId, [HOPS_HEADER]: String(forward.hops) };
    if (forward.context) metadata[REQUEST_ID_HEADER] = forward.context.requestId;
    if (forward.idempotencyKey !== undefined) metadata[IDEMPOTENCY_KEY_HEADER] = forward.idempotencyKey;
    if (forward.metadata !== undefined && forward.metadata.length > 0) metadata[CALL_METADATA_HEADER] = JSON.stringify(forward.metadata);
    const deadline = forward.context?.deadline;
    return deadline === undefined ? { metadata } : { metadata, deadline };
  }

  /** One unary call to the owner at `route`; rejects with MovedError, PeerUnreachableError or the peer's status. */
  unary(route: { readonly address: string; readonly peerAddress?: string }, path: string, payload: Uint8Array, forward: ForwardContext): Promise<Uint8Array> {
    const started = performance.now();
    const gone = callerGone(forward.context);
    if (gone) return Promise.reject(gone);
    const transport = route.peerAddress === undefined ? "grpc" : "peer";
    const channel = route.peerAddress === undefined ? this.#channel(route.address) : this.#peer(route.peerAddress);
    return channel
      .unary(path, payload, this.#callOptions(forward), forward.context?.signal)
      .then(
        (reply) => {
          this.observer?.forwarded("ok", (performance.now() - started) / 1000, transport);
          return reply;
        },
        (err: unknown) => {
          const translated = translate(err);
          this.observer?.forwarded(resultOf(translated), (performance.now() - started) / 1000, transport);
          throw translated;
        },
      );
  }

  /**
   * A server stream at `address`, relayed into `sink`. `onMoved` runs instead of failing the
   * sink when the peer answered "moved" (or was unreachable) before sending anything.
   */
  stream(address: string, path: string, payload: Uint8Array, sink: StreamSink, forward: ForwardContext, onMoved: (err: Error) => void): StreamHandle {
    let opened = false;
    const open = () => {
      if (!opened) sink.opened?.();
      opened = true;
    };
    return this.#channel(address).serverStream(path, payload, this.#callOptions(forward), {
      opened: open,
      message: (message) => {
        open();
        sink.send(message);
      },
      ended: (err) => {
        if (err === undefined) return sink.end();
        const translated = translate(err);
        if (!opened && (translated instanceof MovedError || translated instanceof PeerUnreachableError)) onMoved(translated);
        else sink.fail(translated);
      },
    });
  }

  /** Closes channels to peers that are no longer members (`addresses`: their gRPC and peer link addresses). */
  retain(addresses: ReadonlySet<string>): void {
    for (const channels of [this.#channels, this.#peers]) {
      for (const [address, channel] of channels) {
        if (addresses.has(address)) continue;
        channel.close();
        channels.delete(address);
      }
    }
  }

  close(): void {
    for (const channel of this.#channels.values()) channel.close();
    for (const channel of this.#peers.values()) channel.close();
    this.#channels.clear();
    this.#peers.clear();
  }
}

function resultOf(err: Error): "moved" | "unreachable" | "error" {
  return err instanceof MovedError ? "moved" : err instanceof PeerUnreachableError ? "unreachable" : "error";
}

function translate(err: unknown): Error {
  if (!(err instanceof GrpcCallError)) return err instanceof Error ? err : new Error(String(err));
  const moved = err.trailers.get(MOVED_HEADER);
  if (moved.length > 0) return new MovedError(String(moved[0]));
  if (err.neverSent) return new PeerUnreachableError(err.details);
  // The owner's answer passes through as it is: its code and its message.
  return new KeystateError("PEER_STATUS", err.details || "the owner node failed the call", { status: isGrpcStatus(err.code) ? err.code : GrpcStatus.UNKNOWN });
}
