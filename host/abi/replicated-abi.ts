// The replicated-entity part of the ABI (abi.proto: CrdtValue, CrdtOp, StreamEvent, ...):
// what the host adds to a CommandCall for a replicated entity, and reads back from its
// CommandResult. Kept apart from abi-codec.ts so the other models' codec stays small.

export enum StreamEvent { NONE = 0, STARTED = 1, CHANGED = 2, CANCELLED = 3 }
export enum WriteConsistency { LOCAL = 0, MAJORITY = 1, ALL = 2 }
export enum CrdtOpKind { NONE = 0, INCREMENT = 1, DECREMENT = 2, ADD = 3, REMOVE = 4, CLEAR = 5, SET = 6, ENABLE = 7, VOTE = 8, UPDATE = 9 }
export enum LwwClockKind { DEFAULT = 0, REVERSE = 1, CUSTOM = 2, CUSTOM_AUTO_INCREMENT = 3 }

/** keystate.abi.CrdtValue as protobufjs encodes it (int64 as a decimal string). */
export interface WireCrdtValue {
  readonly type: string;
  readonly counter?: string;
  readonly elements?: Uint8Array[];
  readonly register?: Uint8Array;
  readonly hasRegister?: boolean;
  readonly flag?: boolean;
  readonly vote?: { selfVote: boolean; votesFor: number; total: number };
  readonly entries?: Array<{ key: Uint8Array; value: WireCrdtValue }>;
}

export interface ReplicatedCall {
  readonly crdt: WireCrdtValue;
  readonly streamEvent: StreamEvent;
  readonly previousCrdt?: WireCrdtValue;
  readonly otherStreams: number;
}

export interface CrdtOp {
  readonly kind: CrdtOpKind;
  readonly amount: bigint;
  readonly element: Uint8Array;
  readonly vote: boolean;
  readonly clock: LwwClockKind;
  readonly customClock: bigint;
  readonly key: Uint8Array;
  readonly valueType: string;
  readonly ops: CrdtOp[];
}

export interface ReplicatedResult {
  readonly ops: CrdtOp[];
  readonly writeConsistency: WriteConsistency;
  readonly streamSend: boolean;
  readonly endStream: boolean;
}

export function replicatedCallFields(call: ReplicatedCall): Record<string, unknown> {
  return { crdt: call.crdt, streamEvent: call.streamEvent, previousCrdt: call.previousCrdt, otherStreams: call.otherStreams };
}

type Decoded = Record<string, unknown>;

export function replicatedResultOf(decoded: Decoded): ReplicatedResult {
  return {
    ops: ((decoded.crdtOps as Decoded[] | undefined) ?? []).map(opOf),
    writeConsistency: (decoded.writeConsistency as number | undefined) ?? WriteConsistency.LOCAL,
    streamSend: decoded.streamSend === true,
    endStream: decoded.endStream === true,
  };
}

function opOf(op: Decoded): CrdtOp {
  return {
    kind: (op.kind as number | undefined) ?? CrdtOpKind.NONE,
    amount: bigintOf(op.amount),
    element: bytesOf(op.element),
    vote: op.vote === true,
    clock: (op.clock as number | undefined) ?? LwwClockKind.DEFAULT,
    customClock: bigintOf(op.customClock),
    key: bytesOf(op.key),
    valueType: (op.valueType as string | undefined) ?? "",
    ops: ((op.ops as Decoded[] | undefined) ?? []).map(opOf),
  };
}

/** protobufjs decodes 64-bit fields as Long (or number): both print as decimal. */
function bigintOf(value: unknown): bigint {
  return value === undefined || value === null ? 0n : BigInt(String(value));
}

function bytesOf(value: unknown): Uint8Array {
  if (value instanceof Uint8Array) return value;
  const list = value as ArrayLike<number> | undefined;
  return list && list.length > 0 ? Uint8Array.from(list) : new Uint8Array(0);
}
