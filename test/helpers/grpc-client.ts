// A plain @grpc/grpc-js client built from a contract .proto with @grpc/proto-loader,
// as an outside client of Keystate would build it, with promise-returning unary calls.
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { join } from "node:path";
import { REPO_ROOT } from "./node-process.js";

export type UnaryCall = (request: object, options?: { deadlineMs?: number; metadata?: Readonly<Record<string, string>> }) => Promise<any>;

export interface ContractClient {
  readonly methods: Record<string, UnaryCall>;
  close(): void;
}

/** A client for `service` (e.g. "keystate.examples.shoppingcart.ShoppingCart") from `protoFile` under `protoDir`. */
export function contractClient(protoDir: string, protoFile: string, service: string, port: number): ContractClient {
  const definition = protoLoader.loadSync(protoFile, {
    includeDirs: [protoDir, join(REPO_ROOT, "proto")],
    keepCase: false,
    longs: String,
    defaults: true,
  });
  const loaded = grpc.loadPackageDefinition(definition);
  const Client = service.split(".").reduce((at: any, part) => at[part], loaded) as grpc.ServiceClientConstructor;
  const client = new Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  const methods: Record<string, UnaryCall> = {};
  for (const name of Object.keys(Client.service)) {
    const method = (client as any)[name].bind(client);
    methods[name] = (request, options = {}) =>
      new Promise((resolve, reject) => {
        const deadline = new Date(Date.now() + (options.deadlineMs ?? 10_000));
        const metadata = new grpc.Metadata();
        for (const [name, value] of Object.entries(options.metadata ?? {})) metadata.set(name, value);
        method(request, metadata, { deadline }, (err: grpc.ServiceError | null, reply: unknown) => (err ? reject(err) : resolve(reply)));
      });
  }
  return { methods, close: () => client.close() };
}

/** The gRPC status code a rejected call carried. */
export async function statusOf(promise: Promise<unknown>): Promise<{ code: number; details: string }> {
  try {
    await promise;
  } catch (err) {
    const e = err as grpc.ServiceError;
    return { code: e.code, details: e.details };
  }
  throw new Error("expected the call to fail, but it succeeded");
}
