// Reads an AssemblyScript string (UTF-16, its byte length stored 4 bytes before the
// pointer) out of guest memory, for abort messages. Returns undefined for a bad pointer.
export function readAssemblyScriptString(memory: WebAssembly.Memory, ptr: number): string | undefined {
  const buffer = memory.buffer;
  if (ptr < 4 || ptr > buffer.byteLength) return undefined;
  const byteLength = new DataView(buffer).getUint32(ptr - 4, true);
  if (byteLength % 2 !== 0 || ptr + byteLength > buffer.byteLength || byteLength > 4096) return undefined;
  return Buffer.from(buffer, ptr, byteLength).toString("utf16le");
}

/**
 * The abort a module recorded at `at` (ABI version 3, "Aborts without an import"): its
 * message, file, line and column as "message (file:line:column)"; undefined when the record
 * lies outside memory.
 */
export function readAbortRecord(memory: WebAssembly.Memory, at: number): string | undefined {
  const view = new DataView(memory.buffer);
  if (at <= 0 || at + 16 > view.byteLength) return undefined;
  const message = readAssemblyScriptString(memory, view.getUint32(at, true));
  const file = readAssemblyScriptString(memory, view.getUint32(at + 4, true)) ?? "?";
  return `${message ?? "abort"} (${file}:${view.getUint32(at + 8, true)}:${view.getUint32(at + 12, true)})`;
}
