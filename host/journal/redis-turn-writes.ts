// Sends the commands a single-Redis connection is given in one turn of the event loop in
// ONE socket write. Each entity already commits its batch in one command (mailbox.ts), but a
// node runs several entities' batches in a turn (mailbox.ts starts the busy ones together),
// and each command was its own write(2) and, on the Redis side, its own read and often its
// own fsync. The first command of a turn corks the socket; the end of the turn (nextTick,
// which runs after the turn's promise callbacks too) uncorks it, and Node hands everything
// to the kernel in one writev. Redis reads them together and, with appendfsync always,
// fsyncs once for the lot; their replies come back in one read.
//
// Measured (2026-12-06, counter on Redis with appendfsync always, 8 keys, 64 in flight over
// gRPC, `bench/profile/e2e-grpc.ts 8 always keystate`, this tree and the one before
// alternating, 3 rounds): ~2.4 commands per write; node CPU per call 74.1-76.9 -> 72.0-74.8
// us, 12.9-13.4k -> 13.2-13.8k calls/s. Uncorking at setImmediate instead held the writes
// for one more event-loop pass and cost more than it saved (~83 us per call).
//
// Not ioredis's auto-pipelining: that builds a Pipeline object (own promises, copies of
// each command) per tick, which cost more CPU than it saved (redis-store.ts). Corking is
// a counter on the socket. Order is untouched (one socket, one byte stream), a command
// still times out by the connection's command timeout, and nothing is held past the turn.
import type { Redis } from "ioredis";

type Socket = Redis["stream"];

/** Wraps `redis.sendCommand` so that the commands of one turn leave in one write. */
export function coalesceTurnWrites(redis: Redis): void {
  let corked: Socket | undefined;
  const release = (): void => {
    const socket = corked;
    corked = undefined;
    // A socket closed meanwhile drops what it held; ioredis fails those commands as before.
    socket?.uncork();
  };
  const send = redis.sendCommand.bind(redis);
  redis.sendCommand = (command, stream) => {
    if (corked === undefined && stream === undefined) {
      const socket = redis.stream;
      if (socket !== undefined && socket !== null && redis.status === "ready" && socket.writable) {
        socket.cork();
        corked = socket;
        process.nextTick(release);
      }
    }
    return send(command, stream);
  };
}
