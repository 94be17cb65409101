// The systems the end-to-end throughput rows compare, each started the same way and
// loaded by the same h2load configuration: Keystate (the real CLI, durable on Redis),
// a bare grpc-js server, FaaS + CRUD on the same Redis, and Restate.
import { startChildServer } from "../lib/child-server.js";
import { GrpcClient, grpcFrame } from "../lib/grpc-client.js";
import { GRPC_HEADERS, type LoadTarget } from "../lib/h2load.js";
import { tempDir } from "../lib/inproc.js";
import { startServe } from "../lib/node-process.js";
import { tsNodeArgs } from "../lib/paths.js";
import type { Pinning } from "../lib/pinning.js";
import { REDIS_DURABILITY } from "../lib/redis.js";
import { grpcPath, type Workload } from "../lib/workloads.js";
import { RESTATE_DURABILITY, startRestate } from "../peers/restate.js";

export interface RunningSystem {
  target(keys: readonly string[]): LoadTarget;
  /** Writes applied so far on these keys (undefined: the system keeps no state). */
  applied(keys: readonly string[]): Promise<number | undefined>;
  stop(): Promise<void>;
}

export interface SystemSpec {
  readonly name: string;
  readonly durability: string;
  /** Set when the system is not run, with the reason. */
  readonly skip?: string;
  start(): Promise<RunningSystem>;
}

function grpcSystem(port: number, workload: Workload, stop: () => Promise<void>, stateful: boolean): RunningSystem {
  const client = new GrpcClient(port);
  return {
    target: (keys) => ({
      requests: keys.map((key) => ({ url: `http://127.0.0.1:${port}${grpcPath(workload, workload.writeMethod)}`, body: grpcFrame(workload.writePayload(key)) })),
      headers: GRPC_HEADERS,
    }),
    async applied(keys) {
      if (!stateful) return undefined;
      let total = 0;
      for (const key of keys) total += workload.applied(await client.ok(grpcPath(workload, workload.readMethod), workload.readPayload(key)));
      return total;
    },
    async stop() {
      client.close();
      await stop();
    },
  };
}

export function systems(workload: Workload, wasmFile: string, redisUrl: string, pin: Pinning, restateSkip: string | undefined, redisDurability = REDIS_DURABILITY): SystemSpec[] {
  return [
    {
      name: `Keystate (${workload.module} module, \`keystate serve --redis\`)`,
      durability: `state in ${redisDurability}; reply after the write is acknowledged`,
      async start() {
        const dir = await tempDir("serve");
        const serve = await startServe({ dataDir: dir.path, redisUrl, deploy: [wasmFile], readyMessage: "deployed", prefix: pin.server });
        return grpcSystem(serve.grpcPort, workload, async () => {
          await serve.stop();
          await dir.remove();
        }, true);
      },
    },
    {
      name: "baseline (a): bare grpc-js passthrough",
      durability: "none (no state, fixed reply)",
      async start() {
        const server = await startChildServer([...pin.server, process.execPath, ...tsNodeArgs("servers/grpc-passthrough.ts", workload.module)]);
        return grpcSystem(server.port, workload, server.stop, false);
      },
    },
    {
      name: "baseline (b): FaaS + CRUD (grpc-js + Redis GET, compare-and-set Lua, retry)",
      durability: redisDurability,
      async start() {
        const server = await startChildServer([...pin.server, process.execPath, ...tsNodeArgs("servers/faas-crud.ts", workload.module, redisUrl)]);
        return grpcSystem(server.port, workload, server.stop, true);
      },
    },
    {
      name: "baseline (c): Restate virtual-object counter (TS SDK)",
      durability: RESTATE_DURABILITY,
      ...(restateSkip ? { skip: restateSkip } : {}),
      async start() {
        const restate = await startRestate("throughput", pin.server);
        const base = `http://127.0.0.1:${restate.ingressPort}/counter`;
        return {
          target: (keys) => ({ requests: keys.map((key) => ({ url: `${base}/${key}/add`, body: new TextEncoder().encode("1") })), headers: ["content-type: application/json"] }),
          async applied(keys) {
            let total = 0;
            for (const key of keys) total += Number(await (await fetch(`${base}/${key}/get`, { method: "POST" })).text());
            return total;
          },
          stop: restate.stop,
        };
      },
    },
  ];
}
