// Writes frames to a peer link's socket, coalescing every frame written in one tick of the
// event loop into one write: a node under load answers and forwards many calls per turn,
// and one syscall (and one TCP segment) for them all is cheaper than one each.
import type { Socket } from "node:net";

export class FrameWriter {
  readonly #socket: Socket;
  #corked = false;

  constructor(socket: Socket) {
    this.#socket = socket;
  }

  write(frame: Buffer): void {
    const socket = this.#socket;
    if (socket.destroyed) return;
    if (!this.#corked) {
      this.#corked = true;
      socket.cork();
      process.nextTick(() => {
        this.#corked = false;
        socket.uncork();
      });
    }
    socket.write(frame);
  }
}
