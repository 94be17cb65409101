// The functions the host calls (ABI.md). `keystate build` re-exports them from the
// module's generated entry file, so entity code never declares them.
import { CommandCall, CommandResult, ReplayCall, ReplayResult } from "./abi/messages";
import { output } from "./bindings/host";
import { failure, handlerFor } from "./entity";
import { Message, Writer, decode } from "./proto/index";
import { Status } from "./status";

// Kept in a global so the GC never frees the buffer the host is writing into.
let input = new Uint8Array(1024);
const resultWriter = new Writer(1024);
// One result object each, emptied after it is sent (clearFields keeps its arrays): a result
// made per call cost a dozen allocations, most of them arrays for effects it never had.
const commandResult = new CommandResult();
const replayResult = new ReplayResult();

// Modules run on AssemblyScript's "minimal" runtime (see host/build/asc-compile.ts): the
// collector never runs inside a call, so calls pay no GC steps and no shadow-stack upkeep.
// It runs here instead, at the start of a call, where no guest frame holds a reference and
// every live object is reachable from a global. Collecting every call cost ~10% of a small
// command's time; every few calls keeps that small while the heap stays a few calls' garbage,
// and a heap that had to grow is collected at once so it settles instead of growing further.
const COLLECT_EVERY_CALLS = 16;
let callsSinceCollect = 0;
let pagesAtCollect = memory.size();

function collectBetweenCalls(): void {
  if (++callsSinceCollect < COLLECT_EVERY_CALLS && memory.size() == pagesAtCollect) return;
  callsSinceCollect = 0;
  __collect();
  pagesAtCollect = memory.size();
}

/** Returns a pointer to a buffer of at least `length` bytes for the next call's input. */
export function ks_input(length: i32): usize {
  collectBetweenCalls();
  if (input.length < length) input = new Uint8Array(max(length, input.length * 2));
  return input.dataStart;
}

export function ks_command(length: i32): void {
  const out = commandResult;
  const call = decode<CommandCall>(input, length);
  if (call == null) {
    out.failure = failure(Status.INTERNAL, "the host sent a malformed CommandCall");
  } else {
    const handler = handlerFor(call.service);
    if (handler == null) out.failure = failure(Status.UNIMPLEMENTED, "this module does not serve " + call.service);
    else handler.handleCommand(call, out);
  }
  send(out);
  // Emptied now, not at the next call: what it held is garbage for the next collection.
  out.clearFields();
}

export function ks_replay(length: i32): void {
  const out = replayResult;
  const call = decode<ReplayCall>(input, length);
  if (call == null) {
    out.failure = failure(Status.INTERNAL, "the host sent a malformed ReplayCall");
  } else {
    const handler = handlerFor(call.service);
    if (handler == null) out.failure = failure(Status.UNIMPLEMENTED, "this module does not serve " + call.service);
    else handler.handleReplay(call, out);
  }
  send(out);
  out.clearFields();
}

function send(result: Message): void {
  resultWriter.reset();
  result.encodeTo(resultWriter);
  output(resultWriter.dataStart, resultWriter.length);
}
