// What a gRPC call carries from another node of the cluster (forwarded-by and hop count),
// and the "moved" trailer a NOT_OWNER answer carries back, so the forwarding node knows
// nothing ran here and may retry at the real owner.
import { CALL_METADATA_HEADER, FORWARDED_HEADER, HOPS_HEADER, IDEMPOTENCY_KEY_HEADER, MOVED_HEADER } from "../entities/placement.js";
import type { CallMetadata } from "../abi/abi-codec.js";
import { KeystateError, isKeystateError } from "../errors.js";
import type { MetadataReader } from "../grpc-http2/metadata.js";

/** What clusterCallOptions returns for a call with no cluster metadata and no idempotency key (the same object every time). */
export const NOT_FROM_CLUSTER = {} as const;

/** What a gRPC call's metadata says of where it comes from (another node) and its idempotency key. */
export function clusterCallOptions(metadata: MetadataReader): { forwarded?: boolean; hops?: number; idempotencyKey?: string; metadata?: CallMetadata } {
  const key = metadata.get(IDEMPOTENCY_KEY_HEADER);
  const idempotencyKey = key.length === 0 ? undefined : checkIdempotencyKey(String(key[0]));
  const by = metadata.get(FORWARDED_HEADER);
  if (by.length === 0) return idempotencyKey === undefined ? NOT_FROM_CLUSTER : { idempotencyKey };
  const hops = Number(metadata.get(HOPS_HEADER)[0] ?? 0);
  const forwarded = { forwarded: true, hops: Number.isSafeInteger(hops) && hops >= 0 ? hops : 0, idempotencyKey };
  const carried = metadata.get(CALL_METADATA_HEADER);
  return carried.length === 0 ? forwarded : { ...forwarded, metadata: parseCallMetadata(String(carried[0])) };
}

/** The forwarding node's JSON of the call's metadata; a malformed one (never sent by a node) carries nothing. */
function parseCallMetadata(json: string): CallMetadata | undefined {
  try {
    const parsed: unknown = JSON.parse(json);
    if (!Array.isArray(parsed)) return undefined;
    return parsed.filter((pair): pair is [string, string] => Array.isArray(pair) && pair.length === 2 && typeof pair[0] === "string" && typeof pair[1] === "string");
  } catch {
    return undefined;
  }
}

/** The longest idempotency key accepted (keys are stored with every reply they answer). */
export const MAX_IDEMPOTENCY_KEY_LENGTH = 256;

/** A key as given, or INVALID_REQUEST: empty, or longer than MAX_IDEMPOTENCY_KEY_LENGTH. */
export function checkIdempotencyKey(key: string): string {
  if (key.length === 0 || key.length > MAX_IDEMPOTENCY_KEY_LENGTH) {
    throw new KeystateError("INVALID_REQUEST", `the idempotency-key must be 1 to ${MAX_IDEMPOTENCY_KEY_LENGTH} characters (got ${key.length})`);
  }
  return key;
}

/** `trailer` plus the moved trailer when `err` says this node does not own the entity. */
export function withMovedTrailer(err: unknown, trailer: Record<string, string>): Record<string, string> {
  return isKeystateError(err, "NOT_OWNER") ? { ...trailer, [MOVED_HEADER]: "1" } : trailer;
}
