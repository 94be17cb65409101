// The server half of the bare hop baseline (lib/bare-hop.ts): plain node:http2, no gRPC
// library, no routing, no state. Every POST stream gets a gRPC-shaped unary reply (200,
// application/grpc, the request body echoed as the message, trailer grpc-status 0), so a
// round trip to it is the least an HTTP/2 gRPC hop between two Node processes can cost.
// Prints {"ready":true,"port":N} once listening (lib/child-server.ts waits for it).
import http2 from "node:http2";

const server = http2.createServer();
server.on("stream", (stream) => {
  const chunks: Buffer[] = [];
  stream.on("data", (chunk: Buffer) => chunks.push(chunk));
  stream.on("end", () => {
    // waitForTrailers: the trailers go in their own HEADERS frame after the data, as a gRPC server sends them.
    stream.respond({ ":status": 200, "content-type": "application/grpc" }, { waitForTrailers: true });
    stream.once("wantTrailers", () => stream.sendTrailers({ "grpc-status": "0" }));
    stream.end(Buffer.concat(chunks));
  });
  stream.on("error", () => undefined); // a reset stream is the client's business
});
server.listen(0, "127.0.0.1", () => {
  const address = server.address();
  if (typeof address !== "object" || !address) throw new Error("no port");
  process.stdout.write(JSON.stringify({ ready: true, port: address.port }) + "\n");
});
