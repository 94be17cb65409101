// One log line per failed ingress call (gRPC or HTTP/JSON), carrying what an operator
// needs to find it: the request id the client sees, the module, service, method and
// entity key, and the status. Guest traps also log their details (with the same request
// id) where they happen; this line is the call's outcome.
import { GrpcStatus, nameOfGrpcStatus } from "../grpc-http2/status.js";
import type { Level } from "pino";
import { KeystateError, toStatus } from "../errors.js";
import { log } from "../log.js";
import type { ModuleRegistry } from "../runtime/module-registry.js";

export interface FailedCall {
  readonly ingress: "grpc" | "http";
  readonly requestId: string;
  readonly service?: string;
  readonly method?: string;
  /** The request bytes, to read the entity key from (only on failure, so calls that succeed pay nothing). */
  readonly payload?: Uint8Array;
}

/** Statuses that say the caller asked for something it cannot have: routine, not the node's fault. */
const CALLER_SIDE = new Set<GrpcStatus>([
  GrpcStatus.CANCELLED,
  GrpcStatus.INVALID_ARGUMENT,
  GrpcStatus.DEADLINE_EXCEEDED,
  GrpcStatus.NOT_FOUND,
  GrpcStatus.ALREADY_EXISTS,
  GrpcStatus.PERMISSION_DENIED,
  GrpcStatus.FAILED_PRECONDITION,
  GrpcStatus.OUT_OF_RANGE,
  GrpcStatus.UNIMPLEMENTED,
  GrpcStatus.UNAUTHENTICATED,
]);

/** An error no part of Keystate meant to raise (a bug): logged at error level with its stack. */
function unexpected(err: unknown, code: GrpcStatus): boolean {
  return !(err instanceof KeystateError) && (code === GrpcStatus.INTERNAL || code === GrpcStatus.UNKNOWN);
}

export function levelFor(err: unknown, code: GrpcStatus): Level {
  if (unexpected(err, code) || (err instanceof KeystateError && err.code === "STORAGE_UNAVAILABLE")) return "error";
  if (err instanceof KeystateError && err.code === "GUEST_FAILURE") return "info"; // the entity said no: business as usual
  return CALLER_SIDE.has(code) ? "info" : "warn";
}

export function logCallFailure(registry: ModuleRegistry, call: FailedCall, err: unknown, code = toStatus(err).code): void {
  const service = call.service === undefined ? undefined : registry.service(call.service);
  const fields: Record<string, unknown> = {
    requestId: call.requestId,
    ingress: call.ingress,
    module: service?.moduleName,
    service: call.service,
    method: call.method,
    entityKey: entityKeyOf(registry, call),
    status: nameOfGrpcStatus(code) ?? code,
  };
  if (unexpected(err, code)) fields.err = err;
  else fields.error = err instanceof Error ? err.message : String(err);
  log()[levelFor(err, code)](fields, "call failed");
}

function entityKeyOf(registry: ModuleRegistry, call: FailedCall): string | undefined {
  if (call.service === undefined || call.method === undefined || call.payload === undefined) return undefined;
  try {
    return registry.service(call.service)?.methods.get(call.method)?.key?.read(call.payload);
  } catch {
    return undefined; // the key itself was the problem; the error says so
  }
}
