// Typed errors with stable codes, made from one table. Each carries the gRPC status
// it maps to at the ingress edge and whether retrying can help (see DESIGN.md).
import { GrpcStatus } from "./grpc-http2/status.js";

interface ErrorSpec {
  readonly status: GrpcStatus;
  readonly retryable: boolean;
  readonly message: string;
}

const ERROR_TABLE = {
  INVALID_MODULE: { status: GrpcStatus.INVALID_ARGUMENT, retryable: false, message: "the module is not a valid Keystate module" },
  MODULE_TOO_LARGE: { status: GrpcStatus.RESOURCE_EXHAUSTED, retryable: false, message: "the module is larger than the upload limit" },
  MODULE_NOT_FOUND: { status: GrpcStatus.NOT_FOUND, retryable: false, message: "no such module" },
  SERVICE_CONFLICT: { status: GrpcStatus.ALREADY_EXISTS, retryable: false, message: "a service of this module is served by another module" },
  INVALID_REQUEST: { status: GrpcStatus.INVALID_ARGUMENT, retryable: false, message: "the request is not valid" },
  UNKNOWN_METHOD: { status: GrpcStatus.UNIMPLEMENTED, retryable: false, message: "no such service or method is deployed" },
  UNKNOWN_SERVICE: { status: GrpcStatus.NOT_FOUND, retryable: false, message: "no such service is deployed" },
  GUEST_FAILURE: { status: GrpcStatus.FAILED_PRECONDITION, retryable: false, message: "the entity refused the command" },
  GUEST_TRAP: { status: GrpcStatus.INTERNAL, retryable: false, message: "the entity's code failed" },
  EFFECT_LOOP: { status: GrpcStatus.RESOURCE_EXHAUSTED, retryable: false, message: "the chain of forwards and side effects is too deep (a loop?)" },
  RESOURCE_LIMIT: { status: GrpcStatus.RESOURCE_EXHAUSTED, retryable: false, message: "the call exceeded its resource limit" },
  STORAGE_UNAVAILABLE: { status: GrpcStatus.UNAVAILABLE, retryable: true, message: "storage is unavailable" },
  SEQUENCE_CONFLICT: { status: GrpcStatus.ABORTED, retryable: true, message: "the journal refused the append: the expected sequence number is stale" },
  FENCED: { status: GrpcStatus.ABORTED, retryable: true, message: "the write was refused: this node no longer holds the lease of the entity's shard" },
  PEER_STATUS: { status: GrpcStatus.UNKNOWN, retryable: false, message: "the node that owns the entity answered with an error" },
  NOT_OWNER: { status: GrpcStatus.UNAVAILABLE, retryable: true, message: "no node that owns the entity's shard could be reached; retry" },
  REPLICATION_INCOMPLETE: {
    status: GrpcStatus.UNAVAILABLE,
    retryable: false,
    message: "too few nodes applied the write in time; it is kept on this node and reaches the others as they catch up",
  },
  DEADLINE: { status: GrpcStatus.DEADLINE_EXCEEDED, retryable: true, message: "the deadline passed" },
  UNAUTHENTICATED: { status: GrpcStatus.UNAUTHENTICATED, retryable: false, message: "a valid admin token is required" },
} as const satisfies Record<string, ErrorSpec>;

export type ErrorCode = keyof typeof ERROR_TABLE;

export class KeystateError extends Error {
  override readonly name = "KeystateError";
  readonly code: ErrorCode;
  readonly status: GrpcStatus;
  readonly retryable: boolean;

  constructor(code: ErrorCode, message?: string, options?: { cause?: unknown; status?: GrpcStatus }) {
    const spec: ErrorSpec = ERROR_TABLE[code];
    super(message ?? spec.message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.status = options?.status ?? spec.status;
    this.retryable = spec.retryable;
  }

  /** Translates a platform error (a Redis or file-system failure) once, keeping it as `cause`. */
  static fromStorage(err: unknown, what: string): KeystateError {
    if (err instanceof KeystateError) return err;
    const detail = err instanceof Error ? err.message : String(err);
    return new KeystateError("STORAGE_UNAVAILABLE", `storage is unavailable (${what}): ${detail}`, { cause: err });
  }
}

export function isKeystateError(err: unknown, code?: ErrorCode): err is KeystateError {
  return err instanceof KeystateError && (code === undefined || err.code === code);
}

/** The status and message a caller sees. Unexpected errors are answered generically. */
export function toStatus(err: unknown): { code: GrpcStatus; details: string } {
  if (err instanceof KeystateError) return { code: err.status, details: err.message };
  return { code: GrpcStatus.INTERNAL, details: "internal error" };
}
