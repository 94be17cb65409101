// The hook the cluster will replicate through: every local change of a replicated
// entity's CRDT, as the delta host/crdt's takeDelta() produced, after it is durable here.
// On one node nothing subscribes by default; WriteConsistency is carried so that
// majority/all writes can later wait for acknowledgements (on one node all are local).
import type { WriteConsistency } from "../abi/replicated-abi.js";
import type { CrdtDelta } from "../crdt/index.js";
import type { EntityId } from "../journal/types.js";

export interface CrdtDeltaEvent {
  readonly id: EntityId;
  readonly service: string;
  readonly delta: CrdtDelta;
  readonly writeConsistency: WriteConsistency;
}

export type CrdtDeltaObserver = (event: CrdtDeltaEvent) => void;
