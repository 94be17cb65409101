// The closed set of replicated data types and the unions over them. Type-only imports keep
// this module free of runtime dependencies, so every other module may import it.
import type { Flag, FlagDelta } from "./flag.js";
import type { GCounter, GCounterDelta } from "./gcounter.js";
import type { GSet, GSetDelta } from "./gset.js";
import type { LWWRegister, LWWRegisterDelta } from "./lww-register.js";
import type { ORMap, ORMapDelta } from "./ormap.js";
import type { ORSet, ORSetDelta } from "./orset.js";
import type { PNCounter, PNCounterDelta } from "./pncounter.js";
import type { Vote, VoteDelta, VoteValue } from "./vote.js";

export const CRDT_TYPES = ["GCounter", "PNCounter", "GSet", "ORSet", "LWWRegister", "Flag", "ORMap", "Vote"] as const;
export type CrdtType = (typeof CRDT_TYPES)[number];

export function isCrdtType(type: unknown): type is CrdtType {
  return typeof type === "string" && (CRDT_TYPES as readonly string[]).includes(type);
}

export type AnyCrdt = GCounter | PNCounter | GSet | ORSet | LWWRegister | Flag | ORMap | Vote;
export type CrdtOfType<T extends CrdtType> = Extract<AnyCrdt, { readonly type: T }>;

export type CrdtDelta =
  | GCounterDelta
  | PNCounterDelta
  | GSetDelta
  | ORSetDelta
  | LWWRegisterDelta
  | FlagDelta
  | ORMapDelta
  | VoteDelta;

/** The lattice data (state, and delta payload) of one type. */
export type CrdtDataOf<T extends CrdtType> = Extract<CrdtDelta, { readonly type: T }>["data"];

/** One entry of an ORMap's value: the key's bytes, the type of its value, and that value. */
export interface ORMapEntryValue {
  readonly key: Uint8Array;
  readonly type: CrdtType;
  readonly value: CrdtValue;
}

/** What value() returns, per type: counters bigint, sets sorted bytes, register bytes or undefined, ... */
export type CrdtValue = bigint | boolean | Uint8Array | undefined | Uint8Array[] | VoteValue | ORMapEntryValue[];
