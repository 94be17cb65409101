// Small node:http helpers shared by the admin API and the JSON transcoder: bounded body
// reads and JSON replies.
import type http from "node:http";

/** Thrown when a request body is over its limit; callers answer 413. */
export class BodyTooLargeError extends Error {
  override readonly name = "BodyTooLargeError";
}

/** Reads the whole body, refusing (before reading, when Content-Length says so) one over `limit` bytes. */
export async function readBody(req: http.IncomingMessage, limit: number, what = "the request body"): Promise<Buffer> {
  const declared = Number(req.headers["content-length"] ?? NaN);
  if (declared > limit) throw new BodyTooLargeError(`${what} is ${declared} bytes; the limit is ${limit}`);
  // Events rather than `for await`: leaving an async iterator early destroys the socket,
  // and the caller still has to send its 413 on it.
  return new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      // Chunked uploads declare no length, so the limit is also enforced while reading.
      if (size > limit) {
        cleanup();
        reject(new BodyTooLargeError(`${what} is over the limit of ${limit} bytes`));
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = () => {
      cleanup();
      resolve(Buffer.concat(chunks));
    };
    const onError = (err: Error) => {
      cleanup();
      reject(err);
    };
    const cleanup = () => {
      req.off("data", onData);
      req.off("end", onEnd);
      req.off("error", onError);
    };
    req.on("data", onData);
    req.on("end", onEnd);
    req.on("error", onError);
  });
}

export function sendJson(res: http.ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { "content-type": "application/json; charset=utf-8", "content-length": Buffer.byteLength(text), ...headers });
  res.end(text);
}
