// Applies the CRDT operations a guest returned (abi.proto CrdtOp) to an entity's CRDT,
// through host/crdt's own operations, so every refusal those types have (a decrement or
// remove on a grow-only type, a negative amount, an ORMap key of another type, ...) is
// enforced here too. An op the type does not have is refused the same way. Callers apply
// to a working copy: on a refusal they drop it, so the entity's state is unchanged.
import { CrdtOpKind, LwwClockKind, type CrdtOp } from "../abi/replicated-abi.js";
import { refuse } from "../crdt/errors.js";
import type { LwwClock } from "../crdt/index.js";
import { isCrdtType, type AnyCrdt } from "../crdt/types.js";

export function applyCrdtOps(crdt: AnyCrdt, ops: readonly CrdtOp[]): void {
  for (const op of ops) applyCrdtOp(crdt, op);
}

function applyCrdtOp(crdt: AnyCrdt, op: CrdtOp): void {
  switch (op.kind) {
    case CrdtOpKind.INCREMENT:
      if (crdt.type === "GCounter") return crdt.increment(op.amount);
      // A PNCounter counts both ways: a negative increment is a decrement.
      if (crdt.type === "PNCounter") return op.amount < 0n ? crdt.decrement(-op.amount) : crdt.increment(op.amount);
      break;
    case CrdtOpKind.DECREMENT:
      if (crdt.type === "PNCounter") return op.amount < 0n ? crdt.increment(-op.amount) : crdt.decrement(op.amount);
      if (crdt.type === "GCounter") crdt.decrement(op.amount);
      break;
    case CrdtOpKind.ADD:
      if (crdt.type === "GSet" || crdt.type === "ORSet") return crdt.add(op.element);
      break;
    case CrdtOpKind.REMOVE:
      if (crdt.type === "ORSet" || crdt.type === "GSet") return crdt.remove(op.element);
      if (crdt.type === "ORMap") return crdt.remove(op.key);
      break;
    case CrdtOpKind.CLEAR:
      if (crdt.type === "ORSet" || crdt.type === "GSet" || crdt.type === "ORMap") return crdt.clear();
      break;
    case CrdtOpKind.SET:
      if (crdt.type === "LWWRegister") {
        crdt.set(op.element, clockOf(op));
        return;
      }
      break;
    case CrdtOpKind.ENABLE:
      if (crdt.type === "Flag") return crdt.enable();
      break;
    case CrdtOpKind.VOTE:
      if (crdt.type === "Vote") return crdt.vote(op.vote);
      break;
    case CrdtOpKind.UPDATE:
      if (crdt.type === "ORMap") {
        if (!isCrdtType(op.valueType)) refuse(`an ORMap update names no valid CRDT type for its value (got ${JSON.stringify(op.valueType)})`);
        // host/crdt records exactly what the nested ops changed, or nothing if one is refused.
        return crdt.update(op.key, op.valueType, (value) => applyCrdtOps(value, op.ops));
      }
      break;
    default:
      refuse(`unknown CRDT operation ${op.kind}`);
  }
  refuse(`a ${crdt.type} has no ${CrdtOpKind[op.kind]?.toLowerCase() ?? op.kind} operation`);
}

function clockOf(op: CrdtOp): LwwClock {
  switch (op.clock) {
    case LwwClockKind.REVERSE:
      return { kind: "reverse" };
    case LwwClockKind.CUSTOM:
      return { kind: "custom", value: Number(op.customClock) };
    case LwwClockKind.CUSTOM_AUTO_INCREMENT:
      return { kind: "customAutoIncrement", value: Number(op.customClock) };
    default:
      return { kind: "default" };
  }
}
