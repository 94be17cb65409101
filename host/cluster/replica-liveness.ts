// Which CRDT replica ids belong to processes that are gone for good, so their votes can be
// retired (presence must not show a dead node's users forever). A replica id is
// `<node id>~<incarnation>`, the incarnation being the process's birth time in ms, base 36.
// A replica is gone when no live member has that node id and incarnation — but only once
// the incarnation is older than a grace period (a node that joined a moment ago may not be
// in this node's view yet) and only while this node's view of the members is fresh (a node
// cut off from Redis must not retire everyone).
import type { MemberInfo } from "./membership.js";

const SEPARATOR = "~";

export function replicaIdOf(nodeId: string, incarnation: string): string {
  return `${nodeId}${SEPARATOR}${incarnation}`;
}

/** The node id and birth time of a cluster replica id; undefined for other ids (a single node's "local"). */
export function parseReplicaId(replicaId: string): { nodeId: string; incarnation: string; bornAt: number } | undefined {
  const at = replicaId.lastIndexOf(SEPARATOR);
  if (at <= 0) return undefined;
  const incarnation = replicaId.slice(at + 1);
  const bornAt = Number.parseInt(incarnation, 36);
  if (!/^[0-9a-z]+$/.test(incarnation) || !Number.isSafeInteger(bornAt)) return undefined;
  return { nodeId: replicaId.slice(0, at), incarnation, bornAt };
}

export interface LivenessView {
  readonly selfId: string;
  /** This process's replica id now. */
  readonly replicaId: () => string;
  readonly members: () => ReadonlyMap<string, MemberInfo>;
  /** When `members` was last read from Redis (ms since the epoch, 0 never). */
  readonly membersReadAt: () => number;
  readonly leaseMs: number;
}

export class ReplicaLiveness {
  readonly #view: LivenessView;

  constructor(view: LivenessView) {
    this.#view = view;
  }

  /** How old an incarnation must be before its absence from the members means it is gone. */
  get graceMs(): number {
    return 3 * this.#view.leaseMs;
  }

  isGone(replicaId: string, now = Date.now()): boolean {
    const parsed = parseReplicaId(replicaId);
    if (parsed === undefined) return false;
    const view = this.#view;
    // Two processes never hold one node id at once: any other incarnation of this node is over.
    if (parsed.nodeId === view.selfId) return replicaId !== view.replicaId();
    if (now - view.membersReadAt() > 2 * view.leaseMs) return false;
    const member = view.members().get(parsed.nodeId);
    if (member !== undefined && member.alive && member.incarnation === parsed.incarnation) return false;
    return now - parsed.bornAt > this.graceMs;
  }
}
