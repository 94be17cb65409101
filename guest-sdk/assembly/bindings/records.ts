// How a module built with this SDK answers and fails without calling the host (ABI version 3,
// proto/keystate/ABI.md "Imports"). Every function a module imports costs each cold start:
// V8 compiles a wrapper for it with its optimising compiler when it compiles the module
// (~60-100 us per import signature on a 2-core box, more than a tenth of compiling the whole
// shopping cart). So the result of a call is handed back as the call's return value, and an
// abort leaves its message where the host looks after the trap.

// Two fixed records in static memory: their addresses never change, and nothing allocates them.
const RESULT_RECORD: usize = memory.data(8);
const ABORT_RECORD: usize = memory.data(16);
let aborted = false;

/**
 * The value ks_command and ks_replay return: the address of the (pointer, length) of the
 * call's encoded result. The host copies the bytes before it calls the module again.
 */
export function resultAt(ptr: usize, length: i32): usize {
  store<u32>(RESULT_RECORD, <u32>ptr);
  store<u32>(RESULT_RECORD, <u32>length, 4);
  return RESULT_RECORD;
}

/**
 * AssemblyScript's abort(), in place of the `env.abort` import (asc `--use abort=`, see
 * host/build/build-module.ts): `throw`, a failed assertion and the allocator's errors come
 * here. It keeps what the import received, then traps.
 */
export function abortWithRecord(message: string | null, fileName: string | null, lineNumber: u32, columnNumber: u32): void {
  store<u32>(ABORT_RECORD, <u32>changetype<usize>(message));
  store<u32>(ABORT_RECORD, <u32>changetype<usize>(fileName), 4);
  store<u32>(ABORT_RECORD, lineNumber, 8);
  store<u32>(ABORT_RECORD, columnNumber, 12);
  aborted = true;
  unreachable();
}

/**
 * Exported as `ks_abort`: after a call trapped, the address of the abort's (message, file,
 * line, column), the strings as AssemblyScript lays them out; 0 when the trap was no abort.
 */
export function abortRecord(): usize {
  return aborted ? ABORT_RECORD : 0;
}
