// Server-streaming calls from a plain @grpc/grpc-js client built from a contract .proto
// (as an outside client builds it): messages are collected as they arrive, the final
// status is kept, and a test can wait for "the n-th message" with a time limit.
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { join } from "node:path";
import { REPO_ROOT } from "./node-process.js";

export interface OpenStream<T> {
  readonly messages: T[];
  /** The response headers the server sent (resolves when they arrive). */
  readonly headers: Promise<grpc.Metadata>;
  /** The call's final status once it ended (OK, CANCELLED, or an error). */
  readonly ended: Promise<{ code: number; details: string }>;
  /** Resolves with messages[index] once it has arrived; rejects after `ms`, or if the stream ends first. */
  nth(index: number, ms?: number): Promise<T>;
  cancel(): void;
}

export interface StreamClient {
  /** `deadlineMs`: a gRPC deadline for the whole stream; `requestId`: sent as x-request-id. */
  open<T = any>(method: string, request: object, options?: { deadlineMs?: number; requestId?: string }): OpenStream<T>;
  close(): void;
}

export function streamClient(protoDir: string, protoFile: string, service: string, port: number): StreamClient {
  const definition = protoLoader.loadSync(protoFile, { includeDirs: [protoDir, join(REPO_ROOT, "proto")], longs: String, defaults: true });
  const Client = service.split(".").reduce((at: any, part) => at[part], grpc.loadPackageDefinition(definition)) as grpc.ServiceClientConstructor;
  const client = new Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  return {
    open<T>(method: string, request: object, options: { deadlineMs?: number; requestId?: string } = {}): OpenStream<T> {
      const callOptions = options.deadlineMs === undefined ? {} : { deadline: new Date(Date.now() + options.deadlineMs) };
      const metadata = new grpc.Metadata();
      if (options.requestId !== undefined) metadata.set("x-request-id", options.requestId);
      const call = (client as any)[method](request, metadata, callOptions) as grpc.ClientReadableStream<T>;
      const headers = new Promise<grpc.Metadata>((resolve) => call.once("metadata", resolve));
      const messages: T[] = [];
      let waiters: Array<() => void> = [];
      const wake = () => {
        const due = waiters;
        waiters = [];
        for (const w of due) w();
      };
      let finished = false;
      call.on("data", (m: T) => {
        messages.push(m);
        wake();
      });
      const ended = new Promise<{ code: number; details: string }>((resolve) => {
        call.on("error", (e: grpc.ServiceError) => {
          finished = true;
          resolve({ code: e.code, details: e.details });
          wake();
        });
        call.on("status", (s: grpc.StatusObject) => {
          finished = true;
          if (s.code === grpc.status.OK) resolve({ code: s.code, details: s.details });
          wake();
        });
      });
      return {
        messages,
        headers,
        ended,
        nth(index, ms = 5_000) {
          return new Promise<T>((resolve, reject) => {
            const timer = setTimeout(() => reject(new Error(`message #${index} did not arrive within ${ms} ms (got ${JSON.stringify(messages)})`)), ms);
            const check = () => {
              if (messages.length > index) {
                clearTimeout(timer);
                resolve(messages[index]!);
              } else if (finished) {
                clearTimeout(timer);
                reject(new Error(`the stream ended after ${messages.length} messages, before message #${index}`));
              } else waiters.push(check);
            };
            check();
          });
        },
        cancel: () => call.cancel(),
      };
    },
    close: () => client.close(),
  };
}
