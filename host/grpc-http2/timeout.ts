// The `grpc-timeout` request header (gRPC over HTTP/2: "an integer of at most 8 digits and a
// unit"), read by the HTTP/JSON ingress so plain HTTP clients can give a call a deadline the
// way gRPC clients do (grpc-gateway reads the same header).

/** The longest delay setTimeout honours: Node fires a longer one after 1 ms. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * The timer of a deadline `timeoutMs` away (none without one). A deadline further off than a
 * timer can hold (~24.8 days) gets none either, as if it had none, not one that fires at once.
 */
export function deadlineTimer(timeoutMs: number | undefined, expire: () => void): NodeJS.Timeout | undefined {
  return timeoutMs === undefined || timeoutMs > MAX_TIMER_MS ? undefined : setTimeout(expire, Math.max(0, timeoutMs));
}

const UNIT_MS: Record<string, number> = { H: 3_600_000, M: 60_000, S: 1_000, m: 1, u: 0.001, n: 0.000_001 };
const FORMAT = /^(\d{1,8})([HMSmun])$/;

/** The timeout in milliseconds; undefined without a header; throws a message for a malformed one. */
export function parseGrpcTimeout(header: string | string[] | undefined): number | undefined {
  if (header === undefined) return undefined;
  const value = Array.isArray(header) ? header.join(",") : header;
  const match = FORMAT.exec(value.trim());
  if (!match) {
    throw new RangeError(`grpc-timeout "${value}" is not a timeout: write up to 8 digits and a unit (H, M, S, m, u or n), e.g. 500m for 500 ms`);
  }
  return Number(match[1]) * UNIT_MS[match[2]!]!;
}
