// Keystate's replicated data types (see README.md next to this file).
export { decodeCrdtDelta, decodeCrdtState, encodeCrdtDelta, encodeCrdtState } from "./codec/index.js";
export { createCrdt, crdtFromData } from "./factory.js";
export { Flag, type FlagData, type FlagDelta } from "./flag.js";
export { GCounter, type GCounterData, type GCounterDelta } from "./gcounter.js";
export { GSet, type GSetData, type GSetDelta } from "./gset.js";
export { ReplicatedData, type TypedDelta } from "./lattice.js";
export { LWWRegister, type LWWRegisterData, type LWWRegisterDelta, type LWWRegisterOptions, type LwwClock, type LwwWrite } from "./lww-register.js";
export { ORMap, replicaOfLineage, type MapVersion, type ORMapData, type ORMapDelta } from "./ormap.js";
export { ORSet, type ORSetData, type ORSetDelta } from "./orset.js";
export { PNCounter, type PNCounterData, type PNCounterDelta } from "./pncounter.js";
export { CRDT_TYPES, isCrdtType, type AnyCrdt, type CrdtDataOf, type CrdtDelta, type CrdtOfType, type CrdtType, type CrdtValue, type ORMapEntryValue } from "./types.js";
export { Vote, type ReplicaVote, type VoteData, type VoteDelta, type VoteValue } from "./vote.js";
