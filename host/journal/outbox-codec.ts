// How an outbox entry is stored (both backends): a small JSON document with the payload in
// base64. Entries are rare (a command's asynchronous side effects) and read only on recovery,
// so a readable form beats a compact one.
import { KeystateError } from "../errors.js";
import type { OutboxEntry } from "./types.js";

export function encodeOutboxEntry(entry: OutboxEntry): string {
  // `id` first and JSON-escaped: storedIdMarker finds it, and nothing else can look like it.
  const { id, ...rest } = entry;
  return JSON.stringify({ id, ...rest, payload: Buffer.from(entry.payload).toString("base64") });
}

export function decodeOutboxEntry(text: string): OutboxEntry {
  try {
    const raw = JSON.parse(text) as Omit<OutboxEntry, "payload"> & { payload: string };
    if (typeof raw.id !== "string" || typeof raw.service !== "string" || typeof raw.method !== "string") throw new Error("fields missing");
    return { ...raw, payload: Buffer.from(raw.payload, "base64") };
  } catch (err) {
    throw new KeystateError("STORAGE_UNAVAILABLE", `a stored outbox entry does not decode: ${(err as Error).message}`, { cause: err });
  }
}

/** How an entry's id appears in its encoded form: what a compare-and-delete looks for. */
export function storedIdMarker(id: string): string {
  return `"id":${JSON.stringify(id)}`;
}
