// Vote: each replica holds one boolean vote it may change; everyone sees every replica's
// latest vote. A vote is versioned by its owner, and join keeps the higher version, so a
// replica's newer vote replaces its older one everywhere. A replica counts as a voter once it
// has voted (true or false). A replica that is gone for good (a dead node's incarnation) is
// *retired*: its entry becomes a tombstone at the highest version, which beats any vote it
// ever cast, so the join stays a plain per-replica max and every replica converges on
// "no longer a voter" without any coordination.
import { refuse } from "./errors.js";
import { ReplicatedData, type Lattice, type TypedDelta } from "./lattice.js";
import { joinReplicaMaps, type ReplicaMap } from "./replica-map.js";

export interface ReplicaVote {
  readonly vote: boolean;
  /** 1 for the replica's first vote, +1 for each change. */
  readonly version: number;
}

export type VoteData = ReplicaMap<ReplicaVote>;

/** The version of a retired replica's tombstone: no vote of a live replica ever reaches it. */
export const RETIRED_VOTE_VERSION = Number.MAX_SAFE_INTEGER;

function isRetired(vote: ReplicaVote): boolean {
  return vote.version === RETIRED_VOTE_VERSION;
}
export type VoteDelta = TypedDelta<"Vote", VoteData>;

export interface VoteValue {
  /** This replica's own vote (false until it votes). */
  readonly selfVote: boolean;
  readonly votesFor: number;
  /** Replicas that have voted. */
  readonly total: number;
  readonly atLeastOne: boolean;
  /** Strictly more than half of the voters voted true. */
  readonly majority: boolean;
  /** There is at least one voter and every voter voted true. */
  readonly all: boolean;
}

/** Higher version wins; one owner never reuses a version, but a tie still resolves the same way everywhere. */
function laterVote(a: ReplicaVote, b: ReplicaVote): ReplicaVote {
  if (a.version !== b.version) return a.version > b.version ? a : b;
  return a.vote ? a : b;
}

const voteLattice: Lattice<"Vote", VoteData> = {
  type: "Vote",
  empty: () => new Map(),
  joinInto: (target, source) => joinReplicaMaps(target, source, laterVote),
};

export class Vote extends ReplicatedData<"Vote", VoteData, VoteValue> {
  constructor(replicaId: string, data?: VoteData) {
    super(voteLattice, replicaId, data);
  }

  value(): VoteValue {
    let votesFor = 0;
    let total = 0;
    for (const entry of this.data.values()) {
      if (isRetired(entry)) continue;
      total++;
      if (entry.vote) votesFor++;
    }
    const own = this.data.get(this.replicaId);
    return {
      selfVote: own !== undefined && !isRetired(own) && own.vote,
      votesFor,
      total,
      atLeastOne: votesFor > 0,
      majority: votesFor * 2 > total,
      all: total > 0 && votesFor === total,
    };
  }

  /** Sets this replica's vote. Voting the same again changes nothing. */
  vote(inFavour: boolean): void {
    const current = this.data.get(this.replicaId);
    if (current !== undefined && isRetired(current)) refuse(`replica ${this.replicaId} was retired (its node was declared gone); it can no longer vote`);
    if (current?.vote === inFavour) return;
    const next: ReplicaVote = { vote: inFavour, version: (current?.version ?? 0) + 1 };
    this.commit(new Map([[this.replicaId, next]]));
  }

  /** The voters (replica ids) that voted and are not retired. */
  voters(): string[] {
    return [...this.data].filter(([, entry]) => !isRetired(entry)).map(([replicaId]) => replicaId);
  }

  /** Retires replicas for good: their votes stop counting everywhere. Returns how many were voters here. */
  retire(replicaIds: Iterable<string>): number {
    const tombstones = new Map<string, ReplicaVote>();
    for (const replicaId of replicaIds) {
      const current = this.data.get(replicaId);
      if (current !== undefined && !isRetired(current)) tombstones.set(replicaId, { vote: false, version: RETIRED_VOTE_VERSION });
    }
    if (tombstones.size > 0) this.commit(tombstones);
    return tombstones.size;
  }

  clone(replicaId = this.replicaId): this {
    return new Vote(replicaId, this.copyOf(this.data)) as this;
  }
}
