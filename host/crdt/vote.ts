// Vote: each replica holds one boolean vote it may change; everyone sees every replica's
// latest vote. A vote is versioned by its owner, and join keeps the higher version, so a
// replica's newer vote replaces its older one everywhere. A replica counts as a voter once it
// has voted (true or false).
import { ReplicatedData, type Lattice, type TypedDelta } from "./lattice.js";
import { joinReplicaMaps, type ReplicaMap } from "./replica-map.js";

export interface ReplicaVote {
  readonly vote: boolean;
  /** 1 for the replica's first vote, +1 for each change. */
  readonly version: number;
}

export type VoteData = ReplicaMap<ReplicaVote>;
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
    for (const { vote } of this.data.values()) if (vote) votesFor++;
    const total = this.data.size;
    return {
      selfVote: this.data.get(this.replicaId)?.vote ?? false,
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
    if (current?.vote === inFavour) return;
    const next: ReplicaVote = { vote: inFavour, version: (current?.version ?? 0) + 1 };
    this.commit(new Map([[this.replicaId, next]]));
  }

  clone(replicaId = this.replicaId): this {
    return new Vote(replicaId, this.copyOf(this.data)) as this;
  }
}
