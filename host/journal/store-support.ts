// Helpers both storage backends share: argument checks and the one place where a
// platform failure (LMDB, Redis, the network) becomes STORAGE_UNAVAILABLE.
import { KeystateError } from "../errors.js";

export function checkSeq(seq: number, what: string): void {
  if (!Number.isSafeInteger(seq) || seq < 0) {
    throw new KeystateError("INVALID_REQUEST", `${what} must be a non-negative integer, got ${seq}`);
  }
}

/** Runs a storage operation and translates platform failures once, at this edge. */
export async function guarded<T>(what: string, operation: () => Promise<T> | T): Promise<T> {
  try {
    return await operation();
  } catch (err) {
    throw KeystateError.fromStorage(err, what);
  }
}

/**
 * The stored versions (ascending) that a write keeping the newest `keep` of them removes: all
 * older ones but `active`. None when `keep` is absent or 0 (every version is kept).
 */
export function versionsBeyond(versions: readonly number[], keep: number | undefined, active: number | null | undefined): Set<number> {
  if (keep === undefined || keep <= 0 || versions.length <= keep) return new Set();
  return new Set(versions.slice(0, versions.length - keep).filter((version) => version !== active));
}
