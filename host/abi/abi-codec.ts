// Host-side encoding of the ABI messages in proto/keystate/abi.proto. protobufjs builds
// the encoders from the .proto at start-up, so host and guest share one definition.
import protobuf, { type Type } from "protobufjs";
import { lookupType } from "../proto/proto-root.js";
import { replicatedCallFields, replicatedResultOf, type ReplicatedCall, type ReplicatedResult } from "./replicated-abi.js";

export interface Failure { code: number; message: string }
export interface AbiEvent { type: string; payload: Uint8Array }
export interface ServiceCall { service: string; method: string; payload: Uint8Array }
export interface SideEffect { call: ServiceCall; synchronous: boolean }
/** A durable timer scheduled (or, `cancel`, deleted) by a command (ABI 2). */
export interface TimerRequest { name: string; delayMs: number; call: ServiceCall; cancel: boolean }
/** A message a command publishes to a topic (ABI 2). */
export interface Publication { topic: string; type: string; payload: Uint8Array; partitionKey: string }
/** What a call carries besides its message (ABI 2): CloudEvents attributes of a delivery, its idempotency key. */
export type CallMetadata = ReadonlyArray<readonly [key: string, value: string]>;

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
  /** Rare (subscriptions' deliveries): sent only when non-empty. */
  metadata?: CallMetadata;
}

