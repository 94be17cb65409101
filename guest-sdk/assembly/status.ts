// gRPC status codes, for ctx.fail(). The host passes the code through to the caller.
export namespace Status {
  export const CANCELLED: u32 = 1;
  export const UNKNOWN: u32 = 2;
  export const INVALID_ARGUMENT: u32 = 3;
  export const DEADLINE_EXCEEDED: u32 = 4;
  export const NOT_FOUND: u32 = 5;
  export const ALREADY_EXISTS: u32 = 6;
  export const PERMISSION_DENIED: u32 = 7;
  export const RESOURCE_EXHAUSTED: u32 = 8;
  export const FAILED_PRECONDITION: u32 = 9;
  export const ABORTED: u32 = 10;
  export const OUT_OF_RANGE: u32 = 11;
  export const UNIMPLEMENTED: u32 = 12;
  export const INTERNAL: u32 = 13;
  export const UNAVAILABLE: u32 = 14;
  export const DATA_LOSS: u32 = 15;
  export const UNAUTHENTICATED: u32 = 16;
}
