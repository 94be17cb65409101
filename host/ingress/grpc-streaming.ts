// gRPC handlers for streaming methods. grpc-js calls a handler with a signature that
// depends on the method's shape, so a streaming method must never get the unary
// handler (it has no callback: the node crashed with "callback is not a function").
// Server streaming goes to the Router (replicated entities serve it); client and
// bidirectional streaming are served by no entity kind and answer UNIMPLEMENTED.
import * as grpc from "@grpc/grpc-js";
import { requestIdFrom } from "../entities/call-context.js";
import type { Router } from "../entities/router.js";
import type { StreamSink } from "../entities/replicated-stream.js";
import type { ServiceRuntime } from "../entities/service-runtime.js";
import { toStatus } from "../errors.js";
import { log } from "../log.js";
import type { Metrics } from "../metrics.js";
import type { MethodModel } from "../runtime/service-model.js";
import { clusterCallOptions, movedTrailer } from "./cluster-metadata.js";
import { REQUEST_ID_HEADER } from "./grpc-unary.js";

type AnyStreamCall = grpc.ServerWritableStream<Buffer, Buffer> | grpc.ServerDuplexStream<Buffer, Buffer> | grpc.ServerReadableStream<Buffer, Buffer>;

/** The grpc-js handler for a streaming `method`. */
export function streamingHandler(router: Router, metrics: Metrics, service: ServiceRuntime, method: MethodModel): grpc.UntypedHandleCall {
  if (method.clientStreaming) {
    const refusal = { code: grpc.status.UNIMPLEMENTED, details: `${service.name}/${method.name} is client-streaming; no entity kind serves client streams` };
    if (method.serverStreaming) return (call: grpc.ServerDuplexStream<Buffer, Buffer>) => refuse(call, metrics, service, method, refusal);
    return (call: grpc.ServerReadableStream<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>) => {
      metrics.startCall(service.name, method.name, "grpc")(refusal.code);
      // Stop reading what the client keeps sending; the status ends the call.
      call.on("data", () => {});
      callback(refusal);
    };
  }
  return (call: grpc.ServerWritableStream<Buffer, Buffer>) => serverStream(router, metrics, service, method, call);
}

function refuse(call: AnyStreamCall, metrics: Metrics, service: ServiceRuntime, method: MethodModel, status: { code: grpc.status; details: string }): void {
  metrics.startCall(service.name, method.name, "grpc")(status.code);
  call.on("data", () => {});
  call.emit("error", status);
}

function serverStream(router: Router, metrics: Metrics, service: ServiceRuntime, method: MethodModel, call: grpc.ServerWritableStream<Buffer, Buffer>): void {
  const finish = metrics.startCall(service.name, method.name, "grpc");
  // The client's request id (else a fresh one), in the stream's headers or its error status, and in the log.
  const requestId = requestIdFrom(call.metadata.get(REQUEST_ID_HEADER)[0]);
  const withRequestId = () => {
    const metadata = new grpc.Metadata();
    metadata.set(REQUEST_ID_HEADER, requestId);
    return metadata;
  };
  let done = false;
  const settle = (code: grpc.status): boolean => {
    if (done) return false;
    done = true;
    finish(code);
    return true;
  };
  const sink: StreamSink = {
    opened: () => {
      if (!done) call.sendMetadata(withRequestId());
    },
    send: (message) => {
      if (!done) call.write(Buffer.from(message.buffer, message.byteOffset, message.byteLength));
    },
    end: () => {
      if (settle(grpc.status.OK)) call.end();
    },
    fail: (err) => {
      const status = toStatus(err);
      if (status.code === grpc.status.INTERNAL && !(err instanceof Error && err.name === "KeystateError")) {
        log().error({ requestId, service: service.name, method: method.name, err }, "unexpected error in a stream");
      }
      const metadata = withRequestId();
      movedTrailer(err, metadata);
      if (settle(status.code)) call.emit("error", { code: status.code, details: status.details, metadata });
    },
  };
  let handle;
  try {
    const deadline = call.getDeadline();
    const context = { requestId, deadline: deadline instanceof Date ? deadline.getTime() : Number.isFinite(deadline) ? deadline : undefined };
    handle = router.openStream(service.name, method.name, call.request, sink, { context, ...clusterCallOptions(call.metadata) });
  } catch (err) {
    sink.fail(err);
    return;
  }
  // grpc-js emits "cancelled" for a client cancel, a passed deadline and a dropped connection.
  call.on("cancelled", () => {
    if (settle(grpc.status.CANCELLED)) handle.cancel();
  });
}
