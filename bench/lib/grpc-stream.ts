// Server-streaming calls from a plain @grpc/grpc-js client built from a contract .proto with
// @grpc/proto-loader (as an outside client builds it). Each message is stamped with
// process.hrtime.bigint() in the 'data' handler, so a latency is measured to the moment the
// message reached the client, not to when an awaiting caller got round to it.
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { join } from "node:path";
import { REPO_ROOT } from "./paths.js";

export interface Stamped<T> {
  readonly value: T;
  /** process.hrtime.bigint() when the message arrived. */
  readonly atNs: bigint;
}

export interface StreamEnd {
  readonly code: number;
  readonly details: string;
}

export interface OpenStream<T> {
  readonly messages: Stamped<T>[];
  /** The call's final status (OK, CANCELLED or an error). */
  readonly ended: Promise<StreamEnd>;
  readonly isEnded: boolean;
  /**
   * The first message at index >= `from` that `accept` takes, with its index; rejects after
   * `ms`, or when the stream ends first.
   */
  next(from: number, accept: (value: T) => boolean, ms?: number): Promise<{ index: number; message: Stamped<T> }>;
  cancel(): void;
}

export interface StreamClient {
  /** Resolves once the channel is connected, so the first timed call does not include connection set-up. */
  ready(timeoutMs?: number): Promise<void>;
  /** True while the channel's connection is up (READY), without trying to connect. */
  isReady(): boolean;
  /** `deadlineMs`: a gRPC deadline for the whole stream. */
  open<T>(method: string, request: object, deadlineMs?: number): OpenStream<T>;
  close(): void;
}

/**
 * `protoFile` relative to `protoDir`; imports resolve there and in the repository's proto/
 * (keystate options, google types). Each client has a connection of its own (grpc-js would
 * otherwise share one between clients of the same target and options).
 */
export function streamClient(protoDir: string, protoFile: string, service: string, port: number): StreamClient {
  const definition = protoLoader.loadSync(protoFile, { includeDirs: [protoDir, join(REPO_ROOT, "proto")], longs: String, defaults: true });
  const Client = service.split(".").reduce((at: any, part) => at?.[part], grpc.loadPackageDefinition(definition)) as grpc.ServiceClientConstructor | undefined;
  if (typeof Client !== "function") throw new Error(`${service} is not a service of ${protoFile}`);
  const client = new Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure(), { "grpc.enable_channelz": 0, "grpc.use_local_subchannel_pool": 1 });
  return {
    ready(timeoutMs = 10_000) {
      return new Promise((resolve, reject) => client.waitForReady(Date.now() + timeoutMs, (err) => (err ? reject(err) : resolve())));
    },
    isReady: () => client.getChannel().getConnectivityState(false) === grpc.connectivityState.READY,
    open<T>(method: string, request: object, deadlineMs?: number): OpenStream<T> {
      const fn = (client as unknown as Record<string, (req: object, md: grpc.Metadata, opts: grpc.CallOptions) => grpc.ClientReadableStream<T>>)[method];
      if (typeof fn !== "function") throw new Error(`${service} has no method ${method}`);
      const call = fn.call(client, request, new grpc.Metadata(), deadlineMs === undefined ? {} : { deadline: Date.now() + deadlineMs });
      const messages: Stamped<T>[] = [];
      let waiters: Array<() => void> = [];
      const wake = () => {
        const due = waiters;
        waiters = [];
        for (const w of due) w();
      };
      let finished = false;
      let end: StreamEnd | undefined;
      call.on("data", (value: T) => {
        messages.push({ value, atNs: process.hrtime.bigint() });
        wake();
      });
      const ended = new Promise<StreamEnd>((resolve) => {
        call.on("error", (e: grpc.ServiceError) => {
          finished = true;
          end = { code: e.code, details: e.details };
          resolve({ code: e.code, details: e.details });
          wake();
        });
        call.on("status", (s: grpc.StatusObject) => {
          finished = true;
          end ??= { code: s.code, details: s.details };
          resolve({ code: s.code, details: s.details });
          wake();
        });
      });
      return {
        messages,
        ended,
        get isEnded() {
          return finished;
        },
        next(from, accept, ms = 10_000) {
          return new Promise((resolve, reject) => {
            const timer = setTimeout(() => reject(new Error(`${method}: no matching message from #${from} within ${ms} ms (got ${JSON.stringify(messages.map((m) => m.value))})`)), ms);
            let scanned = from;
            const check = () => {
              for (; scanned < messages.length; scanned++) {
                if (accept(messages[scanned]!.value)) {
                  clearTimeout(timer);
                  return resolve({ index: scanned, message: messages[scanned]! });
                }
              }
              if (finished) {
                clearTimeout(timer);
                reject(new Error(`${method}: the stream ended (${grpc.status[end?.code ?? -1] ?? end?.code}: ${end?.details}) after ${messages.length} messages, none matching from #${from}`));
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
