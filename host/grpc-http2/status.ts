// gRPC status codes (the numbers are the protocol's: doc/statuscodes.md of grpc/grpc), as a
// value and a type of the same name, like grpc-js's `status` enum. Kept here rather than
// imported from @grpc/grpc-js so that serving — whose gRPC server is node:http2 — does not
// load the grpc-js client library at start-up for an enum.
export const GrpcStatus = {
  OK: 0,
  CANCELLED: 1,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  ALREADY_EXISTS: 6,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  FAILED_PRECONDITION: 9,
  ABORTED: 10,
  OUT_OF_RANGE: 11,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  DATA_LOSS: 15,
  UNAUTHENTICATED: 16,
} as const;

export type GrpcStatus = (typeof GrpcStatus)[keyof typeof GrpcStatus];

const NAMES = Object.keys(GrpcStatus) as ReadonlyArray<keyof typeof GrpcStatus>;

/** "NOT_FOUND" for 5; undefined for a number that is not a status. */
export function nameOfGrpcStatus(code: number): keyof typeof GrpcStatus | undefined {
  return NAMES[code];
}

/** "NOT_FOUND" for 5; "UNKNOWN" for a number that is not a status (as shown in errors and metric labels). */
export function grpcStatusName(code: number): string {
  return NAMES[code] ?? "UNKNOWN";
}

/** True for the numbers that are gRPC statuses (a guest may hand back any integer). */
export function isGrpcStatus(code: number): code is GrpcStatus {
  return Number.isInteger(code) && code >= 0 && code < NAMES.length;
}