export interface CommandResult {
  reply: Uint8Array;
  failure: Failure | undefined;
  events: AbiEvent[];
  state: Uint8Array;
  stateAction: StateAction;
  forward: ServiceCall | undefined;
  sideEffects: SideEffect[];
  /** Durable timers scheduled or cancelled, in order (usually none). */
  timers: TimerRequest[];
  /** Messages published to topics, in order (usually none). */
  publications: Publication[];
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

let types: { commandCall: Type; commandResult: Type; replayCall: Type; replayResult: Type; crdtOp: Type; timer: Type; publication: Type } | undefined;

function abiTypes(): NonNullable<typeof types> {
  types ??= {
    commandCall: lookupType("keystate.abi.CommandCall"),
    commandResult: lookupType("keystate.abi.CommandResult"),
    replayCall: lookupType("keystate.abi.ReplayCall"),
    replayResult: lookupType("keystate.abi.ReplayResult"),
    crdtOp: lookupType("keystate.abi.CrdtOp"),
    timer: lookupType("keystate.abi.TimerRequest"),
    publication: lookupType("keystate.abi.Publication"),
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

const utf8 = protobuf.util.utf8;

// protobufjs writes a string under 40 chars with its own UTF-8 code and longer ones with
// Buffer's; they differ only on lone surrogates, so the sized encoder below does the same.
function utf8Length(value: string): number {
  return value.length < 40 ? utf8.length(value) : Buffer.byteLength(value);
}

function writeUtf8(buf: Buffer, pos: number, value: string): number {
  return value.length < 40 ? utf8.write(value, buf, pos) : buf.write(value, pos);
}

/** Bytes of `value` (a non-negative safe integer) as a varint. */
function varintSize(value: number): number {
  let size = 1;
  while (value > 127) {
    value = Math.floor(value / 128);
    size++;
  }
  return size;
}

function writeVarint(buf: Buffer, pos: number, value: number): number {
  while (value > 127) {
    buf[pos++] = (value % 128) | 128;
    value = Math.floor(value / 128);
  }
  buf[pos++] = value;
  return pos;
}

/** Fields 1 and 2 (service, method) encoded once per pair: they repeat on every call. */
const callPrefixes = new Map<string, Map<string, Uint8Array>>();
const MAX_CACHED = 256;

function callPrefix(service: string, method: string): Uint8Array {
  let byMethod = callPrefixes.get(service);
  if (byMethod === undefined) {
    if (callPrefixes.size >= MAX_CACHED) callPrefixes.clear();
    byMethod = new Map();
    callPrefixes.set(service, byMethod);
  }
  let prefix = byMethod.get(method);
  if (prefix === undefined) {
    const w = protobuf.Writer.create();
    if (service !== "") w.uint32(10).string(service);
    if (method !== "") w.uint32(18).string(method);
    prefix = Uint8Array.from(w.finish()); // off the Buffer pool: it is kept
    if (byMethod.size < MAX_CACHED) byMethod.set(method, prefix);
  }
  return prefix;
}

/**
 * Where an encoder writes a call: the guest's input buffer in its linear memory (see
 * GuestInstance), so a call is encoded in place instead of into a buffer that is then copied.
 */
export interface EncodeTarget {
  /** Makes room for `size` bytes and returns their offset in `buffer`. */
  reserve(size: number): number;
  /** Valid after reserve() (reserving may replace it: guest memory can grow). */
  readonly buffer: Buffer;
}

/** A target that is a fresh Buffer of the reserved size (tests, and callers without a guest). */
class FreshBuffer implements EncodeTarget {
  buffer: Buffer = Buffer.alloc(0);
  reserve(size: number): number {
    this.buffer = Buffer.allocUnsafe(size);
    return 0;
  }
}

/** encodePlainCommandCall into `target`, sized up front, with the service/method prefix cached. */
function encodeSizedCommandCall(call: CommandCall, target: EncodeTarget): number {
  const { entityKey, sequence, state, payload } = call;
  const prefix = callPrefix(call.service, call.method);
  const keyLength = entityKey === "" ? 0 : utf8Length(entityKey);
  let size = prefix.length;
  if (entityKey !== "") size += 1 + varintSize(keyLength) + keyLength;
  if (sequence !== 0) size += 1 + varintSize(sequence);
  if (state !== undefined) size += (state.length > 0 ? 1 + varintSize(state.length) + state.length : 0) + 2;
  if (payload.length > 0) size += 1 + varintSize(payload.length) + payload.length;
  const start = target.reserve(size);
  const buf = target.buffer;
  buf.set(prefix, start);
  let pos = start + prefix.length;
  if (entityKey !== "") {
    buf[pos++] = 26;
    pos = writeVarint(buf, pos, keyLength);
    pos += writeUtf8(buf, pos, entityKey);
  }
  if (sequence !== 0) {
    buf[pos++] = 32;
    pos = writeVarint(buf, pos, sequence);
  }
  if (state !== undefined) {
    if (state.length > 0) {
      buf[pos++] = 42;
      pos = writeVarint(buf, pos, state.length);
      buf.set(state, pos);
      pos += state.length;
    }
    buf[pos++] = 48;
    buf[pos++] = 1;
  }
  if (payload.length > 0) {
    buf[pos++] = 58;
    pos = writeVarint(buf, pos, payload.length);
    buf.set(payload, pos);
    pos += payload.length;
  }
  if (pos - start !== size) throw new Error(`CommandCall encoder wrote ${pos - start} bytes into ${size}`);
  return size;
}

/** Writes `call` into `target` and returns its length in bytes. */
export function encodeCommandCallInto(call: CommandCall, target: EncodeTarget): number {
  // A negative or huge sequence (never sent by the host) takes the Writer's int64 path.
  const plain = call.replicated === undefined && (call.metadata === undefined || call.metadata.length === 0);
  if (plain && Number.isSafeInteger(call.sequence) && call.sequence >= 0) {
    return encodeSizedCommandCall(call, target);
  }
  return copyInto(plain ? encodePlainCommandCall(call) : encodeCommandCallByReflection(call), target);
}

/** Copies bytes an encoder produced on its own into `target`. */
export function copyInto(bytes: Uint8Array, target: EncodeTarget): number {
  const at = target.reserve(bytes.length); // first: reserving may replace target.buffer
  target.buffer.set(bytes, at);
  return bytes.length;
}

export function encodeCommandCall(call: CommandCall): Uint8Array {
  const target = new FreshBuffer();
  encodeCommandCallInto(call, target);
  return target.buffer;
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
    metadata: (call.metadata ?? []).map(([key, value]) => ({ key, value })),
  }).finish();
}

type Reader = protobuf.Reader;

/**
 * The decoders below are synchronous and never re-entered, so one Reader serves every call
 * (protobufjs's Reader.create allocates one per message).
 */
const sharedReader = protobuf.Reader.create(new Uint8Array(0));

function readerOver(bytes: Uint8Array, start = 0, end = bytes.length): Reader {
  sharedReader.buf = bytes;
  sharedReader.pos = start;
  sharedReader.len = end;
  return sharedReader;
}

/**
 * A length-delimited bytes field, copied out of the decoded buffer, with the same bounds
 * check as protobufjs's Reader.bytes(). A copy, not a view: a guest's result is small, and
 * V8 keeps a typed array of up to 64 bytes inside its own heap object with no ArrayBuffer.
 * A view needs `.buffer`, which makes V8 move the bytes into a new off-heap ArrayBuffer
 * first. Measured per result with two fields: ~800 ns with views, ~140 ns with copies, and
 * ~15% of the guest-call path's CPU before this change.
 */
function bytesCopy(r: Reader): Uint8Array {
  const length = r.uint32();
  return length === 0 ? EMPTY : takeCopy(r, length);
}

/**
 * The next `length` bytes of the reader, copied, with protobufjs's bounds check. Uint8Array's
 * slice, which copies (a Buffer's makes a view): see decodeCommandResult.
 */
function takeCopy(r: Reader, length: number): Uint8Array {
  const start = r.pos;
  const end = start + length;
  if (end > r.len) throw RangeError(`index out of range: ${start} + ${length} > ${r.len}`);
  r.pos = end;
  return Uint8Array.prototype.slice.call(r.buf, start, end);
}

/**
 * Runs `body` over the `length` bytes of a sub-message at the reader's position, the way
 * protobufjs's generated decoders do: the length must fit, and the body must end exactly there.
 */
function subMessage<T>(r: Reader, length: number, body: (r: Reader, end: number) => T): T {
  const end = r.pos + length;
  if (end > r.len) throw RangeError("index out of range");
  const outer = r.len;
  r.len = end;
  const value = body(r, end);
  if (r.pos !== end) throw RangeError("index out of range");
  r.len = outer;
  return value;
}

/**
 * A sub-message of the top level, decoded by reflection at nesting depth 1 (its recursion
 * limit counts from there), from a copy of its bytes: protobufjs reads bytes fields as views
 * of its buffer, and a command's result is read in place, in guest memory (GuestInstance).
 */
function decodeNested(type: Type, r: Reader, length: number): unknown {
  const copy = protobuf.Reader.create(takeCopy(r, length));
  return (type.decode as (this: Type, r: Reader, length: number, endGroup: undefined, depth: number) => unknown).call(type, copy, length, undefined, 1);
}

/** An unknown field, or a known one with the wrong wire type: skipped, as protobufjs does. */
function skipField(r: Reader, tag: number, depth: number): void {
  r.skipType(tag & 7, depth, tag >>> 3);
}

function readFailure(r: Reader, end: number, previous: Failure | undefined): Failure {
  let code = previous?.code ?? 0;
  let message = previous?.message ?? "";
  while (r.pos < end) {
    const tag = r.tag();
    if (tag === 8) code = r.uint32(); // 1: code
    else if (tag === 18) message = r.stringVerify(); // 2: message
    else skipField(r, tag, 1);
  }
  return { code, message };
}

function readServiceCall(r: Reader, end: number, depth: number, previous: ServiceCall | undefined): ServiceCall {
  let service = previous?.service ?? "";
  let method = previous?.method ?? "";
  let payload: Uint8Array = previous?.payload ?? EMPTY;
  while (r.pos < end) {
    const tag = r.tag();
    if (tag === 10) service = r.stringVerify(); // 1: service
    else if (tag === 18) method = r.stringVerify(); // 2: method
    else if (tag === 26) payload = bytesCopy(r); // 3: payload
    else skipField(r, tag, depth);
  }
  return { service, method, payload };
}

function readEvent(r: Reader, end: number): AbiEvent {
  let type = "";
  let payload: Uint8Array = EMPTY;
  while (r.pos < end) {
    const tag = r.tag();
    if (tag === 10) type = r.stringVerify(); // 1: type
    else if (tag === 18) payload = bytesCopy(r); // 2: payload
    else skipField(r, tag, 1);
  }
  return { type, payload };
}

function readSideEffect(r: Reader, end: number): SideEffect {
  let call: ServiceCall | undefined;
  let synchronous = false;
  while (r.pos < end) {
    const tag = r.tag();
    if (tag === 10) call = subMessage(r, r.size(), (r2, end2) => readServiceCall(r2, end2, 2, call)); // 1: call
    else if (tag === 16) synchronous = r.bool(); // 2: synchronous
    else skipField(r, tag, 1);
  }
  // A side effect without a call (a guest bug) keeps an empty target, which no service matches.
  return { call: call ?? { service: "", method: "", payload: EMPTY }, synchronous };
}

/**
 * CommandResult read field by field with protobufjs's Reader (the hot path: one per guest
 * call), with the same result as decodeCommandResultByReflection (test/unit/abi-codec.test.ts
 * checks on random results). Field numbers as in abi.proto; a known field with the wrong wire
 * type is skipped and a repeated singular message merges into the earlier one, as protobufjs
 * does. The CRDT ops go to the reflection decoder. Malformed input throws.
 */
function decodeCommandResultFast(bytes: Uint8Array, start = 0, end = bytes.length): CommandResult {
  const r = readerOver(bytes, start, end);
  let reply: Uint8Array = EMPTY;
  let failure: Failure | undefined;
  // Made on first use (most results have neither), like the rare fields below.
  let events: AbiEvent[] | undefined;
  let state: Uint8Array = EMPTY;
  let stateAction: StateAction = StateAction.KEEP;
  let forward: ServiceCall | undefined;
  let sideEffects: SideEffect[] | undefined;
  let crdtOps: unknown[] | undefined;
  let timers: TimerRequest[] | undefined;
  let publications: Publication[] | undefined;
  let writeConsistency = 0;
  let streamSend = false;
  let endStream = false;
  while (r.pos < end) {
    const tag = r.tag();
    switch (tag) {
      case 10: // 1: reply
        reply = bytesCopy(r);
        break;
      case 18: // 2: failure
        failure = subMessage(r, r.size(), (r2, end2) => readFailure(r2, end2, failure));
        break;
      case 26: // 3: events
        (events ??= []).push(subMessage(r, r.size(), readEvent));
        break;
      case 34: // 4: state
        state = bytesCopy(r);
        break;
      case 40: // 5: state_action
        stateAction = r.int32();
        break;
      case 50: // 6: forward
        forward = subMessage(r, r.size(), (r2, end2) => readServiceCall(r2, end2, 1, forward));
        break;
      case 58: // 7: side_effects
        (sideEffects ??= []).push(subMessage(r, r.size(), readSideEffect));
        break;
      case 66: // 8: crdt_ops
        (crdtOps ??= []).push(decodeNested(abiTypes().crdtOp, r, r.size()));
        break;
      case 72: // 9: write_consistency
        writeConsistency = r.int32();
        break;
      case 80: // 10: stream_send
        streamSend = r.bool();
        break;
      case 88: // 11: end_stream
        endStream = r.bool();
        break;
      case 98: // 12: timers (rare: by reflection)
        (timers ??= []).push(timerOf(decodeNested(abiTypes().timer, r, r.size()) as RawTimer));
        break;
      case 106: // 13: publications (rare: by reflection)
        (publications ??= []).push(publicationOf(decodeNested(abiTypes().publication, r, r.size()) as RawPublication));
        break;
      default:
        skipField(r, tag, 0);
    }
  }
  return {
    reply,
    failure,
    events: events ?? NONE,
    state,
    stateAction,
    replicated: crdtOps === undefined && writeConsistency === 0 && !streamSend && !endStream ? NOT_REPLICATED : replicatedResultOf({ crdtOps, writeConsistency, streamSend, endStream }),
    forward,
    sideEffects: sideEffects ?? NONE,
    timers: timers ?? NONE,
    publications: publications ?? NONE,
  };
}

/** Shared by the results without events, side effects, timers or publications (nearly all): never written to. */
const NONE: never[] = [];

/** The replicated part of every other entity kind's result (what replicatedResultOf makes of no fields). */
const NOT_REPLICATED: ReplicatedResult = replicatedResultOf({});

type RawCall = { service?: string; method?: string; payload?: Uint8Array } | null | undefined;
type RawTimer = { name?: string; delayMs?: number | { toNumber(): number }; call?: RawCall; cancel?: boolean };
type RawPublication = { topic?: string; type?: string; payload?: Uint8Array; partitionKey?: string };

function callOf(call: RawCall): ServiceCall {
  return { service: call?.service ?? "", method: call?.method ?? "", payload: asBytes(call?.payload) };
}

function timerOf(raw: RawTimer): TimerRequest {
  const delay = raw.delayMs ?? 0;
  return { name: raw.name ?? "", delayMs: typeof delay === "number" ? delay : delay.toNumber(), call: callOf(raw.call), cancel: raw.cancel === true };
}

function publicationOf(raw: RawPublication): Publication {
  return { topic: raw.topic ?? "", type: raw.type ?? "", payload: asBytes(raw.payload), partitionKey: raw.partitionKey ?? "" };
}


/**
 * Decodes a CommandResult into values that share no memory with `bytes` (every bytes field
 * is a copy, every string new), so `bytes` may be a view of guest memory that the guest's
 * next call overwrites.
 */
export function decodeCommandResult(bytes: Uint8Array): CommandResult {
  return decodeCommandResultFast(bytes);
}

/**
 * decodeCommandResult of the bytes from `start` to `end` of `memory` (a guest's memory, read in
 * place without a view of the result: making one cost a typed array per call). `memory` must
 * be a plain Uint8Array, not a Buffer: the decoder's copies are Uint8Array slices, and a
 * Buffer's slice would make each copy a Buffer through its species constructor.
 */
export function decodeCommandResultIn(memory: Uint8Array, start: number, end: number): CommandResult {
  return decodeCommandResultFast(memory, start, end);
}

/** The reflection decoder (protobufjs's generated code), kept as the reference for the test. */
export function decodeCommandResultByReflection(bytes: Uint8Array): CommandResult {
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
      call: callOf(effect.call),
      synchronous: effect.synchronous === true,
    })),
    timers: ((decoded.timers ?? []) as RawTimer[]).map(timerOf),
    publications: ((decoded.publications ?? []) as RawPublication[]).map(publicationOf),
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
