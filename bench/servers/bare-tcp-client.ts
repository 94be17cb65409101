// The client half of the bare TCP hop baseline (lib/bare-hop.ts): one node:net connection to
// bare-tcp-echo.ts, one length-prefixed request at a time, each timed in this process from the
// write to the whole echo's arrival (when Keystate's peer link settles a call). A process of
// its own, so it can be pinned like the node that forwards; the bench process sends
// {calls: N} over the IPC channel and gets {ns: [...]}.
// Usage: bare-tcp-client.ts <port> <path (unused: the frame carries only the body)> <request body, hex>
import net from "node:net";
import { serveTimedCalls } from "./timed-client.js";

const [port, , bodyHex] = process.argv.slice(2);
if (!port || !bodyHex) throw new Error("usage: bare-tcp-client.ts <port> <path> <body hex>");
const body = Buffer.from(bodyHex, "hex");
const frame = Buffer.alloc(4 + body.length);
frame.writeUInt32LE(body.length, 0);
body.copy(frame, 4);
const socket = net.connect({ port: Number(port), host: "127.0.0.1", noDelay: true });
socket.on("error", (err) => {
  process.stderr.write(`bare-tcp-client: socket error: ${err.message}\n`);
  process.exit(1);
});

let waiting: (() => void) | undefined;
let received = 0;
socket.on("data", (chunk: Buffer) => {
  received += chunk.length;
  // Check every reply's size, so a broken echo cannot pass for a fast one.
  if (received > frame.length) {
    process.stderr.write(`bare-tcp-client: ${received} bytes for a ${frame.length}-byte frame\n`);
    process.exit(1);
  }
  if (received === frame.length) {
    received = 0;
    const done = waiting;
    waiting = undefined;
    done?.();
  }
});

function call(): Promise<void> {
  return new Promise((resolve) => {
    waiting = resolve;
    socket.write(frame);
  });
}

serveTimedCalls("bare-tcp-client", call, () => socket.destroy());

await new Promise((resolve) => socket.once("connect", resolve));
await call(); // one round trip done before the parent times anything
process.send!({ ready: true });
