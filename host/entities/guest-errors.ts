// Turns what went wrong inside a guest call into a KeystateError: a failure the guest
// chose keeps its status and message; a trap becomes INTERNAL (details logged only).
import { GrpcStatus, isGrpcStatus } from "../grpc-http2/status.js";
import { KeystateError } from "../errors.js";
import type { Failure } from "../abi/abi-codec.js";
import { log } from "../log.js";

export function failureToError(failure: Failure): KeystateError {
  const code = failure.code;
  return new KeystateError("GUEST_FAILURE", failure.message || "the entity refused the command", {
    status: code !== GrpcStatus.OK && isGrpcStatus(code) ? code : GrpcStatus.FAILED_PRECONDITION,
  });
}

export interface GuestCallContext {
  readonly module: string;
  readonly service: string;
  readonly method?: string;
  readonly entityKey?: string;
  readonly requestId?: string;
}

/** For an error thrown out of a guest call: log it in full, return what the caller may see. */
export function trapToError(err: unknown, context: GuestCallContext): KeystateError {
  const error = err instanceof KeystateError ? err : new KeystateError("GUEST_TRAP", undefined, { cause: err });
  if (error.code === "GUEST_TRAP" || error.code === "RESOURCE_LIMIT") {
    // The caller sees the generic message; the log keeps the guest's own (error.cause).
    log().warn({ ...context, err: error.cause ?? error, reason: error.message }, "guest call trapped");
  }
  return error;
}
