// Unary calls through @grpc/grpc-js (the library a typical Node caller, and Keystate's own
// forwarder, uses): one channel, request and reply bytes passed through as they are (the
// payloads are encoded by lib/workloads.ts), for timing calls one after another.
import * as grpc from "@grpc/grpc-js";

const passthrough = (value: Buffer): Buffer => value;

export class GrpcJsUnary {
  readonly #client: grpc.Client;

  constructor(port: number) {
    this.#client = new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure(), { "grpc.enable_channelz": 0 });
  }

  /** Resolves once the channel is connected, so the first timed call does not include connection set-up. */
  ready(timeoutMs = 10_000): Promise<void> {
    return new Promise((resolve, reject) => this.#client.waitForReady(Date.now() + timeoutMs, (err) => (err ? reject(err) : resolve())));
  }

  /** One unary call; rejects on any status other than OK. */
  call(path: string, message: Uint8Array, timeoutMs = 10_000): Promise<Buffer> {
    const request = Buffer.from(message.buffer, message.byteOffset, message.byteLength);
    return new Promise((resolve, reject) => {
      this.#client.makeUnaryRequest(path, passthrough, passthrough, request, new grpc.Metadata(), { deadline: Date.now() + timeoutMs }, (err, reply) => {
        if (err) reject(new Error(`${path} answered ${grpc.status[err.code] ?? err.code}: ${err.details}`));
        else resolve(reply ?? Buffer.alloc(0));
      });
    });
  }

  close(): void {
    this.#client.close();
  }
}
