// The grpc-js handler of one unary method: times the call, gives it a request id (the
// client's `x-request-id` metadata, else a fresh one, echoed in the trailers), turns the
// gRPC deadline and a client cancel into the call's CallContext, routes it, and logs a
// failure once.
import * as grpc from "@grpc/grpc-js";
import { requestIdFrom, startCallContext } from "../entities/call-context.js";
import { clusterCallOptions, movedTrailer } from "./cluster-metadata.js";
import type { Router } from "../entities/router.js";
import { toStatus } from "../errors.js";
import type { Metrics } from "../metrics.js";
import type { ModuleRegistry } from "../runtime/module-registry.js";
import { logCallFailure } from "./call-log.js";

export const REQUEST_ID_HEADER = "x-request-id";

export function unaryHandler(
  deps: { readonly router: Router; readonly metrics: Metrics; readonly registry: ModuleRegistry },
  service: string,
  method: string,
): grpc.handleUnaryCall<Buffer, Buffer> {
  return (call, callback) => {
    const finish = deps.metrics.startCall(service, method, "grpc");
    const requestId = requestIdFrom(call.metadata.get(REQUEST_ID_HEADER)[0]);
    const deadline = call.getDeadline();
    const scope = startCallContext(requestId, deadline instanceof Date ? deadline.getTime() : deadline);
    // grpc-js emits "cancelled" when the client cancels, or the deadline it enforces itself passes.
    // It also emits it when the stream closes after a reply was sent, so the listener goes
    // when the call settles: a finished call must not build a cancellation error and abort.
    call.once("cancelled", scope.cancel);
    const settle = () => {
      call.off("cancelled", scope.cancel);
      scope.dispose();
    };
    const trailer = new grpc.Metadata();
    trailer.set(REQUEST_ID_HEADER, requestId);
    let routed: Promise<Uint8Array>;
    try {
      routed = deps.router.call(service, method, call.request, { context: scope.context, ...clusterCallOptions(call.metadata) });
    } catch (err) {
      routed = Promise.reject(err); // a malformed idempotency-key: INVALID_ARGUMENT, nothing ran
    }
    routed.then(
      (reply) => {
        settle();
        finish(grpc.status.OK);
        callback(null, Buffer.from(reply.buffer, reply.byteOffset, reply.byteLength), trailer);
      },
      (err: unknown) => {
        settle();
        const status = toStatus(err);
        movedTrailer(err, trailer);
        finish(status.code);
        logCallFailure(deps.registry, { ingress: "grpc", requestId, service, method, payload: call.request }, err, status.code);
        callback({ code: status.code, details: status.details, metadata: trailer });
      },
    );
  };
}
