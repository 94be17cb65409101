// gRPC server reflection (grpc.reflection.v1 and v1alpha, the same messages under two
// package names) so grpcurl, Postman and buf curl discover the deployed services without
// .proto files. Answers come from a ReflectionIndex that is replaced on every deploy.
import protobuf from "protobufjs";
import { log } from "../log.js";
import type { GrpcServer } from "../grpc-http2/server.js";
import { GrpcStatus } from "../grpc-http2/status.js";
import type { ReflectionIndex } from "./reflection-index.js";

export const REFLECTION_SERVICES = ["grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection"] as const;

// The wire schema of the reflection protocol (field numbers are what matter on the wire).
const SCHEMA = `
syntax = "proto3";
package reflection;
message ServerReflectionRequest {
  string host = 1;
  oneof message_request {
    string file_by_filename = 3;
    string file_containing_symbol = 4;
    ExtensionRequest file_containing_extension = 5;
    string all_extension_numbers_of_type = 6;
    string list_services = 7;
  }
}
message ExtensionRequest { string containing_type = 1; int32 extension_number = 2; }
message ServerReflectionResponse {
  string valid_host = 1;
  ServerReflectionRequest original_request = 2;
  oneof message_response {
    FileDescriptorResponse file_descriptor_response = 4;
    ExtensionNumberResponse all_extension_numbers_response = 5;
    ListServiceResponse list_services_response = 6;
    ErrorResponse error_response = 7;
  }
}
message FileDescriptorResponse { repeated bytes file_descriptor_proto = 1; }
message ExtensionNumberResponse { string base_type_name = 1; repeated int32 extension_number = 2; }
message ListServiceResponse { repeated ServiceResponse service = 1; }
message ServiceResponse { string name = 1; }
message ErrorResponse { int32 error_code = 1; string error_message = 2; }
`;

interface ReflectionTypes {
  readonly request: protobuf.Type;
  readonly response: protobuf.Type;
}

/** The reflection protocol's two messages, parsed on the first request (~3 ms a node's start need not spend). */
let types: ReflectionTypes | undefined;
function reflectionTypes(): ReflectionTypes {
  if (types === undefined) {
    const root = protobuf.parse(SCHEMA, { keepCase: false }).root;
    types = { request: root.lookupType("reflection.ServerReflectionRequest"), response: root.lookupType("reflection.ServerReflectionResponse") };
  }
  return types;
}

interface ReflectionRequest {
  host?: string;
  fileByFilename?: string;
  fileContainingSymbol?: string;
  fileContainingExtension?: { containingType?: string; extensionNumber?: number };
  allExtensionNumbersOfType?: string;
  listServices?: string;
}

/** Adds both reflection services to `server`; `index()` is read per request, so deploys show at once. */
export function addReflection(server: GrpcServer, index: () => ReflectionIndex): void {
  for (const serviceName of REFLECTION_SERVICES) {
    server.add(`/${serviceName}/ServerReflectionInfo`, {
      requestStream: true,
      // A bidirectional stream: one response per request, in order; the stream ends when the client's does.
      handle: (call) =>
        call.read(
          (bytes) => {
            const { request: RequestType, response: ResponseType } = reflectionTypes();
            let request: ReflectionRequest;
            try {
              request = RequestType.toObject(RequestType.decode(bytes)) as ReflectionRequest;
            } catch {
              call.fail(GrpcStatus.INTERNAL, "Error deserializing request");
              return;
            }
            try {
              const response = { validHost: request.host ?? "", originalRequest: request, ...answer(index(), request) };
              call.write(ResponseType.encode(response).finish());
            } catch (err) {
              log().error({ err }, "reflection request failed");
              call.fail(GrpcStatus.INTERNAL, "Internal server error");
            }
          },
          () => call.end(),
        ),
    });
  }
}

function notFound(message: string): Record<string, unknown> {
  return { errorResponse: { errorCode: GrpcStatus.NOT_FOUND, errorMessage: message } };
}

function files(index: ReflectionIndex, fileName: string | undefined, what: string): Record<string, unknown> {
  const found = fileName === undefined ? undefined : index.fileWithDependencies(fileName);
  return found ? { fileDescriptorResponse: { fileDescriptorProto: found } } : notFound(`${what} is not known to this server`);
}

function answer(index: ReflectionIndex, request: ReflectionRequest): Record<string, unknown> {
  if (request.listServices !== undefined) {
    return { listServicesResponse: { service: index.services.map((name) => ({ name })) } };
  }
  if (request.fileByFilename !== undefined) {
    return files(index, request.fileByFilename, `file ${request.fileByFilename}`);
  }
  if (request.fileContainingSymbol !== undefined) {
    return files(index, index.fileOfSymbol(request.fileContainingSymbol), `symbol ${request.fileContainingSymbol}`);
  }
  if (request.fileContainingExtension !== undefined) {
    const { containingType = "", extensionNumber = 0 } = request.fileContainingExtension;
    return files(index, index.fileOfExtension(containingType, extensionNumber), `extension ${extensionNumber} of ${containingType}`);
  }
  if (request.allExtensionNumbersOfType !== undefined) {
    const numbers = index.extensionNumbersOf(request.allExtensionNumbersOfType);
    if (!numbers) return notFound(`type ${request.allExtensionNumbersOfType} is not known to this server`);
    return { allExtensionNumbersResponse: { baseTypeName: request.allExtensionNumbersOfType.replace(/^\./, ""), extensionNumber: numbers } };
  }
  return { errorResponse: { errorCode: GrpcStatus.INVALID_ARGUMENT, errorMessage: "the reflection request names no query" } };
}
