// Server-streaming methods over HTTP/JSON answer as newline-delimited JSON
// (content-type application/x-ndjson): headers once the entity accepted the stream, then
// one JSON object per message, each on its own line. A refusal before the stream opened
// is an ordinary JSON error with its HTTP status; a failure after it is a last line
// {"error": {...}} and the end of the response. A client that disconnects cancels the
// stream, which runs the entity's cancellation callback.
import { GrpcStatus } from "../grpc-http2/status.js";
import type http from "node:http";
import type { StreamSink } from "../entities/replicated-stream.js";
import type { Router } from "../entities/router.js";
import { KeystateError, toStatus } from "../errors.js";
import { log } from "../log.js";
import { sendJson } from "./http-body.js";
import { grpcStatusName } from "../grpc-http2/status.js";
import { httpStatusFor } from "./http-status.js";

export interface NdjsonStream {
  readonly service: string;
  readonly method: string;
  readonly payload: Uint8Array;
  /** Turns one reply message into its JSON form (the binding's response_body applies). */
  readonly toJson: (message: Uint8Array) => unknown;
  readonly finish: (code: GrpcStatus) => void;
}

/** Serves one server-streaming call on `res`; resolves when the stream ended, failed or was cancelled. */
export function streamNdjson(router: Router, res: http.ServerResponse, call: NdjsonStream): Promise<void> {
  return new Promise((resolve) => {
    let done = false;
    const close = (code: GrpcStatus): boolean => {
      if (done) return false;
      done = true;
      call.finish(code);
      resolve();
      return true;
    };
    const open = () => {
      if (res.headersSent) return;
      res.writeHead(200, { "content-type": "application/x-ndjson; charset=utf-8", "cache-control": "no-cache" });
      res.flushHeaders();
    };
    const sink: StreamSink = {
      opened: () => {
        if (!done) open();
      },
      send: (message) => {
        if (done) return;
        let line: string;
        try {
          line = JSON.stringify(call.toJson(message)) + "\n";
        } catch (err) {
          sink.fail(err);
          return;
        }
        open();
        res.write(line);
      },
      end: () => {
        if (!close(GrpcStatus.OK)) return;
        open();
        res.end();
      },
      fail: (err) => {
        const status = toStatus(err);
        if (!(err instanceof KeystateError)) log().error({ service: call.service, method: call.method, err }, "unexpected error in an HTTP/JSON stream");
        if (!close(status.code)) return;
        const body = { error: { status: grpcStatusName(status.code), code: status.code, message: status.details } };
        if (res.headersSent) res.end(JSON.stringify(body) + "\n");
        else sendJson(res, httpStatusFor(status.code), body);
      },
    };
    let handle;
    try {
      handle = router.openStream(call.service, call.method, call.payload, sink);
    } catch (err) {
      sink.fail(err);
      return;
    }
    // "close" also follows a normal end; `close()` is then a no-op, so only a hang-up cancels.
    res.on("close", () => {
      if (close(GrpcStatus.CANCELLED)) handle.cancel();
    });
  });
}
