// `keystate cluster`: turns a node's GET /cluster answer into a table a person can scan.
// Pure (JSON in, text out) so the unit test needs no running node.

export interface ClusterNodeView {
  readonly id: string;
  readonly address: string;
  readonly shards: readonly number[];
  readonly alive: boolean;
  readonly draining: boolean;
}

export interface ClusterView {
  readonly cluster: string;
  readonly shardCount: number;
  readonly self: string;
  readonly nodes: readonly ClusterNodeView[];
}

/** "0-12,40,42-44": sorted, deduplicated, consecutive runs collapsed; "-" when empty. */
export function shardRanges(shards: readonly number[]): string {
  const sorted = [...new Set(shards)].sort((a, b) => a - b);
  const parts: string[] = [];
  for (let i = 0; i < sorted.length; ) {
    let end = i;
    while (end + 1 < sorted.length && sorted[end + 1] === sorted[end]! + 1) end++;
    parts.push(end === i ? String(sorted[i]) : `${sorted[i]}-${sorted[end]}`);
    i = end + 1;
  }
  return parts.length ? parts.join(",") : "-";
}

/** Fails with a readable message when the admin API answers something else (e.g. an older node). */
export function asClusterView(json: unknown): ClusterView {
  const view = json as Partial<ClusterView> | null;
  if (!view || typeof view.cluster !== "string" || typeof view.shardCount !== "number" || !Array.isArray(view.nodes)) {
    throw new Error(`unexpected GET /cluster answer: ${JSON.stringify(json).slice(0, 200)}`);
  }
  return view as ClusterView;
}

export function formatClusterTable(view: ClusterView): string {
  const nodes = [...view.nodes].sort((a, b) => a.id.localeCompare(b.id));
  const rows = nodes.map((n) => [
    `${n.id === view.self ? "*" : " "} ${n.id}`,
    n.address,
    (n.alive ? "alive" : "dead") + (n.draining ? ",draining" : ""),
    String(new Set(n.shards).size),
    shardRanges(n.shards),
  ]);
  const header = ["  node", "address", "state", "shards", "held"];
  const widths = header.map((h, col) => Math.max(h.length, ...rows.map((r) => r[col]!.length)));
  // The shard count is right-aligned so counts compare at a glance; the last column is not padded.
  const line = (cells: string[]) =>
    cells.map((c, col) => (col === 3 ? c.padStart(widths[col]!) : col === cells.length - 1 ? c : c.padEnd(widths[col]!))).join("  ");
  const out = [`cluster ${view.cluster}: ${view.shardCount} shards, seen from ${view.self}`, line(header), ...rows.map(line)];
  // Shards nobody holds are the ones that fail or wait right now (e.g. a lease not yet taken over).
  const held = new Set(view.nodes.flatMap((n) => n.shards));
  const unowned = Array.from({ length: view.shardCount }, (_, s) => s).filter((s) => !held.has(s));
  if (unowned.length) out.push(`unowned: ${unowned.length} (${shardRanges(unowned)})`);
  return out.join("\n") + "\n";
}
