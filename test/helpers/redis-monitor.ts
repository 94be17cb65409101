// Records what a real Redis executes (MONITOR) for the shards of one Keystate cluster, and
// replays it into the history of every shard's lease and every entity write that Redis
// stored. MONITOR shows each EVAL/EVALSHA followed by the commands its Lua ran ("lua"
// source), in execution order, so the replay sees exactly what each script wrote: which
// lease epoch and owner were in force, until when, and under which epoch the writer wrote.
import { Redis } from "ioredis";

/** One EVAL/EVALSHA (or plain command) on a shard key, with the commands its script ran. */
interface Group {
  readonly timeMs: number;
  readonly args: string[];
  readonly inner: string[][];
}

export interface LeaseState {
  epoch: number;
  owner: string;
  /** Redis-time ms the lease runs to (0: released). */
  until: number;
}

/** An entity write Redis stored (its script wrote to an entity key). */
export interface StoredWrite {
  readonly shard: number;
  /** Redis time of the script, ms. */
  readonly timeMs: number;
  /** The script's keys (the entity's keys, then the shard's lease). */
  readonly keys: readonly string[];
  /** The epoch the writer passed (ARGV[1] of every entity write script). */
  readonly epoch: string;
  /** The lease when the script ran. */
  readonly lease: Readonly<LeaseState>;
  /** The commands that wrote: XADD on the journal, HSET/HDEL on a value or snapshot. */
  readonly writes: string[][];
}

/** An entity write script that wrote nothing while the writer's epoch was not the live lease (a fencing refusal). */
export interface FencedWrite {
  readonly shard: number;
  readonly timeMs: number;
  readonly keys: readonly string[];
  readonly epoch: string;
  readonly lease: Readonly<LeaseState>;
}

export interface Acquisition {
  readonly shard: number;
  readonly timeMs: number;
  readonly owner: string;
  readonly epoch: number;
  /** The lease's until just before (the acquire script only takes an expired or free lease). */
  readonly previousUntil: number;
  readonly previousOwner: string;
}

export interface ShardHistory {
  readonly acquisitions: Acquisition[];
  readonly stored: StoredWrite[];
  readonly fenced: FencedWrite[];
  /** Epoch -> the node that acquired it, per shard. */
  readonly epochOwner: Map<number, Map<number, string>>;
}

export interface RedisMonitor {
  /** Waits until every command sent before this call has reached the recorder. */
  flush(): Promise<void>;
  history(): ShardHistory;
  close(): void;
}

/** "1796399939.435695" -> whole ms, as Lua's TIME-based now is computed. */
function monitorMs(time: string): number {
  const [sec, usec = "0"] = time.split(".");
  return Number(sec) * 1000 + Math.floor(Number(usec.padEnd(6, "0")) / 1000);
}

const WRITES = new Set(["xadd", "hset", "hdel", "del", "hincrby", "set", "xtrim", "xdel"]);

export async function monitorCluster(url: string, cluster: string): Promise<RedisMonitor> {
  const tag = `ks:{s:${cluster}:`;
  const shardOfKey = (key: string): number | undefined => {
    if (!key.startsWith(tag)) return undefined;
    const end = key.indexOf("}", tag.length);
    return end < 0 ? undefined : Number(key.slice(tag.length, end));
  };
  const groups: Group[] = [];
  let current: Group | undefined;
  const marker = `monitor-flush-${process.pid}-`;
  let flushes = 0;
  const seenFlush = new Set<string>();

  const connection = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0 });
  connection.on("error", () => undefined);
  const monitor = await connection.monitor();
  monitor.on("error", () => undefined);
  monitor.on("monitor", (time: string, args: string[], source: string) => {
    if (source === "lua") {
      current?.inner.push(args);
      return;
    }
    current = undefined;
    if (args[0]?.toLowerCase() === "echo" && args[1]?.startsWith(marker)) {
      seenFlush.add(args[1]);
      return;
    }
    if (args.some((a) => typeof a === "string" && a.startsWith(tag))) {
      current = { timeMs: monitorMs(time), args, inner: [] };
      groups.push(current);
    }
  });
  const probe = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0 });
  probe.on("error", () => undefined);
  await probe.connect();

  return {
    async flush() {
      const token = `${marker}${++flushes}`;
      await probe.echo(token);
      const deadline = Date.now() + 10_000;
      while (!seenFlush.has(token)) {
        if (Date.now() > deadline) throw new Error("MONITOR did not deliver the flush marker within 10 s");
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    },
    history() {
      const leases = new Map<number, LeaseState>();
      const leaseOf = (shard: number) => {
        let lease = leases.get(shard);
        if (!lease) leases.set(shard, (lease = { epoch: 0, owner: "", until: 0 }));
        return lease;
      };
      const result: ShardHistory = { acquisitions: [], stored: [], fenced: [], epochOwner: new Map() };
      for (const group of groups) {
        const command = group.args[0]!.toLowerCase();
        if (command !== "eval" && command !== "evalsha") continue;
        const numKeys = Number(group.args[2]);
        const keys = group.args.slice(3, 3 + numKeys);
        const argv = group.args.slice(3 + numKeys);
        const shard = keys.map(shardOfKey).find((s) => s !== undefined);
        if (shard === undefined) continue;
        const lease = leaseOf(shard);
        const leaseKey = `${tag}${shard}}:lease`;
        const before = { ...lease };
        const entityWrites: string[][] = [];
        let acquired = false;
        for (const inner of group.inner) {
          const op = inner[0]!.toLowerCase();
          const key = inner[1] ?? "";
          if (key === leaseKey) {
            if (op === "hincrby" && inner[2] === "epoch") {
              lease.epoch += Number(inner[3]);
              acquired = true;
            } else if (op === "hset") {
              for (let i = 2; i + 1 < inner.length; i += 2) {
                if (inner[i] === "owner") lease.owner = inner[i + 1]!;
                else if (inner[i] === "until") lease.until = Number(inner[i + 1]);
                else if (inner[i] === "epoch") lease.epoch = Number(inner[i + 1]);
              }
            }
          } else if (WRITES.has(op) && shardOfKey(key) === shard) {
            entityWrites.push(inner);
          }
        }
        if (acquired) {
          result.acquisitions.push({ shard, timeMs: group.timeMs, owner: lease.owner, epoch: lease.epoch, previousUntil: before.until, previousOwner: before.owner });
          let owners = result.epochOwner.get(shard);
          if (!owners) result.epochOwner.set(shard, (owners = new Map()));
          owners.set(lease.epoch, lease.owner);
        }
        // Entity write scripts carry their keys first and the lease last, the epoch as ARGV[1].
        const isEntityWrite = keys.length >= 2 && keys[keys.length - 1] === leaseKey && keys[0] !== leaseKey;
        if (!isEntityWrite) continue;
        const epoch = argv[0] ?? "";
        if (entityWrites.length > 0) {
          result.stored.push({ shard, timeMs: group.timeMs, keys, epoch, lease: { ...lease }, writes: entityWrites });
        } else if (epoch !== String(lease.epoch) || lease.until <= group.timeMs) {
          // (<=: Lua's now is read a few microseconds after MONITOR stamps the command.)
          result.fenced.push({ shard, timeMs: group.timeMs, keys, epoch, lease: { ...lease } });
        }
      }
      return result;
    },
    close() {
      monitor.disconnect();
      connection.disconnect();
      probe.disconnect();
    },
  };
}
