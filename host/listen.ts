// Binds a server (node:net, node:http or node:http2: all net.Server) and resolves with the
// port it got, so port 0 ("any free port") can be advertised; a bind error rejects.
import type { Server } from "node:net";

export function listenOn(server: Server, host: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      const address = server.address();
      resolve(typeof address === "object" && address !== null ? address.port : port);
    });
  });
}
