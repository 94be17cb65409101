// Host-side encoding of the ABI messages in proto/keystate/abi.proto. protobufjs builds
// the encoders from the .proto at start-up, so host and guest share one definition.
import protobuf, { type Type } from "protobufjs";
import { lookupType } from "../proto/proto-root.js";
import { replicatedCallFields, replicatedResultOf, type ReplicatedCall, type ReplicatedResult } from "./replicated-abi.js";

export interface Failure { code: number; message: string }
export interface AbiEvent { type: string; payload: Uint8Array }
export interface ServiceCall { service: string; method: string; payload: Uint8Array }
export interface SideEffect { call: ServiceCall; synchronous: boolean }

export enum StateAction { KEEP = 0, UPDATE = 1, DELETE = 2 }

export interface CommandCall {
  service: string;
  method: string;
  entityKey: string;
  sequence: number;
  state: Uint8Array | undefined;
  payload: Uint8Array;
  /** Replicated entities and their streams (see replicated-abi.ts). */
  replicated?: ReplicatedCall;
}

export interface CommandResult {
  reply: Uint8Array;
  failure: Failure | undefined;
  events: AbiEvent[];
  state: Uint8Array;
  stateAction: StateAction;
  forward: ServiceCall | undefined;
  sideEffects: SideEffect[];
  /** Replicated entities: the CRDT ops, write consistency and stream actions. */
  replicated: ReplicatedResult;
}

export interface ReplayCall {
  service: string;
  state: Uint8Array | undefined;
  events: readonly AbiEvent[];
}

export interface ReplayResult {
  state: Uint8Array;
  failure: Failure | undefined;
}

let types: { commandCall: Type; commandResult: Type; replayCall: Type; replayResult: Type } | undefined;

function abiTypes(): NonNullable<typeof types> {
  types ??= {
    commandCall: lookupType("keystate.abi.CommandCall"),
    commandResult: lookupType("keystate.abi.CommandResult"),
    replayCall: lookupType("keystate.abi.ReplayCall"),
    replayResult: lookupType("keystate.abi.ReplayResult"),
  };
  return types;
}

const EMPTY = new Uint8Array(0);

/**
 * `value` as a Uint8Array. protobufjs decodes an absent bytes field as its default, a
 * shared plain `[]`, and an empty message (an Empty reply, a counter at 0) is exactly that.
 */
export function asBytes(value: Uint8Array | ArrayLike<number> | null | undefined): Uint8Array {
  if (value instanceof Uint8Array) return value;
  return value && value.length > 0 ? Uint8Array.from(value) : EMPTY;
}

/**
 * The CommandCall of a non-replicated command, written field by field with protobufjs's
 * Writer (the hot path: one per guest call). Field numbers as in abi.proto; the bytes
 * equal the reflection encoder's (test/unit/abi-codec.test.ts checks on random calls).
 */
function encodePlainCommandCall(call: CommandCall): Uint8Array {
  // proto3: a field at its default value ("", 0, empty bytes, false) is not written.
  const w = protobuf.Writer.create();
  if (call.service !== "") w.uint32(10).string(call.service); // 1: service
  if (call.method !== "") w.uint32(18).string(call.method); // 2: method
  if (call.entityKey !== "") w.uint32(26).string(call.entityKey); // 3: entity_key
  if (call.sequence !== 0) w.uint32(32).int64(call.sequence); // 4: sequence
  if (call.state !== undefined) {
    if (call.state.length > 0) w.uint32(42).bytes(call.state); // 5: state
    w.uint32(48).bool(true); // 6: has_state
  }
  if (call.payload.length > 0) w.uint32(58).bytes(call.payload); // 7: payload
  return w.finish();
}

export function encodeCommandCall(call: CommandCall): Uint8Array {
  if (call.replicated === undefined) return encodePlainCommandCall(call);
  return encodeCommandCallByReflection(call);
}

/** The reflection encoder (every field, replicated ones included). */
export function encodeCommandCallByReflection(call: CommandCall): Uint8Array {
  const { commandCall } = abiTypes();
  return commandCall.encode({
    service: call.service,
    method: call.method,
    entityKey: call.entityKey,
    sequence: call.sequence,
    state: call.state ?? EMPTY,
    hasState: call.state !== undefined,
    payload: call.payload,
    ...(call.replicated ? replicatedCallFields(call.replicated) : {}),
  }).finish();
}

export function decodeCommandResult(bytes: Uint8Array): CommandResult {
  const decoded = abiTypes().commandResult.decode(bytes) as unknown as Partial<CommandResult> & { stateAction?: number };
  return {
    reply: asBytes(decoded.reply),
    failure: decoded.failure ?? undefined,
    events: (decoded.events ?? []).map((event) => ({ type: event.type, payload: asBytes(event.payload) })),
    state: asBytes(decoded.state),
    stateAction: decoded.stateAction ?? StateAction.KEEP,
    replicated: replicatedResultOf(decoded),
    forward: decoded.forward ? { ...decoded.forward, payload: asBytes(decoded.forward.payload) } : undefined,
    // A side effect without a call (a guest bug) keeps an empty target, which no service matches.
    sideEffects: (decoded.sideEffects ?? []).map((effect) => ({
      call: { service: effect.call?.service ?? "", method: effect.call?.method ?? "", payload: asBytes(effect.call?.payload) },
      synchronous: effect.synchronous === true,
    })),
  };
}

export function encodeReplayCall(call: ReplayCall): Uint8Array {
  return abiTypes().replayCall.encode({
    service: call.service,
    state: call.state ?? EMPTY,
    hasState: call.state !== undefined,
    events: call.events,
  }).finish();
}

export function decodeReplayResult(bytes: Uint8Array): ReplayResult {
  const decoded = abiTypes().replayResult.decode(bytes) as unknown as Partial<ReplayResult>;
  return { state: asBytes(decoded.state), failure: decoded.failure ?? undefined };
}
