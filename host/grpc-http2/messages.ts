// gRPC's length-prefixed messages on an HTTP/2 stream: one byte "compressed" flag, a 4-byte
// big-endian length, then the message. A DATA frame may carry part of a message or several.

export interface FramedMessage {
  readonly compressed: boolean;
  readonly bytes: Buffer;
}

/** Thrown when a message's declared length passes the limit (before its bytes are buffered). */
export class MessageTooLarge extends Error {
  constructor(
    readonly length: number,
    readonly limit: number,
  ) {
    // grpc-js's wording, so clients see the same message from either server.
    super(`Received message larger than max (${length} vs ${limit})`);
  }
}

/** Splits a stream's DATA chunks into messages; holds a partial message between chunks. */
export class MessageReader {
  readonly #limit: number;
  #pending: Buffer | undefined;

  constructor(limit: number) {
    this.#limit = limit;
  }

  /** The messages completed by `chunk` (usually one: a unary request arrives in one chunk). */
  push(chunk: Buffer): FramedMessage[] {
    let data = this.#pending === undefined ? chunk : Buffer.concat([this.#pending, chunk]);
    this.#pending = undefined;
    const out: FramedMessage[] = [];
    while (data.length >= 5) {
      const length = data.readUInt32BE(1);
      if (length > this.#limit) throw new MessageTooLarge(length, this.#limit);
      if (data.length < 5 + length) break;
      out.push({ compressed: data[0] === 1, bytes: data.subarray(5, 5 + length) });
      data = data.subarray(5 + length);
    }
    if (data.length > 0) this.#pending = data;
    return out;
  }

  /** True when a message was started but not finished (the stream ended mid-message). */
  get partial(): boolean {
    return this.#pending !== undefined;
  }
}

/** `message` with its 5-byte prefix (never compressed), in one buffer: one DATA write. */
export function frameMessage(message: Uint8Array): Buffer {
  const framed = Buffer.allocUnsafe(5 + message.byteLength);
  framed[0] = 0;
  framed.writeUInt32BE(message.byteLength, 1);
  framed.set(message, 5);
  return framed;
}
