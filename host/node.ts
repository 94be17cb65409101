// A Keystate node: one process serving every deployed module over gRPC, with its
// state in the embedded store or Redis, and an admin/ops HTTP port.
import { randomBytes } from "node:crypto";
import { EntityManager } from "./entities/entity-manager.js";
import type { CrdtDeltaObserver } from "./entities/replicated-observer.js";
import { Router } from "./entities/router.js";
import { ADMIN_PATHS, AdminServer } from "./ingress/admin-http.js";
import { GrpcIngress } from "./ingress/grpc-server.js";
import { HttpJsonIngress } from "./ingress/http-json.js";
import { openStore } from "./journal/open-store.js";
import type { Store } from "./journal/types.js";
import { log } from "./log.js";
import { Metrics } from "./metrics.js";
import { DEFAULT_MAX_MODULE_BYTES, ModuleRegistry } from "./runtime/module-registry.js";
import { DEFAULT_FUEL_PER_CALL, DEFAULT_MAX_MEMORY_MB, WASM_PAGE_BYTES } from "./runtime/guest-limits.js";

export interface NodeConfig {
  /** Interface both ports bind to. Default 127.0.0.1. */
  readonly host?: string;
  /** gRPC ingress port; 0 picks a free one. Default 8080. */
  readonly grpcPort?: number;
  /** Admin / operations HTTP port; 0 picks a free one. Default 8081. */
  readonly httpPort?: number;
  /** Embedded store directory. Default ./data. Ignored with `redisUrl`. */
  readonly dataDir?: string;
  /** Use Redis (e.g. redis://127.0.0.1:6379) instead of the embedded store. */
  readonly redisUrl?: string;
  /** Admin bearer token; generated when absent unless `insecureAdmin`. */
  readonly adminToken?: string;
  /** Serve the admin API without a token (local development only). */
  readonly insecureAdmin?: boolean;
  readonly maxModuleBytes?: number;
  /** Every guest memory's maximum, in MiB (default 32). */
  readonly guestMemoryMb?: number;
  /** Fuel units a command may use unless its module sets its own (default 10,000,000). */
  readonly guestFuelPerCall?: number;
  /** Bytes resident entities may hold (state + fixed overhead each) before the least recently used idle ones are passivated. Default 256 MiB. */
  readonly entityMemoryBudgetBytes?: number;
  /** Largest HTTP/JSON request body, in bytes. Default: maxRequestBytes. */
  readonly maxJsonBodyBytes?: number;
  /** Largest request on either ingress (gRPC message, HTTP/JSON body), in bytes. Default 4 MiB. */
  readonly maxRequestBytes?: number;
  /**
   * Serve stored modules at start-up without compiling them; each is compiled and
   * instantiated on its first call. Start-up no longer grows with the number of modules,
   * and a module nobody calls costs no compiled code. Default false.
   */
  readonly lazyModules?: boolean;
}

export interface KeystateNode {
  readonly grpcPort: number;
  readonly httpPort: number;
  /** The admin token in force (undefined when the admin API is insecure). */
  readonly adminToken: string | undefined;
  readonly registry: ModuleRegistry;
  readonly router: Router;
  readonly store: Store;
  readonly metrics: Metrics;
  /** Every local change of a replicated entity, as a CRDT delta, once durable (what the cluster will replicate). */
  onCrdtDelta(observer: CrdtDeltaObserver): void;
  stop(): Promise<void>;
}

export async function startNode(config: NodeConfig = {}): Promise<KeystateNode> {
  const host = config.host ?? "127.0.0.1";
  const store = await openStore({ dataDir: config.dataDir ?? "data", redisUrl: config.redisUrl });
  const maxModuleBytes = config.maxModuleBytes ?? DEFAULT_MAX_MODULE_BYTES;
  const guestLimits = {
    maxMemoryPages: Math.max(1, Math.floor(((config.guestMemoryMb ?? DEFAULT_MAX_MEMORY_MB) * 1024 * 1024) / WASM_PAGE_BYTES)),
    fuelPerCall: config.guestFuelPerCall ?? DEFAULT_FUEL_PER_CALL,
  };
  const registry = new ModuleRegistry(store, { maxModuleBytes, guestLimits });
  const entities = new EntityManager(store, undefined, { memoryBudgetBytes: config.entityMemoryBudgetBytes });
  const router = new Router(registry, entities);
  const metrics = new Metrics();
  metrics.countModulesWith(() => registry.modules.length);
  metrics.countEntitiesWith(() => entities.activeCount);
  entities.observe(metrics.entities);
  registry.observeGuestCalls(metrics.guest);
  const grpc = new GrpcIngress(registry, router, { metrics, maxReceiveMessageBytes: config.maxRequestBytes });
  const maxBodyBytes = config.maxJsonBodyBytes ?? config.maxRequestBytes;
  const httpJson = new HttpJsonIngress(registry, router, metrics, { maxBodyBytes, reservedPaths: ADMIN_PATHS });
  const adminToken = config.insecureAdmin ? undefined : (config.adminToken ?? randomBytes(20).toString("hex"));
  const admin = new AdminServer(registry, store, { token: adminToken, maxModuleBytes, metrics, fallback: (req, res) => httpJson.handle(req, res) });

  await registry.loadFromStore({ lazy: config.lazyModules });
  const grpcPort = await grpc.listen(host, config.grpcPort ?? 8080);
  const httpPort = await admin.listen(host, config.httpPort ?? 8081);
  log().info({ grpcPort, httpPort, store: store.kind, modules: registry.modules.map((m) => `${m.name}@${m.version}`) }, "node started");

  return {
    grpcPort,
    httpPort,
    adminToken,
    registry,
    router,
    store,
    metrics,
    onCrdtDelta: (observer) => entities.replicated.onDelta(observer),
    async stop() {
      grpc.forceClose();
      await admin.close();
      router.close();
      entities.close();
      await store.close();
    },
  };
}
