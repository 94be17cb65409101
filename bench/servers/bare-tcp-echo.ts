// The server half of the bare TCP hop baseline (lib/bare-hop.ts): plain node:net, no
// framing library, no routing, no state. Each length-prefixed frame (u32 LE length, then the
// bytes) is echoed back as it came, so a round trip to it is the least one request/reply over
// a TCP connection between two Node processes can cost: the floor of the peer link's hop.
// Prints {"ready":true,"port":N} once listening (lib/child-server.ts waits for it).
import net from "node:net";

const server = net.createServer((socket) => {
  socket.setNoDelay(true);
  let pending: Buffer = Buffer.alloc(0);
  socket.on("data", (chunk: Buffer) => {
    pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
    while (pending.length >= 4 && pending.length >= 4 + pending.readUInt32LE(0)) {
      const end = 4 + pending.readUInt32LE(0);
      socket.write(pending.subarray(0, end));
      pending = pending.subarray(end);
    }
  });
  socket.on("error", () => undefined); // a dropped client is the client's business
});
server.listen(0, "127.0.0.1", () => {
  const address = server.address();
  if (typeof address !== "object" || !address) throw new Error("no port");
  process.stdout.write(JSON.stringify({ ready: true, port: address.port }) + "\n");
});
