// How the cluster throughput runs spread keys over N nodes: every node owns the same number
// of keys, every node receives (is sent) the same number of keys, and exactly 1/N of the
// keys are sent to their owner, i.e. (N-1)/N are forwarded, as with keys that land on a
// node at random. c[owner][ingress] counts keys; the diagonal is the local ones.

export interface KeyPlacement {
  /** Index of the node that owns the key. */
  readonly owner: number;
  /** Index of the node the load generator sends the key's calls to. */
  readonly ingress: number;
}

/** `keys` placements over `nodes` nodes; `keys` must be a multiple of `nodes`. */
export function spreadKeys(nodes: number, keys: number): KeyPlacement[] {
  if (!Number.isInteger(keys / nodes)) throw new Error(`${keys} keys do not spread evenly over ${nodes} nodes`);
  const perNode = keys / nodes;
  // Local keys per owner: perNode / nodes in all, as evenly as whole numbers allow.
  const local = Array.from({ length: nodes }, (_, o) => Math.floor(perNode / nodes) + (o < perNode % nodes ? 1 : 0));
  const c = Array.from({ length: nodes }, (_, o) => Array.from({ length: nodes }, (_, i) => (i === o ? local[o]! : 0)));
  const rowNeed = local.map((l) => perNode - l);
  const colNeed = local.map((l) => perNode - l);
  // The rest off the diagonal, one key at a time: the owner with the most left to place goes
  // to the other node with the most room left (keeps rows and columns even).
  for (;;) {
    const o = rowNeed.indexOf(Math.max(...rowNeed));
    if (rowNeed[o]! === 0) break;
    let to = -1;
    for (let i = 0; i < nodes; i++) if (i !== o && colNeed[i]! > 0 && (to < 0 || colNeed[i]! > colNeed[to]!)) to = i;
    if (to < 0) throw new Error(`cannot spread ${keys} keys over ${nodes} nodes with 1/${nodes} local`);
    c[o]![to]!++;
    rowNeed[o]!--;
    colNeed[to]!--;
  }
  const placements: KeyPlacement[] = [];
  for (let o = 0; o < nodes; o++) for (let i = 0; i < nodes; i++) for (let n = 0; n < c[o]![i]!; n++) placements.push({ owner: o, ingress: i });
  return placements;
}
