// `keystate call <package.Service>/<Method> '<json>'`: a grpcurl-like client. It needs no
// .proto: the node's gRPC server reflection describes the service, protobufjs turns the
// JSON (proto3 JSON mapping: lowerCamelCase or proto field names, 64-bit integers as
// strings or numbers, enums by name) into the request, and the reply comes back as JSON.
// `keystate call --list` lists what the node serves.
import * as grpc from "@grpc/grpc-js";
import protobuf from "protobufjs";
import protojson from "protobufjs/ext/protojson.js";
import { ReflectionClient, reflectSchema, SymbolNotFound } from "./reflection-client.js";

export const DEFAULT_CALL_ADDRESS = "127.0.0.1:8080";
const DEFAULT_DEADLINE_MS = 30_000;

export interface CallOptions {
  /** host:port of the node's gRPC ingress. */
  readonly address?: string;
  readonly deadlineMs?: number;
  /** Sent as `x-request-id`; the node logs the call under it. */
  readonly requestId?: string;
}

/** A failed call: the gRPC status name and the node's message, for stderr. */
export class CallError extends Error {
  constructor(
    readonly status: string,
    readonly details: string,
    readonly requestId?: string,
  ) {
    super(`${status}: ${details}${requestId ? ` (request id ${requestId})` : ""}`);
  }
}

/** Every service the node serves, each with its methods as `pkg.Service/Method` (reflection itself left out). */
export async function listMethods(options: CallOptions = {}): Promise<string[]> {
  const reflection = new ReflectionClient(options.address ?? DEFAULT_CALL_ADDRESS);
  try {
    const services = (await withReachability(reflection.listServices(), options)).filter((s) => !s.startsWith("grpc.reflection."));
    const lines: string[] = [];
    for (const name of services.sort()) {
      const service = (await reflectSchema(reflection, name)).lookupService(name);
      for (const method of service.methodsArray) lines.push(`${name}/${method.name}${method.responseStream ? " (server streaming)" : ""}`);
    }
    return lines;
  } finally {
    reflection.close();
  }
}

/** Calls `target` ("pkg.Service/Method") with `json`; resolves to the reply as proto3 JSON. */
export async function callMethod(target: string, json: string, options: CallOptions = {}): Promise<unknown> {
  const slash = target.lastIndexOf("/");
  if (slash <= 0 || slash === target.length - 1) throw new Error(`"${target}" is not <package.Service>/<Method>`);
  const serviceName = target.slice(0, slash).replace(/^\//, "");
  const methodName = target.slice(slash + 1);
  const address = options.address ?? DEFAULT_CALL_ADDRESS;

  const reflection = new ReflectionClient(address);
  let root: protobuf.Root;
  try {
    root = await withReachability(reflectSchema(reflection, serviceName, { keepCase: true }), options);
  } catch (err) {
    if (!(err instanceof SymbolNotFound)) throw err;
    throw new CallError("UNIMPLEMENTED", `no service ${serviceName} is served at ${address} (keystate call --list shows what is)`);
  } finally {
    reflection.close();
  }
  const service = root.lookupService(serviceName);
  const method = service.methods[methodName];
  if (!method) throw new CallError("UNIMPLEMENTED", `${serviceName} has no method ${methodName}; it has ${service.methodsArray.map((m) => m.name).join(", ")}`);
  if (method.requestStream || method.responseStream) throw new Error(`${target} is a streaming method; keystate call makes unary calls only`);
  const input = method.resolvedRequestType!;
  const output = method.resolvedResponseType!;

  const request = encodeRequest(input, json);
  const client = new grpc.Client(address, grpc.credentials.createInsecure());
  const metadata = new grpc.Metadata();
  if (options.requestId) metadata.set("x-request-id", options.requestId);
  try {
    const reply = await new Promise<Buffer>((resolve, reject) => {
      client.makeUnaryRequest(
        `/${serviceName}/${methodName}`,
        (bytes: Buffer) => bytes,
        (bytes: Buffer) => bytes,
        request,
        metadata,
        { deadline: Date.now() + (options.deadlineMs ?? DEFAULT_DEADLINE_MS) },
        (err, value) => (err ? reject(asCallError(err)) : resolve(value!)),
      );
    });
    return protojson.toJson(output, output.decode(reply));
  } finally {
    client.close();
  }
}

function encodeRequest(type: protobuf.Type, json: string): Buffer {
  let value: unknown;
  try {
    value = JSON.parse(json === "" ? "{}" : json);
  } catch (err) {
    throw new Error(`the request is not valid JSON: ${(err as Error).message}`);
  }
  try {
    return Buffer.from(type.encode(protojson.fromJson(type, value)).finish());
  } catch (err) {
    throw new Error(`the request is not a valid ${type.fullName.slice(1)}: ${(err as Error).message}`);
  }
}

function asCallError(err: grpc.ServiceError): CallError {
  const requestId = err.metadata?.get("x-request-id")[0];
  return new CallError(grpc.status[err.code] ?? String(err.code), err.details, typeof requestId === "string" ? requestId : undefined);
}

/** Reflection failing because nothing listens is the common mistake: say so plainly. */
async function withReachability<T>(promise: Promise<T>, options: CallOptions): Promise<T> {
  try {
    return await promise;
  } catch (err) {
    const e = err as Partial<grpc.ServiceError>;
    if (e.code === grpc.status.UNAVAILABLE) {
      throw new CallError("UNAVAILABLE", `cannot reach a Keystate node at ${options.address ?? DEFAULT_CALL_ADDRESS} (${e.details}); is \`keystate serve\` running? (--address host:port)`);
    }
    if (e.code === grpc.status.UNIMPLEMENTED) throw new CallError("UNIMPLEMENTED", `the server at ${options.address ?? DEFAULT_CALL_ADDRESS} does not serve gRPC reflection`);
    throw err;
  }
}

/** `keystate call` from its command line: the text to print (JSON, or the method list). */
export async function runCall(args: string[], flags: Record<string, unknown>, env: NodeJS.ProcessEnv): Promise<string> {
  const deadline = flags.deadline === undefined ? undefined : Number(flags.deadline);
  if (deadline !== undefined && !(Number.isInteger(deadline) && deadline > 0)) throw new Error(`--deadline must be a whole number of milliseconds > 0, got "${String(flags.deadline)}"`);
  const options: CallOptions = {
    address: (flags.address as string | undefined) ?? env.KEYSTATE_ADDRESS ?? DEFAULT_CALL_ADDRESS,
    deadlineMs: deadline,
    requestId: flags["request-id"] as string | undefined,
  };
  if (flags.list === true) return (await listMethods(options)).map((line) => line + "\n").join("");
  if (!args[0]) throw new Error("usage: keystate call <package.Service>/<Method> '<json>'   (or keystate call --list)");
  return JSON.stringify(await callMethod(args[0], args[1] ?? "{}", options), null, 2) + "\n";
}
