// Each data type's lattice data <-> the fields of its XState / XDelta message (the two share
// fields, see crdt.proto), and a whole CRDT <-> a CrdtState wrapper object, which ORMap
// versions nest recursively.
import { bytesKey, compareStrings } from "../bytes-key.js";
import type { DottedPayload } from "../dot-store.js";
import { crdtFromData } from "../factory.js";
import type { MapVersion, ORMapData } from "../ormap.js";
import type { ORSetData } from "../orset.js";
import { sortedReplicaEntries } from "../replica-map.js";
import { CRDT_TYPES, type AnyCrdt, type CrdtDelta, type CrdtType } from "../types.js";
import type { VoteData } from "../vote.js";
import {
  addDecodedEntry,
  bytesFromWire,
  contextFromWire,
  contextToWire,
  dotFromWire,
  dotToWire,
  int64ToWire,
  invalid,
  sortedCausalEntries,
  totalsFromWire,
  totalsToWire,
  wireToReplicaId,
  wireToSafeInteger,
} from "./primitives.js";
import type { WireCrdt, WireLatticeData, WireORMapEntry, WireORSetEntry } from "./wire-types.js";

/** The oneof member of CrdtState / CrdtDelta that carries `type`. */
export function oneofField(type: CrdtType): string {
  return type.toLowerCase();
}

export function typeOfOneofField(field: string | undefined): CrdtType {
  const type = CRDT_TYPES.find((candidate) => oneofField(candidate) === field);
  if (type === undefined) invalid("no CRDT type is set");
  return type;
}

export function crdtToWire(crdt: AnyCrdt): WireCrdt {
  return { [oneofField(crdt.type)]: latticeToWire({ type: crdt.type, data: crdt.stateData() } as CrdtDelta) };
}

/** `selected` is the name of the oneof member protobufjs reports as set. */
export function crdtFromWire(wire: WireCrdt, selected: string | undefined, replicaId: string): AnyCrdt {
  const type = typeOfOneofField(selected);
  return crdtFromData(latticeFromWire(type, wire[oneofField(type)] as WireLatticeData), replicaId);
}

export function latticeToWire(item: CrdtDelta): WireLatticeData {
  switch (item.type) {
    case "GCounter":
      return { totals: totalsToWire(item.data) };
    case "PNCounter":
      return { increments: totalsToWire(item.data.increments), decrements: totalsToWire(item.data.decrements) };
    case "GSet":
      return { elements: [...item.data.entries()].sort(([a], [b]) => compareStrings(a, b)).map(([, element]) => element) };
    case "ORSet":
      return {
        entries: sortedCausalEntries(item.data).map(({ bytes, dotted }) => ({ element: bytes, dots: dotted.map((d) => dotToWire(d.dot)) })),
        context: contextToWire(item.data.context),
      };
    case "LWWRegister": {
      const write = item.data.write;
      return write === undefined ? {} : { write: { value: write.value, clock: int64ToWire(write.clock), writer: write.writer } };
    }
    case "Flag":
      return { enabled: item.data.enabled };
    case "ORMap":
      return {
        entries: sortedCausalEntries(item.data).map(({ bytes, dotted }) => ({
          key: bytes,
          versions: dotted.map(({ dot, payload }) => ({ dot: dotToWire(dot), writer: payload.writer, value: crdtToWire(payload.value) })),
        })),
        context: contextToWire(item.data.context),
      };
    case "Vote":
      return {
        votes: sortedReplicaEntries(item.data).map(([replicaId, { vote, version }]) => ({ replicaId, vote, version: int64ToWire(version) })),
      };
  }
}

export function latticeFromWire(type: CrdtType, wire: WireLatticeData): CrdtDelta {
  switch (type) {
    case "GCounter":
      return { type, data: totalsFromWire(wire.totals) };
    case "PNCounter":
      return { type, data: { increments: totalsFromWire(wire.increments), decrements: totalsFromWire(wire.decrements) } };
    case "GSet":
      return { type, data: new Map((wire.elements ?? []).map((element) => [bytesKey(element), bytesFromWire(element)])) };
    case "ORSet":
      return { type, data: orsetFromWire(wire) };
    case "LWWRegister": {
      const write = wire.write;
      if (write === undefined) return { type, data: { write: undefined } };
      const clock = wireToSafeInteger(write.clock, "an LWWRegister clock");
      return { type, data: { write: { value: bytesFromWire(write.value), clock, writer: wireToReplicaId(write.writer, "an LWWRegister write") } } };
    }
    case "Flag":
      return { type, data: { enabled: wire.enabled ?? false } };
    case "ORMap":
      return { type, data: ormapFromWire(wire) };
    case "Vote":
      return { type, data: voteFromWire(wire) };
  }
}

function orsetFromWire(wire: WireLatticeData): ORSetData {
  const data: ORSetData = { entries: new Map(), context: contextFromWire(wire.context) };
  for (const entry of (wire.entries ?? []) as WireORSetEntry[]) {
    const dotted = (entry.dots ?? []).map((dot) => ({ dot: dotFromWire(dot), payload: true as const }));
    addDecodedEntry(data, bytesFromWire(entry.element), dotted);
  }
  return data;
}

function ormapFromWire(wire: WireLatticeData): ORMapData {
  const data: ORMapData = { entries: new Map(), context: contextFromWire(wire.context) };
  for (const entry of (wire.entries ?? []) as WireORMapEntry[]) {
    const versions = (entry.versions ?? []).map((version): DottedPayload<MapVersion> => {
      const writer = wireToReplicaId(version.writer, "an ORMap version");
      if (version.value === undefined) invalid("an ORMap version has no value");
      const value = crdtFromWire(version.value, selectedField(version.value), writer);
      return Object.freeze({ dot: dotFromWire(version.dot), payload: Object.freeze({ writer, value }) });
    });
    addDecodedEntry(data, bytesFromWire(entry.key), versions);
  }
  return data;
}

function voteFromWire(wire: WireLatticeData): VoteData {
  const votes: VoteData = new Map();
  for (const entry of wire.votes ?? []) {
    const version = wireToSafeInteger(entry.version, "a vote version");
    if (version < 1) invalid("a vote version must be at least 1");
    votes.set(wireToReplicaId(entry.replicaId, "a vote"), { vote: entry.vote ?? false, version });
  }
  return votes;
}

/** Nested CrdtState objects name their set member under "state" (oneofs: true). */
function selectedField(wire: WireCrdt): string | undefined {
  const selected = wire["state"];
  return typeof selected === "string" ? selected : undefined;
}
