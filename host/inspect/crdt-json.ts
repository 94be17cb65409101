// A replicated entity's CRDT value as JSON for the inspector: counters as decimal strings
// (they are 64-bit and beyond what a JSON number holds exactly), elements and register
// values as their bytes — text when they are valid UTF-8, else base64, the field name
// saying which — a Vote as its tally, an ORMap as its entries, each value recursively.
import type { CrdtType, CrdtValue, ORMapEntryValue, VoteValue } from "../crdt/index.js";
import { bufferOf } from "../buffer-of.js";

/** Bytes as `{"utf8": text}` when they are valid UTF-8, else `{"base64": ...}`. */
export type BytesJson = { readonly utf8: string } | { readonly base64: string };

const strictUtf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

export function bytesJson(bytes: Uint8Array): BytesJson {
  try {
    return { utf8: strictUtf8.decode(bytes) };
  } catch {
    return { base64: bufferOf(bytes).toString("base64") };
  }
}

export function crdtJson(type: CrdtType, value: CrdtValue): unknown {
  switch (type) {
    case "GCounter":
    case "PNCounter":
      return String(value as bigint);
    case "Flag":
      return value as boolean;
    case "GSet":
    case "ORSet":
      return (value as Uint8Array[]).map(bytesJson);
    case "LWWRegister":
      return value === undefined ? null : bytesJson(value as Uint8Array);
    case "Vote": {
      // Who "self" is means nothing here (the inspector is no replica): the tally only.
      const { votesFor, total, atLeastOne, majority, all } = value as VoteValue;
      return { votesFor, total, atLeastOne, majority, all };
    }
    case "ORMap":
      return (value as ORMapEntryValue[]).map((entry) => ({ key: bytesJson(entry.key), crdt: entry.type, value: crdtJson(entry.type, entry.value) }));
  }
}
