// What the entity layer knows of a cluster: which shard an entity is in, whether this node
// serves that shard now, and where to send a call it does not serve. A single node (the
// embedded store) has no placement: everything runs here. The cluster (host/cluster/)
// implements it; entities and ingress never see leases, epochs or peers.
import type { CallContext } from "./call-context.js";
import type { CallMetadata } from "../abi/abi-codec.js";
import type { StreamHandle, StreamSink } from "./replicated-stream.js";

export interface RemoteRoute {
  readonly nodeId: string;
  /** host:port of the owner's gRPC port. */
  readonly address: string;
  /** host:port of the owner's peer link, when it has one: unary calls go there (one TCP round trip, not an HTTP/2 one). */
  readonly peerAddress?: string;
}

/** Metadata of a node-to-node call: who forwarded it (it is never forwarded again) and how many effects deep it is. */
export const FORWARDED_HEADER = "x-keystate-forwarded";
export const HOPS_HEADER = "x-keystate-hops";
/** A client's (or a stored side effect's) idempotency key: the call is answered once. */
export const IDEMPOTENCY_KEY_HEADER = "idempotency-key";
/** Node to node only: the call's metadata for the handler (JSON [[key, value], ...]); ignored from clients. */
export const CALL_METADATA_HEADER = "x-keystate-call-metadata";
/** Trailer of a NOT_OWNER answer: nothing ran here; the sender re-reads the owner and retries once. */
export const MOVED_HEADER = "x-keystate-moved";

/** Run it here. */
export const LOCAL = "local" as const;

export interface ForwardOptions {
  readonly context?: CallContext;
  /** Forwards and side effects deep, carried to the owner. */
  readonly hops: number;
  readonly idempotencyKey?: string;
  /** A subscription's CloudEvents attributes, for the handler at the owner. */
  readonly metadata?: CallMetadata;
}

export interface Placement {
  shardOf(storagePersistenceId: string, key: string): number;
  /** True when commands for `shard` run on this node now (the fast path; no waiting). */
  serves(shard: number): boolean;
  /** The shards this node serves now (whose stored side effects it delivers). */
  servedShards(): number[];
  /**
   * Where `shard` is served: here, or a peer. Waits (bounded by the call's deadline and the
   * lease time) while the shard is handed off or its owner died; rejects with NOT_OWNER
   * (UNAVAILABLE, retryable) when no owner appears.
   */
  route(shard: number, context: CallContext | undefined): Promise<typeof LOCAL | RemoteRoute>;
  /** What `route` answers when it would not wait (here, or a known live owner); undefined when it would. */
  routeNow(shard: number): typeof LOCAL | RemoteRoute | undefined;
  /** A local command met a fenced or unowned write: this node no longer owns the shard. */
  lost(shard: number): void;
  /** A forward met "moved" or an unreachable peer: re-read the shard's owner (and suspect the peer). */
  stale(shard: number, route: RemoteRoute, unreachable: boolean): Promise<void>;
  /** The NOT_OWNER error a forwarded call gets here, naming the owner this node knows. */
  moved(shard: number): Error;
  forwardUnary(route: RemoteRoute, path: string, payload: Uint8Array, options: ForwardOptions): Promise<Uint8Array>;
  /** Relays a server stream from the owner; `onMoved` instead of a failure when the owner refused it before it opened. */
  forwardStream(route: RemoteRoute, path: string, payload: Uint8Array, sink: StreamSink, options: ForwardOptions, onMoved: (err: Error) => void): StreamHandle;
  /** For the errors a forwarder may retry once elsewhere (nothing ran there): which kind; otherwise undefined. */
  redirectKind(err: unknown): "moved" | "unreachable" | undefined;
}
