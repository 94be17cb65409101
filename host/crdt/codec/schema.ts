// Loads the wire schema from proto/keystate/crdt.proto, the source of truth, once (on first use). The file
// is found by walking up from this module, so the same code works from host/ (tsx) and from
// the compiled dist/host/.
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import protobuf from "protobufjs";

const PROTO_FILE = join("proto", "keystate", "crdt.proto");

function findProtoFile(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const candidate = join(dir, PROTO_FILE);
    if (existsSync(candidate)) return candidate;
    const parent = dirname(dir);
    if (parent === dir) throw new Error(`cannot find ${PROTO_FILE} above ${fileURLToPath(import.meta.url)}`);
    dir = parent;
  }
}

let types: { state: protobuf.Type; delta: protobuf.Type } | undefined;

/** The wire types, parsed on first use: a node without replicated entities never pays for the parse. */
export function crdtWireTypes(): { state: protobuf.Type; delta: protobuf.Type } {
  if (types) return types;
  const root = protobuf.loadSync(findProtoFile());
  types = { state: root.lookupType("keystate.crdt.CrdtState"), delta: root.lookupType("keystate.crdt.CrdtDelta") };
  return types;
}

/**
 * How decoded messages are turned into plain objects: 64-bit integers as decimal strings
 * (exact, converted by the callers), repeated fields always present, and the name of the
 * oneof member that is set.
 */
export const TO_OBJECT_OPTIONS: protobuf.IConversionOptions = { longs: String, arrays: true, oneofs: true };
