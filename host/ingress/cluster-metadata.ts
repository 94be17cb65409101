// What a gRPC call carries from another node of the cluster (forwarded-by and hop count),
// and the "moved" trailer a NOT_OWNER answer carries back, so the forwarding node knows
// nothing ran here and may retry at the real owner.
import type * as grpc from "@grpc/grpc-js";
import { FORWARDED_HEADER, HOPS_HEADER, MOVED_HEADER } from "../entities/placement.js";
import { isKeystateError } from "../errors.js";

const NOT_FORWARDED = {} as const;

export function clusterCallOptions(metadata: grpc.Metadata): { forwarded?: boolean; hops?: number } {
  const by = metadata.get(FORWARDED_HEADER);
  if (by.length === 0) return NOT_FORWARDED;
  const hops = Number(metadata.get(HOPS_HEADER)[0] ?? 0);
  return { forwarded: true, hops: Number.isSafeInteger(hops) && hops >= 0 ? hops : 0 };
}

/** Adds the moved trailer when `err` says this node does not own the entity. */
export function movedTrailer(err: unknown, trailer: grpc.Metadata): void {
  if (isKeystateError(err, "NOT_OWNER")) trailer.set(MOVED_HEADER, "1");
}
