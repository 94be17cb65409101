// The plain-object shapes of crdt.proto messages as protobufjs converts them (camelCase field
// names; 64-bit integers as decimal strings on decode, bigint/number-as-string on encode).
// Fields are optional because proto3 omits defaults.

export type WireInt64 = string | number;

export interface WireReplicaCount {
  replicaId?: string;
  count?: WireInt64;
}

export interface WireDot {
  replicaId?: string;
  counter?: WireInt64;
}

export interface WireCausalContext {
  versionVector?: WireReplicaCount[];
  cloud?: WireDot[];
}

export interface WireDotEntry {
  dots?: WireDot[];
}

export interface WireORSetEntry extends WireDotEntry {
  element?: Uint8Array;
}

export interface WireORMapVersion {
  dot?: WireDot;
  writer?: string;
  value?: WireCrdt;
}

export interface WireORMapEntry {
  key?: Uint8Array;
  versions?: WireORMapVersion[];
}

export interface WireLwwWrite {
  value?: Uint8Array;
  clock?: WireInt64;
  writer?: string;
}

export interface WireReplicaVote {
  replicaId?: string;
  vote?: boolean;
  version?: WireInt64;
}

/** The fields of one type's state (identical in its delta message). */
export interface WireLatticeData {
  totals?: WireReplicaCount[];
  increments?: WireReplicaCount[];
  decrements?: WireReplicaCount[];
  elements?: Uint8Array[];
  entries?: Array<WireORSetEntry | WireORMapEntry>;
  context?: WireCausalContext;
  write?: WireLwwWrite;
  enabled?: boolean;
  votes?: WireReplicaVote[];
}

/** A CrdtState or CrdtDelta: one member of the oneof, named by `state`/`delta` on decode. */
export type WireCrdt = { [field: string]: WireLatticeData | string | undefined };
