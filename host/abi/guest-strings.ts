// Reads an AssemblyScript string (UTF-16, its byte length stored 4 bytes before the
// pointer) out of guest memory, for abort messages. Returns undefined for a bad pointer.
export function readAssemblyScriptString(memory: WebAssembly.Memory, ptr: number): string | undefined {
  const buffer = memory.buffer;
  if (ptr < 4 || ptr > buffer.byteLength) return undefined;
  const byteLength = new DataView(buffer).getUint32(ptr - 4, true);
  if (byteLength % 2 !== 0 || ptr + byteLength > buffer.byteLength || byteLength > 4096) return undefined;
  return Buffer.from(buffer, ptr, byteLength).toString("utf16le");
}
