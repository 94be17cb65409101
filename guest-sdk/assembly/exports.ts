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

/** Returns a pointer to a buffer of at least `length` bytes for the next call's input. */
export function ks_input(length: i32): usize {
  if (input.length < length) input = new Uint8Array(max(length, input.length * 2));
  return input.dataStart;
}

export function ks_command(length: i32): void {
  const out = new CommandResult();
  const call = decode<CommandCall>(input.subarray(0, length));
  if (call == null) {
    out.failure = failure(Status.INTERNAL, "the host sent a malformed CommandCall");
  } else {
    const handler = handlerFor(call.service);
    if (handler == null) out.failure = failure(Status.UNIMPLEMENTED, "this module does not serve " + call.service);
    else handler.handleCommand(call, out);
  }
  send(out);
}

export function ks_replay(length: i32): void {
  const out = new ReplayResult();
  const call = decode<ReplayCall>(input.subarray(0, length));
  if (call == null) {
    out.failure = failure(Status.INTERNAL, "the host sent a malformed ReplayCall");
  } else {
    const handler = handlerFor(call.service);
    if (handler == null) out.failure = failure(Status.UNIMPLEMENTED, "this module does not serve " + call.service);
    else handler.handleReplay(call, out);
  }
  send(out);
}

function send(result: Message): void {
  resultWriter.reset();
  result.encodeTo(resultWriter);
  output(resultWriter.dataStart, resultWriter.length);
}
