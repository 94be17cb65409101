// Runs a keyed call where its entity lives: here when this node serves the entity's shard,
// otherwise at the shard's owner through the placement. A call that meets a stale route
// (the owner answered "moved", could not be reached before anything was sent, or this
// node's own write was fenced) re-reads the owner and tries once more. A call that was
// already forwarded to this node is never forwarded again: it runs here or answers "moved".
import { isKeystateError } from "../errors.js";
import type { CallContext } from "./call-context.js";
import { LOCAL, type Placement, type RemoteRoute } from "./placement.js";
import type { StreamHandle, StreamSink } from "./replicated-stream.js";
import type { ServiceRuntime } from "./service-runtime.js";
import type { CallMetadata } from "../abi/abi-codec.js";

export interface RoutedCall {
  readonly context?: CallContext;
  readonly hops: number;
  /** Arrived from another node: run here or answer "moved". */
  readonly forwarded: boolean;
  /** Carried to the owner with the call. */
  readonly idempotencyKey?: string;
  readonly metadata?: CallMetadata;
}

/** The shard of `key` of `service` (an event-sourced or value entity: replicated ones live on every node). */
export function shardOfEntity(placement: Placement, service: ServiceRuntime, key: string): number {
  return placement.shardOf(service.persistenceId, key);
}

/** Ownership lost under a local command: nothing it did was written, so it may run at the new owner. */
function ownershipLost(err: unknown): boolean {
  return isKeystateError(err, "FENCED") || isKeystateError(err, "NOT_OWNER");
}

export async function runAtOwner(
  placement: Placement,
  shard: number,
  path: string,
  payload: Uint8Array,
  call: RoutedCall,
  runHere: () => Promise<Uint8Array>,
): Promise<Uint8Array> {
  for (let attempt = 0; ; attempt++) {
    const last = attempt > 0;
    // Nearly always known at once: no promise unless the owner is being waited for.
    const route = placement.routeNow(shard) ?? (await placement.route(shard, call.context));
    if (route === LOCAL) {
      try {
        return await runHere();
      } catch (err) {
        if (!ownershipLost(err)) throw err;
        placement.lost(shard);
        if (last || call.forwarded) throw placement.moved(shard);
        continue;
      }
    }
    if (call.forwarded) throw placement.moved(shard);
    try {
      // The call is its own ForwardOptions (context, hops, idempotency key, metadata).
      return await placement.forwardUnary(route, path, payload, call);
    } catch (err) {
      const redirect = placement.redirectKind(err);
      if (redirect === undefined) throw err;
      // A second redirect reaches the caller as NOT_OWNER (UNAVAILABLE, retryable).
      if (last) throw placement.moved(shard);
      await placement.stale(shard, route, redirect === "unreachable");
    }
  }
}

/** The streaming form: opens the stream here, or relays it from the owner (one retry on "moved"). */
export function streamAtOwner(
  placement: Placement,
  shard: number,
  path: string,
  payload: Uint8Array,
  sink: StreamSink,
  call: RoutedCall,
  openHere: () => StreamHandle,
): StreamHandle {
  if (placement.serves(shard)) return openHere();
  let current: StreamHandle | undefined;
  let cancelled = false;
  const attempt = (tries: number): void => {
    placement.route(shard, call.context).then(
      (route) => {
        if (cancelled) return;
        if (route === LOCAL) {
          current = openHere();
          return;
        }
        if (call.forwarded) return sink.fail(placement.moved(shard));
        current = placement.forwardStream(route, path, payload, sink, { context: call.context, hops: call.hops }, (err) => {
          if (cancelled) return;
          if (tries > 0) return sink.fail(placement.moved(shard));
          void placement.stale(shard, route, placement.redirectKind(err) === "unreachable").then(() => attempt(tries + 1));
        });
      },
      (err: unknown) => sink.fail(err),
    );
  };
  attempt(0);
  return {
    cancel: () => {
      cancelled = true;
      current?.cancel();
    },
  };
}
