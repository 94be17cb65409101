// Compressed request messages (the client sets grpc-encoding and the message's flag). grpc-js
// servers accept gzip and deflate, so clients configured for compression keep working against
// Keystate; replies are never compressed (allowed: each direction chooses its own encoding).
import { gunzip, inflate } from "node:zlib";
import { GrpcStatus } from "./status.js";

export const ACCEPTED_ENCODINGS = "identity,deflate,gzip";

export class DecompressError extends Error {
  constructor(
    readonly code: GrpcStatus,
    message: string,
  ) {
    super(message);
  }
}

/** The message inflated, at most `limit` bytes; a DecompressError with the status to answer otherwise. */
export function decompress(bytes: Buffer, encoding: string, limit: number): Promise<Buffer> {
  if (encoding === "identity") return Promise.resolve(bytes);
  const inflater = encoding === "gzip" ? gunzip : encoding === "deflate" ? inflate : undefined;
  if (inflater === undefined) {
    return Promise.reject(new DecompressError(GrpcStatus.UNIMPLEMENTED, `Received message compressed with unsupported encoding "${encoding}"`));
  }
  return new Promise((resolve, reject) => {
    inflater(bytes, { maxOutputLength: Math.max(1, limit) }, (err, out) => {
      if (!err) return resolve(out);
      if ((err as NodeJS.ErrnoException).code === "ERR_BUFFER_TOO_LARGE") {
        return reject(new DecompressError(GrpcStatus.RESOURCE_EXHAUSTED, `Received message that decompresses to a size larger than ${limit}`));
      }
      reject(new DecompressError(GrpcStatus.INTERNAL, "Failed to decompress message"));
    });
  });
}
