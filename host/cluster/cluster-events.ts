// Notices between the nodes of one cluster, on one Redis pub/sub channel: a node joined,
// is leaving, released a shard (its target acquires at once instead of at its next
// round), or changed a module (every node loads the new version now). Notices only make
// things faster: every node also polls, so a missed notice costs seconds, not correctness.
// Pub/sub needs its own connection (a subscribed connection takes no other commands).
import type { RedisClient } from "../journal/redis-connection.js";
import { log } from "../log.js";

export type ClusterNotice =
  | { readonly type: "joined" | "leaving" | "released"; readonly from: string }
  | { readonly type: "module"; readonly from: string; readonly name: string };

export class ClusterEvents {
  readonly #publisher: RedisClient;
  readonly #subscriber: RedisClient;
  readonly #channel: string;

  constructor(publisher: RedisClient, subscriber: RedisClient, channel: string) {
    this.#publisher = publisher;
    this.#subscriber = subscriber;
    this.#channel = channel;
  }

  async listen(onNotice: (notice: ClusterNotice) => void): Promise<void> {
    this.#subscriber.on("message", (channel: string, message: string) => {
      if (channel !== this.#channel) return;
      let notice: ClusterNotice;
      try {
        notice = JSON.parse(message) as ClusterNotice;
      } catch {
        return;
      }
      onNotice(notice);
    });
    await this.#subscriber.subscribe(this.#channel);
  }

  /** Best effort: a lost notice is made up for by polling. */
  publish(notice: ClusterNotice): void {
    this.#publisher.publish(this.#channel, JSON.stringify(notice)).catch((err: unknown) => {
      log().debug({ err, notice: notice.type }, "cluster notice not published");
    });
  }
}
