// Creating a data type by name. ORMap uses this for the values it creates, and this module
// imports ORMap. That cycle is safe only because nothing here touches the classes while the
// modules load: the constructor table is built on first use, not at import time.
import { refuse } from "./errors.js";
import { Flag } from "./flag.js";
import { GCounter } from "./gcounter.js";
import { GSet } from "./gset.js";
import { LWWRegister } from "./lww-register.js";
import { ORMap } from "./ormap.js";
import { ORSet } from "./orset.js";
import { PNCounter } from "./pncounter.js";
import { isCrdtType, type AnyCrdt, type CrdtDataOf, type CrdtDelta, type CrdtOfType, type CrdtType } from "./types.js";
import { Vote } from "./vote.js";

type Constructors = { readonly [T in CrdtType]: new (replicaId: string, data?: CrdtDataOf<T>) => CrdtOfType<T> };
let table: Constructors | undefined;
const constructors = (): Constructors => (table ??= { GCounter, PNCounter, GSet, ORSet, LWWRegister, Flag, ORMap, Vote });

/** An empty data type of `type` owned by `replicaId`. */
export function createCrdt<T extends CrdtType>(type: T, replicaId: string): CrdtOfType<T> {
  if (!isCrdtType(type)) refuse(`unknown CRDT type ${JSON.stringify(type)}`);
  return new (constructors()[type])(replicaId);
}

/** A data type of `data.type` holding `data.data` as its state (the codec's decoder uses this). */
export function crdtFromData(data: CrdtDelta, replicaId: string): AnyCrdt {
  const construct = constructors()[data.type] as new (replicaId: string, data: CrdtDelta["data"]) => AnyCrdt;
  return new construct(replicaId, data.data);
}
