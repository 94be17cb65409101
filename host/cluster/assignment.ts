// Which node each shard should live on: rendezvous (highest random weight) hashing with a
// load bound. Every node computes the same assignment from the same set of eligible nodes,
// without talking; each shard goes to the node that ranks it highest among those still
// under ceil(shards / nodes), so shard counts stay within one of even, and a change of one
// node moves few shards beyond its fair share.

/** murmur3's 32-bit finaliser: spreads the bits of a weight. */
function mix(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

function seedOf(nodeId: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < nodeId.length; i++) h = Math.imul(h ^ nodeId.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

/** The rendezvous weight of `shard` on the node with this seed. */
function weight(seed: number, shard: number): number {
  return mix(seed ^ Math.imul(shard + 1, 0x9e3779b1));
}

/** target[shard] = the node id it should live on (undefined when no node is eligible). */
export function assignShards(shardCount: number, nodeIds: readonly string[]): (string | undefined)[] {
  const nodes = [...new Set(nodeIds)].sort();
  const target: (string | undefined)[] = new Array(shardCount).fill(undefined);
  if (nodes.length === 0) return target;
  const seeds = nodes.map(seedOf);
  const capacity = Math.ceil(shardCount / nodes.length);
  const load = new Array<number>(nodes.length).fill(0);
  const order = nodes.map((_, i) => i);
  for (let shard = 0; shard < shardCount; shard++) {
    order.sort((a, b) => weight(seeds[b]!, shard) - weight(seeds[a]!, shard) || a - b);
    const chosen = order.find((i) => load[i]! < capacity)!;
    load[chosen]!++;
    target[shard] = nodes[chosen];
  }
  return target;
}
