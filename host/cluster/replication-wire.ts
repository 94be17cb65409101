// Encoding of the replication messages (proto/keystate/replication.proto).
import { join } from "node:path";
import protobuf from "protobufjs";
import { PROTO_DIR } from "../proto/proto-root.js";
import { bufferOf } from "../buffer-of.js";

const root = protobuf.loadSync(join(PROTO_DIR, "keystate", "replication.proto"));
const DeltaBatchMessage = root.lookupType("keystate.replication.DeltaBatch");
const AcksMessage = root.lookupType("keystate.replication.Acks");

export interface WireEntityChange {
  readonly persistenceId: string;
  readonly key: string;
  readonly shard: number;
  readonly counter: number;
  readonly deltas: Uint8Array[];
  /** 0: no acknowledgement wanted. */
  readonly ackId: number;
}

export interface WireDeltaBatch {
  readonly origin: string;
  readonly changes: WireEntityChange[];
}

export interface WireAcks {
  readonly from: string;
  readonly ackIds: number[];
}

const DECODE = { longs: Number, arrays: true, defaults: true } as const;

export function encodeDeltaBatch(batch: WireDeltaBatch): Buffer {
  const bytes = DeltaBatchMessage.encode(DeltaBatchMessage.fromObject(batch)).finish();
  return bufferOf(bytes);
}

/** Throws on bytes that are not a DeltaBatch (a foreign publisher on the channel). */
export function decodeDeltaBatch(bytes: Uint8Array): WireDeltaBatch {
  return DeltaBatchMessage.toObject(DeltaBatchMessage.decode(bytes), DECODE) as WireDeltaBatch;
}

export function encodeAcks(acks: WireAcks): Buffer {
  const bytes = AcksMessage.encode(AcksMessage.fromObject(acks)).finish();
  return bufferOf(bytes);
}

export function decodeAcks(bytes: Uint8Array): WireAcks {
  return AcksMessage.toObject(AcksMessage.decode(bytes), DECODE) as WireAcks;
}
