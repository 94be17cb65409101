// The host's ABI values (host/abi/abi-codec.ts) as the records of proto/keystate.wit, in the
// shapes jco's glue lifts and lowers: camelCase fields, `undefined` for none, Uint8Array for
// list<u8>, BigInt for 64-bit integers, enum cases as their names.
import { StateAction, type AbiEvent, type CommandCall, type CommandResult, type Failure, type ReplayCall, type ReplayResult, type ServiceCall } from "../abi/abi-codec.js";
import { WriteConsistency, type ReplicatedResult } from "../abi/replicated-abi.js";

const EMPTY = new Uint8Array(0);
const NOT_REPLICATED: ReplicatedResult = { ops: [], writeConsistency: WriteConsistency.LOCAL, streamSend: false, endStream: false };
const STATE_ACTIONS: Record<string, StateAction> = { keep: StateAction.KEEP, update: StateAction.UPDATE, delete: StateAction.DELETE };

interface WitServiceCall { service: string; method: string; payload: Uint8Array }
interface WitCommandResult {
  reply: Uint8Array;
  failure?: Failure;
  events: AbiEvent[];
  stateAction: string;
  state: Uint8Array;
  forward?: WitServiceCall;
  sideEffects: Array<{ call: WitServiceCall; synchronous: boolean }>;
  timers: Array<{ name: string; delayMs: bigint; call?: WitServiceCall; cancel: boolean }>;
  publications: Array<{ topic: string; type: string; payload: Uint8Array; partitionKey: string }>;
}

export function commandCallRecord(call: CommandCall): unknown {
  return {
    service: call.service,
    method: call.method,
    entityKey: call.entityKey,
    sequence: BigInt(call.sequence),
    state: call.state,
    payload: call.payload,
    metadata: (call.metadata ?? []).map(([key, value]) => ({ key, value })),
  };
}

export function commandResultOf(record: unknown): CommandResult {
  const r = record as WitCommandResult;
  return {
    reply: bytes(r.reply),
    failure: r.failure ? { code: r.failure.code, message: r.failure.message } : undefined,
    events: r.events.map((event) => ({ type: event.type, payload: bytes(event.payload) })),
    state: bytes(r.state),
    stateAction: STATE_ACTIONS[r.stateAction] ?? StateAction.KEEP,
    forward: r.forward ? serviceCall(r.forward) : undefined,
    sideEffects: r.sideEffects.map((effect) => ({ call: serviceCall(effect.call), synchronous: effect.synchronous })),
    timers: r.timers.map((timer) => ({
      name: timer.name,
      delayMs: Number(timer.delayMs),
      // A timer without a call (a guest bug, or a cancel) keeps an empty target, as the core codec does.
      call: timer.call ? serviceCall(timer.call) : { service: "", method: "", payload: EMPTY },
      cancel: timer.cancel,
    })),
    publications: r.publications.map((p) => ({ topic: p.topic, type: p.type, payload: bytes(p.payload), partitionKey: p.partitionKey })),
    replicated: NOT_REPLICATED,
  };
}

export function replayCallRecord(call: ReplayCall): unknown {
  return { service: call.service, state: call.state, events: call.events };
}

export function replayResultOf(record: unknown): ReplayResult {
  const r = record as { state: Uint8Array; failure?: Failure };
  return { state: bytes(r.state), failure: r.failure ? { code: r.failure.code, message: r.failure.message } : undefined };
}

function serviceCall(call: WitServiceCall): ServiceCall {
  return { service: call.service, method: call.method, payload: bytes(call.payload) };
}

/** A copy owned by the host: the glue's views may point into guest memory, which the next call reuses. */
function bytes(value: Uint8Array | undefined): Uint8Array {
  return value && value.length > 0 ? value.slice() : EMPTY;
}
