// What the two grpc-js baseline servers share: a grpc-js server on a free loopback port
// serving one workload's write and read methods with bytes in and bytes out (no
// protobuf library in the transport path, as in Keystate's ingress).
import * as grpc from "@grpc/grpc-js";
import { cartWorkload, counterWorkload, grpcPath, type Workload } from "../lib/workloads.js";

export type UnaryHandler = (request: Buffer) => Promise<Uint8Array> | Uint8Array;

const identity = (value: Buffer): Buffer => value;

export function workloadFromArgs(name: string | undefined): Workload {
  if (name === "counter") return counterWorkload;
  if (name === "shopping-cart") return cartWorkload;
  throw new Error(`unknown workload ${name}; use counter or shopping-cart`);
}

/** Serves `handlers` (by method name) for the workload's service and prints {"ready":true,"port":N}. */
export async function serveWorkload(workload: Workload, handlers: Record<string, UnaryHandler>): Promise<grpc.Server> {
  const server = new grpc.Server();
  const definition: Record<string, grpc.MethodDefinition<Buffer, Buffer>> = {};
  const implementation: grpc.UntypedServiceImplementation = {};
  for (const [method, handler] of Object.entries(handlers)) {
    definition[method] = {
      path: grpcPath(workload, method),
      requestStream: false,
      responseStream: false,
      requestSerialize: identity,
      requestDeserialize: identity,
      responseSerialize: identity,
      responseDeserialize: identity,
    };
    implementation[method] = (call: grpc.ServerUnaryCall<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>) => {
      Promise.resolve()
        .then(() => handler(call.request))
        .then(
          (reply) => callback(null, Buffer.from(reply.buffer, reply.byteOffset, reply.byteLength)),
          (err: unknown) => callback({ code: (err as { code?: number }).code ?? grpc.status.INTERNAL, details: String((err as Error).message) }),
        );
    };
  }
  server.addService(definition, implementation);
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (err, bound) => (err ? reject(err) : resolve(bound))),
  );
  process.stdout.write(JSON.stringify({ ready: true, port }) + "\n");
  return server;
}
