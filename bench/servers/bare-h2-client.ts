// The client half of the bare hop baseline (lib/bare-hop.ts): one node:http2 session to
// bare-h2-echo.ts, unary gRPC-shaped calls one at a time, each timed in this process from
// request() to the stream's close (when Keystate's forwarding channel, host/grpc-http2/
// channel.ts, settles a call). A process of its own, so it can be pinned like the node that
// forwards; the bench process sends {calls: N} over the IPC channel and gets {ns: [...]}.
// Usage: bare-h2-client.ts <port> <path> <request body, hex, gRPC-framed>
import http2 from "node:http2";
import { serveTimedCalls } from "./timed-client.js";

const [port, path, bodyHex] = process.argv.slice(2);
if (!port || !path || !bodyHex) throw new Error("usage: bare-h2-client.ts <port> <path> <body hex>");
const body = Buffer.from(bodyHex, "hex");
// The same session option as Keystate's channel, so the two differ only in what runs around the call.
const session = http2.connect(`http://127.0.0.1:${port}`, { maxSessionMemory: Number.MAX_SAFE_INTEGER });
session.on("error", (err) => {
  process.stderr.write(`bare-h2-client: session error: ${err.message}\n`);
  process.exit(1);
});

function call(): Promise<void> {
  return new Promise((resolve, reject) => {
    const stream = session.request({ ":method": "POST", ":path": path!, "content-type": "application/grpc", te: "trailers" });
    let received = 0;
    let status: string | undefined;
    stream.on("data", (chunk: Buffer) => (received += chunk.length));
    stream.once("trailers", (trailers) => (status = String(trailers["grpc-status"])));
    stream.on("error", reject);
    stream.once("close", () => {
      // Check every reply, so a broken echo cannot pass for a fast one.
      if (status === "0" && received === body.length) resolve();
      else reject(new Error(`bad reply: grpc-status ${status}, ${received} of ${body.length} bytes`));
    });
    stream.end(body);
  });
}

serveTimedCalls("bare-h2-client", call, () => session.close());

await call(); // connection set up and one round trip done before the parent times anything
process.send!({ ready: true });
