// Bytes <-> states and deltas, for persistence and replication (schema: proto/keystate/crdt.proto).
// Encodings are canonical: equal states (and equal deltas) encode to equal bytes.
import { isKeystateError } from "../../errors.js";
import { refuse } from "../errors.js";
import type { AnyCrdt, CrdtDelta } from "../types.js";
import { crdtFromWire, crdtToWire, latticeFromWire, latticeToWire, oneofField, typeOfOneofField } from "./lattice-wire.js";
import { crdtWireTypes, TO_OBJECT_OPTIONS } from "./schema.js";
import type { WireCrdt, WireLatticeData } from "./wire-types.js";

export function encodeCrdtState(crdt: AnyCrdt): Uint8Array {
  const { state } = crdtWireTypes();
  return state.encode(state.fromObject(crdtToWire(crdt))).finish();
}

/** Restores a state persisted or received from any replica, owned from now on by `replicaId`. */
export function decodeCrdtState(bytes: Uint8Array, replicaId: string): AnyCrdt {
  return decoding("state", () => {
    const { state } = crdtWireTypes();
    const wire = state.toObject(state.decode(bytes), TO_OBJECT_OPTIONS) as WireCrdt;
    return crdtFromWire(wire, wire["state"] as string | undefined, replicaId);
  });
}

export function encodeCrdtDelta(delta: CrdtDelta): Uint8Array {
  const wire = { [oneofField(delta.type)]: latticeToWire(delta) };
  const type = crdtWireTypes().delta;
  return type.encode(type.fromObject(wire)).finish();
}

export function decodeCrdtDelta(bytes: Uint8Array): CrdtDelta {
  return decoding("delta", () => {
    const { delta } = crdtWireTypes();
    const wire = delta.toObject(delta.decode(bytes), TO_OBJECT_OPTIONS) as WireCrdt;
    const type = typeOfOneofField(wire["delta"] as string | undefined);
    return latticeFromWire(type, wire[oneofField(type)] as WireLatticeData);
  });
}

/** Malformed bytes (protobufjs throws plain errors) become the same typed refusal as bad content. */
function decoding<T>(what: string, decode: () => T): T {
  try {
    return decode();
  } catch (err) {
    if (isKeystateError(err)) throw err;
    refuse(`cannot decode a CRDT ${what}: ${err instanceof Error ? err.message : String(err)}`);
  }
}
