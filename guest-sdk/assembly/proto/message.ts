// Base class of generated message classes and the encode/decode entry points.
import { EMPTY_BYTES, Reader } from "./reader";
import { Writer } from "./writer";

export abstract class Message {
  /** Fully qualified protobuf name, e.g. "shoppingcart.Cart". */
  abstract typeName(): string;
  /** Appends this message's fields (no length prefix) to `w`. */
  abstract encodeTo(w: Writer): void;
  /**
   * Reads fields from `r` until `end`, merging into this message as protobuf requires
   * (scalars overwrite, repeated fields append, embedded messages merge).
   * Malformed input sets `r.error`; the message is then partly filled and must be dropped.
   */
  abstract mergeFrom(r: Reader, end: i32): void;
}

// Reused by encode(): a guest encodes one message at a time, and finish() copies out.
const sharedWriter = new Writer();

/** Encodes a message to a fresh byte array. */
export function encode(m: Message): Uint8Array {
  sharedWriter.reset();
  m.encodeTo(sharedWriter);
  return sharedWriter.finish();
}

// Reused by mergeInto(): a decode runs to its end before the next one starts (embedded
// messages are read through the same reader, never through decode()), so one reader
// serves them all and a decode allocates no reader of its own.
const sharedReader = new Reader(new Uint8Array(0));

/**
 * Decodes `bytes` (its first `length` bytes; -1: all of it; from offset `start`) into `m`;
 * false when the input is malformed. `borrowTopLevelBytes`: see Reader.
 */
export function mergeInto(m: Message, bytes: Uint8Array, length: i32 = -1, start: i32 = 0, borrowTopLevelBytes: bool = false): bool {
  const r = sharedReader;
  r.reset(bytes, start, length);
  r.borrowTopLevelBytes = borrowTopLevelBytes;
  m.mergeFrom(r, r.end);
  const ok = !r.error && r.pos == r.end;
  // Not kept alive by the reader until the next decode.
  r.reset(EMPTY_BYTES);
  return ok;
}

/** Decodes a whole message from `bytes` (its first `length` bytes; -1: all of it); null when the input is malformed. Never traps. */
export function decode<T extends Message>(bytes: Uint8Array, length: i32 = -1): T | null {
  const m = instantiate<T>();
  return mergeInto(m, bytes, length) ? m : null;
}

/**
 * Reads a length-delimited embedded message, merging it into `m` (used by generated
 * code, which passes the field's current value or a new instance).
 */
export function readMessage(r: Reader, m: Message): void {
  const outer = r.beginMessage();
  if (!r.error) m.mergeFrom(r, r.end);
  r.endMessage(outer);
}

/** Writes `m` as a length-delimited embedded message field (used by generated code). */
export function writeMessage(w: Writer, key: u32, m: Message): void {
  w.uint32(key);
  const mark = w.fork();
  m.encodeTo(w);
  w.ldelim(mark);
}
