// Reads an AssemblyScript string (UTF-16, its byte length stored 4 bytes before the
// pointer) out of guest memory, for abort messages. Returns undefined for a bad pointer.
export function readAssemblyScriptString(memory: WebAssembly.Memory, ptr: number): string | undefined {
  const buffer = memory.buffer;
  if (ptr < 4 || ptr > buffer.byteLength) return undefined;
  const byteLength = new DataView(buffer).getUint32(ptr - 4, true);
  if (byteLength % 2 !== 0 || ptr + byteLength > buffer.byteLength || byteLength > 4096) return undefined;
  return Buffer.from(buffer, ptr, byteLength).toString("utf16le");
}

/** An abort as the host reports it: "message (file:line:column)", from the strings AssemblyScript passes (or records). */
export function describeAbort(memory: WebAssembly.Memory | undefined, messagePtr: number, filePtr: number, line: number, column: number): string {
  const message = memory && readAssemblyScriptString(memory, messagePtr);
  const file = (memory && readAssemblyScriptString(memory, filePtr)) ?? "?";
  return `${message ?? "abort"} (${file}:${line}:${column})`;
}

/**
 * The abort a trapped instance recorded (ABI version 3, "Aborts without an import"), asked
 * through its `ks_abort` export: undefined when it exports none, recorded none, its record
 * lies outside `memory`, or asking it traps too.
 */
export function recordedAbort(readRecord: unknown, memory: WebAssembly.Memory): string | undefined {
  if (typeof readRecord !== "function") return undefined;
  try {
    const at = (readRecord as () => number)();
    const view = new DataView(memory.buffer);
    if (at <= 0 || at + 16 > view.byteLength) return undefined;
    return describeAbort(memory, view.getUint32(at, true), view.getUint32(at + 4, true), view.getUint32(at + 8, true), view.getUint32(at + 12, true));
  } catch {
    return undefined;
  }
}
