// The handler of one unary method: times the call, gives it a request id (the client's
// `x-request-id` metadata, else a fresh one, echoed in the trailers), turns the gRPC
// deadline and a client cancel into the call's CallContext, routes it, and logs a failure once.
import { requestIdFrom, startCallContext } from "../entities/call-context.js";
import type { Router } from "../entities/router.js";
import { toStatus } from "../errors.js";
import type { Metrics } from "../metrics.js";
import type { ModuleRegistry } from "../runtime/module-registry.js";
import { logCallFailure } from "./call-log.js";
import { NOT_FROM_CLUSTER, clusterCallOptions, withMovedTrailer } from "./cluster-metadata.js";
import type { UnaryCall, UnaryMethod } from "../grpc-http2/server.js";
import { GrpcStatus } from "../grpc-http2/status.js";

export const REQUEST_ID_HEADER = "x-request-id";

export function unaryHandler(
  deps: { readonly router: Router; readonly metrics: Metrics; readonly registry: ModuleRegistry },
  service: string,
  method: string,
): UnaryMethod {
  // The method's metric series, looked up once rather than per call.
  const meter = deps.metrics.callMeter(service, method, "grpc");
  const handle = (call: UnaryCall, request: Buffer): void => {
    const started = meter.start();
    const requestId = requestIdFrom(call.metadata.get(REQUEST_ID_HEADER)[0]);
    // The call (a ServerCall, or a peer link's call) keeps the deadline's timer; a cancel (client reset, dropped connection)
    // or the passed deadline aborts the work with its own reason. A call that settled first
    // has no listener left to run.
    const scope = startCallContext(requestId, call.deadline, true);
    call.onCancel((reason) => (reason === "deadline" ? scope.expire() : scope.cancel()));
    const trailer = { [REQUEST_ID_HEADER]: requestId };
    let routed: Promise<Uint8Array>;
    try {
      const options = clusterCallOptions(call.metadata);
      // Most calls carry no cluster metadata: one options object, not a spread of an empty one.
      routed = deps.router.call(service, method, request, options === NOT_FROM_CLUSTER ? { context: scope.context } : { context: scope.context, ...options });
    } catch (err) {
      routed = Promise.reject(err); // a malformed idempotency-key: INVALID_ARGUMENT, nothing ran
    }
    routed.then(
      (reply) => {
        scope.dispose();
        meter.finish(started, GrpcStatus.OK);
        call.reply(reply, trailer);
      },
      (err: unknown) => {
        scope.dispose();
        const status = toStatus(err);
        meter.finish(started, status.code);
        logCallFailure(deps.registry, { ingress: "grpc", requestId, service, method, payload: request }, err, status.code);
        call.fail(status.code, status.details, withMovedTrailer(err, trailer));
      },
    );
  };
  return { requestStream: false, kind: "unary", handle };
}
