// A minimal gRPC unary client over node:http2: one frame out, one frame and the trailers
// back. Used for single calls (first reply after a cold start or deploy, correctness
// checks); load comes from h2load, because a Node client saturates its own core first.
import http2 from "node:http2";

export interface GrpcReply {
  readonly status: number;
  readonly message: string;
  readonly body: Uint8Array;
}

export function grpcFrame(message: Uint8Array): Buffer {
  const frame = Buffer.alloc(5 + message.length);
  frame.writeUInt8(0, 0);
  frame.writeUInt32BE(message.length, 1);
  frame.set(message, 5);
  return frame;
}

export class GrpcClient {
  readonly #session: http2.ClientHttp2Session;

  constructor(port: number) {
    this.#session = http2.connect(`http://127.0.0.1:${port}`);
    this.#session.on("error", () => undefined); // surfaced per call instead
  }

  call(path: string, message: Uint8Array, timeoutMs = 10_000): Promise<GrpcReply> {
    return new Promise((resolve, reject) => {
      const stream = this.#session.request({ ":method": "POST", ":path": path, "content-type": "application/grpc", te: "trailers" });
      const chunks: Buffer[] = [];
      let status: number | undefined;
      let grpcMessage = "";
      const timer = setTimeout(() => stream.close(http2.constants.NGHTTP2_CANCEL), timeoutMs);
      const readStatus = (headers: http2.IncomingHttpHeaders) => {
        if (headers["grpc-status"] !== undefined) status = Number(headers["grpc-status"]);
        if (headers["grpc-message"] !== undefined) grpcMessage = decodeURIComponent(String(headers["grpc-message"]));
      };
      stream.on("response", readStatus); // trailers-only responses carry the status here
      stream.on("trailers", readStatus);
      stream.on("data", (chunk: Buffer) => chunks.push(chunk));
      stream.on("error", (err) => {
        clearTimeout(timer);
        reject(err);
      });
      stream.on("close", () => {
        clearTimeout(timer);
        const data = Buffer.concat(chunks);
        if (status === undefined) return reject(new Error(`no grpc-status from ${path} (stream closed, code ${stream.rstCode})`));
        resolve({ status, message: grpcMessage, body: data.length >= 5 ? data.subarray(5, 5 + data.readUInt32BE(1)) : new Uint8Array() });
      });
      stream.end(grpcFrame(message));
    });
  }

  /** Like call(), but throws unless the status is OK. */
  async ok(path: string, message: Uint8Array): Promise<Uint8Array> {
    const reply = await this.call(path, message);
    if (reply.status !== 0) throw new Error(`${path} answered grpc-status ${reply.status}: ${reply.message}`);
    return reply.body;
  }

  close(): void {
    this.#session.close();
  }
}
