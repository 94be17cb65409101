// A gRPC server-reflection client on plain @grpc/grpc-js that knows no .proto: it speaks
// the reflection wire format by field number, rebuilds the schema from the file
// descriptors the server returns, and makes unary calls with it (like grpcurl does).
import * as grpc from "@grpc/grpc-js";
import protobuf from "protobufjs";
import "protobufjs/ext/descriptor.js";

export type ReflectionVersion = "v1" | "v1alpha";

export interface ReflectionResponse {
  readonly services?: string[];
  readonly files?: Uint8Array[];
  readonly error?: { code: number; message: string };
}

const identity = (value: Buffer) => value;

/** One open ServerReflectionInfo stream; requests are answered in order. */
export class ReflectionClient {
  readonly #client: grpc.Client;
  readonly #stream: grpc.ClientDuplexStream<Buffer, Buffer>;
  readonly #waiting: Array<{ resolve: (r: ReflectionResponse) => void; reject: (e: Error) => void }> = [];

  constructor(port: number, version: ReflectionVersion = "v1") {
    this.#client = new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
    this.#stream = this.#client.makeBidiStreamRequest(`/grpc.reflection.${version}.ServerReflection/ServerReflectionInfo`, identity, identity);
    this.#stream.on("data", (bytes: Buffer) => this.#waiting.shift()?.resolve(parseResponse(bytes)));
    this.#stream.on("error", (err: Error) => {
      for (const waiter of this.#waiting.splice(0)) waiter.reject(err);
    });
  }

  listServices(): Promise<string[]> {
    return this.#ask(7, "").then((r) => r.services ?? []);
  }

  fileContainingSymbol(symbol: string): Promise<ReflectionResponse> {
    return this.#ask(4, symbol);
  }

  fileByFilename(name: string): Promise<ReflectionResponse> {
    return this.#ask(3, name);
  }

  close(): void {
    this.#stream.end();
    this.#client.close();
  }

  #ask(field: number, value: string): Promise<ReflectionResponse> {
    const bytes = protobuf.Writer.create().uint32((field << 3) | 2).string(value).finish();
    return new Promise((resolve, reject) => {
      this.#waiting.push({ resolve, reject });
      this.#stream.write(Buffer.from(bytes));
    });
  }
}

function parseResponse(bytes: Uint8Array): ReflectionResponse {
  const reader = protobuf.Reader.create(bytes);
  let result: ReflectionResponse = {};
  while (reader.pos < reader.len) {
    const tag = reader.uint32();
    const field = tag >>> 3;
    if (field === 4) result = { files: repeatedBytes(reader.bytes(), 1) };
    else if (field === 6) result = { services: repeatedBytes(reader.bytes(), 1).map((s) => new TextDecoder().decode(repeatedBytes(s, 1)[0])) };
    else if (field === 7) result = { error: parseError(reader.bytes()) };
    else reader.skipType(tag & 7);
  }
  return result;
}

/** Every length-delimited value of `field` in a message. */
function repeatedBytes(bytes: Uint8Array, field: number): Uint8Array[] {
  const reader = protobuf.Reader.create(bytes);
  const values: Uint8Array[] = [];
  while (reader.pos < reader.len) {
    const tag = reader.uint32();
    if (tag === ((field << 3) | 2)) values.push(reader.bytes());
    else reader.skipType(tag & 7);
  }
  return values;
}

function parseError(bytes: Uint8Array): { code: number; message: string } {
  const reader = protobuf.Reader.create(bytes);
  const error = { code: 0, message: "" };
  while (reader.pos < reader.len) {
    const tag = reader.uint32();
    if (tag === (1 << 3)) error.code = reader.int32();
    else if (tag === ((2 << 3) | 2)) error.message = reader.string();
    else reader.skipType(tag & 7);
  }
  return error;
}

export interface ReflectedService {
  readonly methodNames: string[];
  call(method: string, request: object): Promise<Record<string, unknown>>;
  close(): void;
}

/** Discovers `serviceName` through reflection alone and returns a client for its unary methods. */
export async function reflectedService(port: number, serviceName: string): Promise<ReflectedService> {
  const reflection = new ReflectionClient(port);
  const found = await reflection.fileContainingSymbol(serviceName).finally(() => reflection.close());
  if (!found.files) throw new Error(`reflection did not describe ${serviceName}: ${found.error?.message}`);
  const set = protobuf.Writer.create();
  for (const file of found.files) set.uint32((1 << 3) | 2).bytes(file);
  const root = protobuf.Root.fromDescriptor(set.finish());
  const service = root.lookupService(serviceName);
  service.resolveAll();
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
