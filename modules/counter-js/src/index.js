// The counter (modules/counter's contract) as a JavaScript entity, built into a WebAssembly
// component by `keystate build` (componentize-js) against proto/keystate.wit. The host passes
// the current state with every command and stores the state the command returns.
import { log } from "keystate:entity/host";

const INVALID_ARGUMENT = 3;
const UNIMPLEMENTED = 12;

// ---- a tiny protobuf codec: varint and length-delimited fields are all this entity needs ----

/** The fields of a message: field number -> last value (a BigInt for varints, bytes otherwise). */
function decodeFields(bytes) {
  const fields = new Map();
  let pos = 0;
  const varint = () => {
    let result = 0n;
    for (let shift = 0n; shift < 70n; shift += 7n) {
      if (pos >= bytes.length) throw new Error("truncated varint");
      const b = bytes[pos++];
      result |= BigInt(b & 0x7f) << shift;
      if ((b & 0x80) === 0) return result;
    }
    throw new Error("bad varint");
  };
  while (pos < bytes.length) {
    const key = Number(varint());
    const field = key >>> 3;
    switch (key & 7) {
      case 0:
        fields.set(field, varint());
        break;
      case 1:
        fields.set(field, bytes.subarray(pos, pos + 8));
        pos += 8;
        break;
      case 2: {
        const length = Number(varint());
        fields.set(field, bytes.subarray(pos, pos + length));
        pos += length;
        break;
      }
      case 5:
        fields.set(field, bytes.subarray(pos, pos + 4));
        pos += 4;
        break;
      default:
        throw new Error(`unsupported wire type ${key & 7}`);
    }
  }
  return fields;
}

/** An int64 field (two's complement in a varint); 0 when absent. */
function int64Field(bytes, field) {
  const value = decodeFields(bytes).get(field);
  return typeof value === "bigint" ? BigInt.asIntN(64, value) : 0n;
}

/** A message whose only field is int64 field 1 (CurrentValue, CounterState). */
function encodeInt64(value) {
  if (value === 0n) return new Uint8Array(0);
  const out = [0x08];
  let v = BigInt.asUintN(64, value);
  while (v >= 0x80n) {
    out.push(Number(v & 0x7fn) | 0x80);
    v >>= 7n;
  }
  out.push(Number(v));
  return Uint8Array.from(out);
}

// ---- the entity ----

function result(fields) {
  return {
    reply: new Uint8Array(0),
    failure: undefined,
    events: [],
    stateAction: "keep",
    state: new Uint8Array(0),
    forward: undefined,
    sideEffects: [],
    timers: [],
    publications: [],
    ...fields,
  };
}

function refuse(code, message) {
  return result({ failure: { code, message } });
}

function setValue(value) {
  const bytes = encodeInt64(value);
  return result({ reply: bytes, stateAction: "update", state: bytes });
}

export function handleCommand(call) {
  const current = call.state ? int64Field(call.state, 1) : 0n;
  switch (call.method) {
    case "Increase":
    case "Decrease": {
      const amount = int64Field(call.payload, 2);
      if (amount < 0n) return refuse(INVALID_ARGUMENT, `value must not be negative, got ${amount}`);
      const next = call.method === "Increase" ? current + amount : current - amount;
      return setValue(BigInt.asIntN(64, next));
    }
    case "Reset":
      log(1, `counter ${call.entityKey} reset`);
      return setValue(0n);
    case "Get":
      return result({ reply: encodeInt64(current) });
    default:
      return refuse(UNIMPLEMENTED, `unknown method ${call.method}`);
  }
}

/** A value entity has no journal: the state is what it is. */
export function replay(call) {
  return { state: call.state ?? new Uint8Array(0), failure: undefined };
}
