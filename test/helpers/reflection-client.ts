// A client that knows no .proto: it discovers a service through gRPC server reflection
// (host/cli/reflection-client.ts, which `keystate call` uses too) and makes unary calls
// with plain @grpc/grpc-js and protobufjs objects.
import * as grpc from "@grpc/grpc-js";
import { ReflectionClient, reflectSchema } from "../../host/cli/reflection-client.js";

export { ReflectionClient, type ReflectionResponse, type ReflectionVersion } from "../../host/cli/reflection-client.js";

export interface ReflectedService {
  readonly methodNames: string[];
  call(method: string, request: object): Promise<Record<string, unknown>>;
  close(): void;
}

/** Discovers `serviceName` through reflection alone and returns a client for its unary methods. */
export async function reflectedService(port: number, serviceName: string): Promise<ReflectedService> {
  const reflection = new ReflectionClient(port);
  const root = await reflectSchema(reflection, serviceName).finally(() => reflection.close());
  const service = root.lookupService(serviceName);
  const client = new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  return {
    methodNames: service.methodsArray.map((m) => m.name),
    call(methodName, request) {
      const method = service.methods[methodName];
      if (!method) return Promise.reject(new Error(`reflection shows no method ${methodName}`));
      const input = method.resolvedRequestType!;
      const output = method.resolvedResponseType!;
      return new Promise((resolve, reject) => {
        client.makeUnaryRequest(
          `/${serviceName}/${methodName}`,
          (value: object) => Buffer.from(input.encode(input.fromObject(value)).finish()),
          (bytes: Buffer) => output.toObject(output.decode(bytes), { longs: String, defaults: true }),
          request,
          new grpc.Metadata(),
          { deadline: new Date(Date.now() + 10_000) },
          (err, reply) => (err ? reject(err) : resolve(reply as Record<string, unknown>)),
        );
      });
    },
    close: () => client.close(),
  };
}
