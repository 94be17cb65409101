// A gRPC server-reflection client on plain @grpc/grpc-js that needs no .proto: it speaks
// the reflection wire format by field number and rebuilds the schema (a protobufjs Root)
// from the file descriptors the server returns, like grpcurl does. `keystate call` uses
// it; so do the reflection tests.
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

  /** `target`: a port on 127.0.0.1, or "host:port". */
  constructor(target: number | string, version: ReflectionVersion = "v1") {
    this.#client = new grpc.Client(typeof target === "number" ? `127.0.0.1:${target}` : target, grpc.credentials.createInsecure());
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

/** The server's reflection does not know the symbol asked for. */
export class SymbolNotFound extends Error {
  constructor(
    readonly symbol: string,
    detail: string,
  ) {
    super(`reflection does not describe ${symbol}: ${detail}`);
  }
}

/**
 * The schema of `symbol` (a service, say) as the server describes it: its file and every
 * file it depends on. Throws with the server's message when the symbol is unknown.
 */
export async function reflectSchema(reflection: ReflectionClient, symbol: string, options: { keepCase?: boolean } = {}): Promise<protobuf.Root> {
  const found = await reflection.fileContainingSymbol(symbol);
  if (!found.files) throw new SymbolNotFound(symbol, found.error?.message ?? "no files");
  const set = protobuf.Writer.create();
  for (const file of found.files) set.uint32((1 << 3) | 2).bytes(file);
  const root = protobuf.Root.fromDescriptor(set.finish(), options);
  root.resolveAll();
  return root;
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
