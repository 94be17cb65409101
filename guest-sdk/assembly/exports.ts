// The functions the host calls (ABI.md). `keystate build` re-exports them from the
// module's generated entry file, so entity code never declares them.
import { CommandCall, CommandResult, ReplayCall, ReplayResult } from "./abi/messages";
import { abortRecord, resultAt } from "./bindings/records";
import { failure, handlerFor, staged } from "./entity";
import { EMPTY_BYTES, KnownStrings, Message, Reader, decode, mergeInto, writeMessage } from "./proto/index";
import { Status } from "./status";

// Kept in a global so the GC never frees the buffer the host is writing into.
let input = new Uint8Array(1024);
// One result object each, emptied after it is sent (clearFields keeps its arrays): a result
// made per call cost a dozen allocations, most of them arrays for effects it never had.
const commandResult = new CommandResult();
const replayResult = new ReplayResult();
// One call object too, emptied after each call: what it held is garbage for the next collection.
const commandCall = new CommandCall();

// Modules run on one of two runtimes (module.json "heap", host/build/asc-compile.ts):
// AssemblyScript's "minimal" runtime (TLSF allocator, mark and sweep) or Keystate's call-heap
// runtime (guest-sdk/runtime/call-heap.ts: bump allocation, the calls' objects dropped at once
// unless something kept refers to them). Neither collects inside a call, so calls pay no GC
// steps and no shadow-stack upkeep; the collection runs here instead, at the start of a call,
// where no guest frame holds a reference and every live object is reachable from a global.
// Collecting every call cost ~10% of a small command's time on the minimal runtime, and made
// the call-heap's guest call x0.78 (its trace of what is kept costs ~0.7 us on the counter);
// every few calls keeps that small while the heap holds a few calls' garbage, and a heap that
// had to grow is collected at once so it settles instead of growing further.
const COLLECT_EVERY_CALLS = 16;
let callsSinceCollect = 0;
// The memory's size at the last collection; -1 until the first call, which takes the size it
// finds. Not the size at build time: the host may give an instance a recycled memory larger
// than that (its extra pages zero), and taking that for growth collected on the first call,
// which then also compiled the collector (~9 KB of the cart's code) as part of its cold start.
let pagesAtCollect: i32 = -1;

function collectBetweenCalls(): void {
  const pages = memory.size();
  if (pagesAtCollect < 0) pagesAtCollect = pages;
  if (++callsSinceCollect < COLLECT_EVERY_CALLS && pages == pagesAtCollect) return;
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

/** Runs one CommandCall; returns where its CommandResult is (bindings/records.ts). */
export function ks_command(length: i32): usize {
  const out = commandResult;
  const call = commandCall;
  // The call's state and payload are read in place: nothing keeps them past this call, and
  // the host writes the next input only after it returns.
  if (!mergeInto(call, input, length, readKnownCallPrefix(call, length), true)) {
    out.failure = failure(Status.INTERNAL, "the host sent a malformed CommandCall");
  } else {
    const handler = handlerFor(call.service);
    if (handler == null) out.failure = failure(Status.UNIMPLEMENTED, "this module does not serve " + call.service);
    else handler.handleCommand(call, out);
  }
  const result = sendCommandResult(out);
  // Emptied now, not at the next call: what they held is garbage for the next collection.
  out.clearFields();
  call.clearFields();
  return result;
}

/** Folds one ReplayCall; returns where its ReplayResult is. */
export function ks_replay(length: i32): usize {
  const out = replayResult;
  const call = decode<ReplayCall>(input, length);
  if (call == null) {
    out.failure = failure(Status.INTERNAL, "the host sent a malformed ReplayCall");
  } else {
    const handler = handlerFor(call.service);
    if (handler == null) out.failure = failure(Status.UNIMPLEMENTED, "this module does not serve " + call.service);
    else handler.handleReplay(call, out);
  }
  const result = send(out);
  out.clearFields();
  return result;
}

/** After a trapped call: where its abort's message and place are, 0 when it did not abort. */
export { abortRecord as ks_abort };

/**
 * The staged events, then `out`, then the staged reply and state (fields 1 and 4); only `out`
 * when the command failed. The bytes stay in the staged writer, untouched until the next call.
 */
function sendCommandResult(out: CommandResult): usize {
  if (out.failure != null) staged.reset();
  // Protobuf fields may come in any order; the host's decoder takes them as they come.
  const w = staged.writer;
  out.encodeTo(w);
  const reply = staged.reply;
  if (reply != null) writeMessage(w, 10, reply);
  const state = staged.state;
  if (state != null) writeMessage(w, 34, state);
  const result = resultAt(w.dataStart, w.length);
  // Emptied for the next command (the bytes stay), and so that nothing it holds stays alive until then.
  staged.reset();
  return result;
}

// The host writes a CommandCall's service (field 1) and method (field 2) first, and they are
// the same few strings on every call: they are matched against the strings already seen
// rather than decoded, two allocations and two UTF-8 decodes less per call. Input laid out
// any other way is decoded whole by the generated decoder, as before. A module's service and
// method names are few, so the bound is small: a name past it is decoded each time.
const callNames = new KnownStrings(64);
const prefixReader = new Reader(EMPTY_BYTES);

/**
 * Reads fields 1 and 2 at the start of the input into `call` when they are there, returning
 * the offset after them (0 when the input does not start with both).
 */
function readKnownCallPrefix(call: CommandCall, length: i32): i32 {
  const r = prefixReader;
  r.reset(input, 0, length);
  let after = 0;
  if (r.pos < r.end && r.tag() == 10) {
    const service = r.knownString(callNames);
    if (!r.error && r.pos < r.end && r.tag() == 18) {
      const method = r.knownString(callNames);
      if (!r.error) {
        call.service = service;
        call.method = method;
        after = r.pos;
      }
    }
  }
  // Not kept alive by the reader until the next call.
  r.reset(EMPTY_BYTES);
  return after;
}

function send(result: Message): usize {
  const w = staged.writer;
  result.encodeTo(w);
  const at = resultAt(w.dataStart, w.length);
  w.reset();
  return at;
}
