// The shard of an entity: a stable hash of its storage identity, modulo the cluster's
// shard count. Every node (and the Redis key layout) computes the same shard for the same
// entity, so "who owns this key" and "which hash tag its keys carry" never disagree.
import type { EntityId } from "./types.js";

export const DEFAULT_SHARD_COUNT = 256;
export const MAX_SHARD_COUNT = 16384;

const FNV_OFFSET = 0x811c9dc5;
const FNV_PRIME = 0x01000193;
const utf8 = new TextEncoder();

/** FNV-1a (32 bit) of `text` as UTF-8, continuing from `hash`. ASCII is hashed without encoding. */
function fnv1a(text: string, hash: number): number {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c >= 0x80) return fnv1aBytes(utf8.encode(text.slice(i)), hash);
    hash = Math.imul(hash ^ c, FNV_PRIME);
  }
  return hash;
}

function fnv1aBytes(bytes: Uint8Array, hash: number): number {
  for (let i = 0; i < bytes.length; i++) hash = Math.imul(hash ^ bytes[i]!, FNV_PRIME);
  return hash;
}

/** FNV-1a of `persistenceId + "\0" + key`, as an unsigned 32-bit number. */
export function entityHash(persistenceId: string, key: string): number {
  const h = fnv1a(persistenceId, FNV_OFFSET);
  return fnv1a(key, Math.imul(h ^ 0, FNV_PRIME)) >>> 0;
}

export function shardOf(persistenceId: string, key: string, shardCount: number): number {
  return entityHash(persistenceId, key) % shardCount;
}

export function shardOfId(id: EntityId, shardCount: number): number {
  return shardOf(id.persistenceId, id.key, shardCount);
}

/** A shard count must be a whole number in 1..MAX_SHARD_COUNT (the Redis Cluster slot count bounds useful spread). */
export function checkShardCount(count: number): number {
  if (!Number.isInteger(count) || count < 1 || count > MAX_SHARD_COUNT) {
    throw new Error(`the shard count must be a whole number from 1 to ${MAX_SHARD_COUNT}, got ${count}`);
  }
  return count;
}

/**
 * The storage persistence id of a replicated (CRDT) entity: prefixed so a value entity that
 * shares the persistence id never reads CRDT bytes as its value. The shard is computed from
 * this storage id, by the router and the store alike.
 */
export function replicatedStorageId(persistenceId: string): string {
  return `replicated:${persistenceId}`;
}
