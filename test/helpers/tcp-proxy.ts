// A loopback TCP relay in front of a server (Redis), so a test can cut ONE client off
// while every other client still reaches the server directly: point one Keystate node
// at `proxy.url`, the others at the real URL, then blackhole(), cut() or heal().
import { createConnection, createServer, type Server, type Socket } from "node:net";

export interface TcpProxy {
  readonly port: number;
  /** `redis://127.0.0.1:<port>` */
  readonly url: string;
  /**
   * A network partition: connections stay open, but no byte moves in either direction;
   * new connections are accepted and then hang the same way. Commands wait until the
   * client's own timeout fires.
   */
  blackhole(): void;
  /** Connection reset: every current connection gets an RST, and so does every new one. */
  cut(): void;
  /**
   * Back to relaying; new connections work. Connections held by blackhole() are reset
   * (both ends gave up during the partition) and what they held is never delivered —
   * unless `resumeHeld`: then they carry on and deliver the held bytes late, like a short
   * partition that TCP rode out (a timed-out command can still execute afterwards).
   */
  heal(options?: { readonly resumeHeld?: boolean }): void;
  /** Resets every connection and stops listening. */
  close(): Promise<void>;
}

type Mode = "relay" | "blackhole" | "cut" | "closed";

/** One client connection and, once bytes may flow, its connection to the target. */
interface Link {
  readonly client: Socket;
  upstream: Socket | undefined;
  held: boolean;
}

/** RST rather than FIN: the other end sees ECONNRESET, as when a real peer vanishes. */
function reset(socket: Socket | undefined): void {
  if (socket === undefined || socket.destroyed) return;
  try {
    socket.resetAndDestroy();
  } catch {
    socket.destroy(); // not a TCP handle any more
  }
}

export async function startTcpProxy(targetPort: number, targetHost = "127.0.0.1"): Promise<TcpProxy> {
  let mode: Mode = "relay";
  const links = new Set<Link>();

  const drop = (link: Link) => {
    links.delete(link);
    reset(link.client);
    reset(link.upstream);
  };

  // When one side closes, the other follows: at once (RST) if it went abruptly, or once
  // its own FIN has flushed if the pipe already ended it cleanly.
  const follow = (gone: Socket, link: Link) => {
    gone.on("error", () => undefined); // the close that follows does the cleanup
    gone.on("close", () => {
      const peer = gone === link.client ? link.upstream : link.client;
      if (peer !== undefined && !peer.writableEnded) reset(peer);
      if (gone === link.client) links.delete(link);
    });
  };

  // pipe() handles backpressure both ways; error listeners on both sockets (follow) keep
  // an ECONNRESET from ever crashing the test process.
  const relay = (link: Link) => {
    link.held = false;
    if (link.upstream === undefined) {
      link.upstream = createConnection({ host: targetHost, port: targetPort });
      follow(link.upstream, link);
    }
    link.client.pipe(link.upstream);
    link.upstream.pipe(link.client);
  };

  // Stop reading both sides: bytes pile up in the kernel buffers, the windows close, and
  // the senders block, as they would behind a dead link.
  const hold = (link: Link) => {
    link.held = true;
    link.client.unpipe();
    link.client.pause();
    link.upstream?.unpipe();
    link.upstream?.pause();
  };

  const server: Server = createServer((client) => {
    if (mode === "cut" || mode === "closed") {
      client.on("error", () => undefined);
      return reset(client);
    }
    const link: Link = { client, upstream: undefined, held: false };
    links.add(link);
    follow(client, link);
    if (mode === "blackhole") hold(link);
    else relay(link);
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      server.off("error", reject);
      resolve();
    });
  });
  const address = server.address();
  if (typeof address !== "object" || address === null) throw new Error("tcp proxy: no listening address");
  const port = address.port;

  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    blackhole() {
      if (mode === "closed") return;
      mode = "blackhole";
      for (const link of links) hold(link);
    },
    cut() {
      if (mode === "closed") return;
      mode = "cut";
      for (const link of [...links]) drop(link);
    },
    heal(options = {}) {
      if (mode === "closed") return;
      mode = "relay";
      for (const link of [...links]) {
        if (!link.held) continue;
        if (options.resumeHeld === true) relay(link);
        else drop(link);
      }
    },
    close() {
      mode = "closed";
      for (const link of [...links]) drop(link);
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}
