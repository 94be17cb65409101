// Handlers for streaming methods. Server streaming goes to the Router (replicated entities
// serve it); client and bidirectional streaming are served by no entity kind and answer
// UNIMPLEMENTED.
import { requestIdFrom } from "../entities/call-context.js";
import type { Router } from "../entities/router.js";
import type { StreamSink } from "../entities/replicated-stream.js";
import type { ServiceRuntime } from "../entities/service-runtime.js";
import { toStatus } from "../errors.js";
import { log } from "../log.js";
import type { Metrics } from "../metrics.js";
import type { MethodModel } from "../runtime/service-model.js";
import { clusterCallOptions, withMovedTrailer } from "./cluster-metadata.js";
import type { MethodHandler } from "../grpc-http2/server.js";
import type { ServerCall } from "../grpc-http2/server-call.js";
import { GrpcStatus } from "../grpc-http2/status.js";
import { REQUEST_ID_HEADER } from "./grpc-unary.js";

/** The handler for a streaming `method`. */
export function streamingHandler(router: Router, metrics: Metrics, service: ServiceRuntime, method: MethodModel): MethodHandler {
  if (method.clientStreaming) {
    const details = `${service.name}/${method.name} is client-streaming; no entity kind serves client streams`;
    return {
      requestStream: true,
      handle: (call) => {
        metrics.startCall(service.name, method.name, "grpc")(GrpcStatus.UNIMPLEMENTED);
        call.fail(GrpcStatus.UNIMPLEMENTED, details);
      },
    };
  }
  return { requestStream: false, kind: "server streaming", handle: (call, request) => serverStream(router, metrics, service, method, call, request) };
}

function serverStream(router: Router, metrics: Metrics, service: ServiceRuntime, method: MethodModel, call: ServerCall, request: Buffer): void {
  const finish = metrics.startCall(service.name, method.name, "grpc");
  // The client's request id (else a fresh one), in the stream's headers or its error status, and in the log.
  const requestId = requestIdFrom(call.metadata.get(REQUEST_ID_HEADER)[0]);
  const withRequestId = { [REQUEST_ID_HEADER]: requestId };
  let done = false;
  const settle = (code: GrpcStatus): boolean => {
    if (done) return false;
    done = true;
    finish(code);
    return true;
  };
  const sink: StreamSink = {
    opened: () => {
      if (!done) call.sendMetadata(withRequestId);
    },
    send: (message) => {
      if (!done) call.write(message);
    },
    end: () => {
      if (settle(GrpcStatus.OK)) call.end();
    },
    fail: (err) => {
      const status = toStatus(err);
      if (status.code === GrpcStatus.INTERNAL && !(err instanceof Error && err.name === "KeystateError")) {
        log().error({ requestId, service: service.name, method: method.name, err }, "unexpected error in a stream");
      }
      if (settle(status.code)) call.fail(status.code, status.details, withMovedTrailer(err, withRequestId));
    },
  };
  let handle;
  try {
    const context = { requestId, deadline: call.deadline };
    handle = router.openStream(service.name, method.name, request, sink, { context, ...clusterCallOptions(call.metadata) });
  } catch (err) {
    sink.fail(err);
    return;
  }
  // A client cancel, a passed deadline or a dropped connection (counted as what it was).
  call.onCancel((reason) => {
    if (settle(reason === "deadline" ? GrpcStatus.DEADLINE_EXCEEDED : GrpcStatus.CANCELLED)) handle.cancel();
  });
}
