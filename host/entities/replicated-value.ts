// A CRDT's value in the form a guest reads it (abi.proto CrdtValue): counters as int64,
// sets as sorted bytes, the register's bytes, the flag, this node's view of the vote,
// and ORMap entries with their nested values.
import type { WireCrdtValue } from "../abi/replicated-abi.js";
import type { AnyCrdt, CrdtType, CrdtValue, ORMapEntryValue, VoteValue } from "../crdt/index.js";

const INT64_MAX = (1n << 63n) - 1n;
const INT64_MIN = -(1n << 63n);

export function crdtValueToWire(crdt: AnyCrdt): WireCrdtValue {
  return valueToWire(crdt.type, crdt.value());
}

function valueToWire(type: CrdtType, value: CrdtValue): WireCrdtValue {
  switch (type) {
    case "GCounter":
    case "PNCounter": {
      // The guest counts in i64; a sum past it (only reachable across many replicas) is clamped.
      const n = value as bigint;
      return { type, counter: String(n > INT64_MAX ? INT64_MAX : n < INT64_MIN ? INT64_MIN : n) };
    }
    case "GSet":
    case "ORSet":
      return { type, elements: value as Uint8Array[] };
    case "LWWRegister":
      return value === undefined ? { type, hasRegister: false } : { type, register: value as Uint8Array, hasRegister: true };
    case "Flag":
      return { type, flag: value as boolean };
    case "Vote": {
      const vote = value as VoteValue;
      return { type, vote: { selfVote: vote.selfVote, votesFor: vote.votesFor, total: vote.total } };
    }
    case "ORMap":
      return { type, entries: (value as ORMapEntryValue[]).map((entry) => ({ key: entry.key, value: valueToWire(entry.type, entry.value) })) };
  }
}
