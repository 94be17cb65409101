// A minimal gRPC unary client over node:http2: one frame out, one frame and the trailers
// back. Used for single calls (first reply after a cold start or deploy, correctness
// checks); load comes from h2load, because a Node client saturates its own core first.
import http2 from "node:http2";
import protobuf from "protobufjs";

// Just the reflection messages listServices() needs (field numbers as in
// grpc/reflection/v1/reflection.proto), so a caller can check what a node serves
// without going near any deployed module.
const reflectionRoot = protobuf.Root.fromJSON({
  nested: {
    // In a oneof, as in the real proto: protobufjs only writes an empty string that is a oneof member.
    ServerReflectionRequest: { oneofs: { messageRequest: { oneof: ["listServices"] } }, fields: { listServices: { type: "string", id: 7 } } },
    ServerReflectionResponse: { fields: { listServicesResponse: { type: "ListServiceResponse", id: 6 } } },
    ListServiceResponse: { fields: { service: { rule: "repeated", type: "ServiceResponse", id: 1 } } },
    ServiceResponse: { fields: { name: { type: "string", id: 1 } } },
  },
});
const ReflectionRequest = reflectionRoot.lookupType("ServerReflectionRequest");
const ReflectionResponse = reflectionRoot.lookupType("ServerReflectionResponse");

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
  /** Settles when the server's first SETTINGS frame arrives, i.e. the HTTP/2 connection is up both ways. */
  readonly #settled: Promise<void>;

  constructor(port: number) {
    this.#session = http2.connect(`http://127.0.0.1:${port}`);
    this.#session.on("error", () => undefined); // surfaced per call instead
    this.#settled = new Promise((resolve, reject) => {
      this.#session.once("remoteSettings", () => resolve());
      this.#session.once("close", () => reject(new Error(`HTTP/2 connection to 127.0.0.1:${port} closed before it was set up`)));
    });
    this.#settled.catch(() => undefined); // only an error for callers of connected()
  }

  /**
   * Resolves once TCP and the HTTP/2 preface/SETTINGS exchange are done, so a call timed
   * after it measures the call alone, not connection set-up.
   */
  connected(timeoutMs = 10_000): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`HTTP/2 connection not set up within ${timeoutMs} ms`)), timeoutMs);
    });
    return Promise.race([this.#settled, timeout]).finally(() => clearTimeout(timer));
  }

  /**
   * The services the node lists through gRPC server reflection (one ListServices request on
   * a ServerReflectionInfo stream, then half-close). This goes through the node's gRPC
   * server without touching any module, so it checks a node is serving before a timed call.
   */
  async listServices(): Promise<string[]> {
    const request = ReflectionRequest.encode(ReflectionRequest.fromObject({ listServices: "" })).finish();
    const body = await this.ok("/grpc.reflection.v1.ServerReflection/ServerReflectionInfo", request);
    const reply = ReflectionResponse.toObject(ReflectionResponse.decode(body)) as { listServicesResponse?: { service?: { name: string }[] } };
    if (!reply.listServicesResponse) throw new Error("server reflection answered without a list of services");
    return (reply.listServicesResponse.service ?? []).map((s) => s.name);
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
