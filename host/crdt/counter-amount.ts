// Counter amounts travel as uint64 on the wire, so each replica's running total must stay in
// 0..2^64-1. Amounts are bigint internally so that no total is ever rounded.
import { refuse } from "./errors.js";

export const MAX_UINT64 = (1n << 64n) - 1n;

/** Accepts a non-negative integer (number or bigint) and returns it as a bigint. */
export function checkedAmount(amount: number | bigint, operation: string): bigint {
  if (typeof amount === "number" && !Number.isSafeInteger(amount)) {
    refuse(`${operation}: the amount must be a whole number, got ${amount}`);
  }
  if (typeof amount !== "number" && typeof amount !== "bigint") refuse(`${operation}: the amount must be a number`);
  const value = BigInt(amount);
  if (value < 0n) refuse(`${operation}: the amount must not be negative, got ${value}`);
  return value;
}

export function checkedTotal(total: bigint, operation: string): bigint {
  if (total > MAX_UINT64) refuse(`${operation}: this replica's total would exceed 2^64-1`);
  return total;
}
