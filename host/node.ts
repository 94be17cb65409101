// A Keystate node: one process serving every deployed module over gRPC, with its
// state in the embedded store or Redis, and an admin/ops HTTP port.
import { randomBytes } from "node:crypto";
import { hostname, networkInterfaces } from "node:os";
// The cluster (and with it ioredis) is imported only by a node started with --redis.
import type { ClusterNode } from "./cluster/cluster-node.js";
import type { PeerServer } from "./cluster/peer-server.js";
import { parseRedisTarget } from "./journal/redis-target.js";
import { DEFAULT_CLUSTER_NAME } from "./journal/redis-keys.js";
import type { RedisStore } from "./journal/redis-store.js";
import { DEFAULT_SHARD_COUNT } from "./journal/shards.js";
import { EntityManager } from "./entities/entity-manager.js";
import type { CrdtDeltaObserver } from "./entities/replicated-observer.js";
import { REDELIVER_AFTER_MS } from "./entities/effect-runner.js";
import { Router } from "./entities/router.js";
import { ADMIN_PATHS, AdminServer } from "./ingress/admin-http.js";
import { EntityInspector } from "./inspect/entity-inspector.js";
import { EventLogSubscriptions } from "./eventing/event-log-subscriptions.js";
import { SubscriptionMetrics } from "./eventing/subscription-metrics.js";
import { TopicSubscriptions } from "./eventing/topic-subscriptions.js";
import { GrpcIngress } from "./ingress/grpc-server.js";
import { HttpJsonIngress } from "./ingress/http-json.js";
import type { IdempotencyLimits } from "./journal/types.js";
import { openStore } from "./journal/open-store.js";
import type { Store } from "./journal/types.js";
import { codeCacheUse } from "./loader-hooks.js";
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
  /**
   * Use Redis (e.g. redis://127.0.0.1:6379) instead of the embedded store, and join the
   * cluster `cluster.name` on it (a cluster of one node is a cluster too). Comma-separated
   * seed URLs with `cluster.redisCluster`.
   */
  readonly redisUrl?: string;
  readonly cluster?: ClusterOptions;
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
  /** A value or event-sourced entity idle this long with a state of at most 64 KiB is parked (compact, still resident). Default 5 s. */
  readonly entityParkAfterMs?: number;
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
  /**
   * Stored versions kept per module: a deploy removes older ones (uploads and artifacts) in
   * its own write, never the active one. Default 0: every version is kept.
   */
  readonly keepVersions?: number;
  /** How long, and how many per entity, idempotency keys are remembered. Default 24 h and 1,000. */
  readonly idempotency?: IdempotencyLimits;
}

/** On a graceful stop in a cluster, calls in flight get this long to finish. */
const DRAIN_CALLS_MS = 5000;

export interface ClusterOptions {
  /** Which Keystate cluster on that Redis to join. Default "default". */
  readonly name?: string;
  /** This node's id; default `<hostname>-<6 hex>`. A second live node with the same id refuses to start. */
  readonly nodeId?: string;
  /** host:port other nodes reach this node's gRPC port at. Default: the bound host and gRPC port. */
  readonly advertise?: string;
  /**
   * The peer link's port (host/cluster/peer-server.ts): other nodes forward unary calls to it,
   * one TCP round trip instead of an HTTP/2 one. Default 0 (any free port; it is advertised
   * through Redis). "off": no peer link; other nodes forward over the gRPC port.
   */
  readonly peerPort?: number | "off";
  /** host:port other nodes reach the peer link at. Default: the advertised host and the bound peer port. */
  readonly advertisePeer?: string;
  /** Shard lease (and heartbeat TTL) in ms. Default 5000. */
  readonly leaseMs?: number;
  /** Shards of a new cluster (fixed when it is created). Default 256. */
  readonly shardCount?: number;
  /** redisUrl lists seeds of a Redis Cluster. */
  readonly redisCluster?: boolean;
  /** How often replicated entities look for changes lost between nodes (anti-entropy), in ms. Default 1000. */
  readonly antiEntropyMs?: number;
  /** Another process took this node id (this one was paused past its heartbeat); default: log and stop serving. */
  readonly onIdTaken?: () => void;
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
  /** The cluster membership (Redis only). */
  readonly cluster: ClusterNode | undefined;
  /** The topic subscriptions this node consumes (host/eventing). */
  readonly topicSubscriptions: TopicSubscriptions;
  /** Every local change of a replicated entity, as a CRDT delta, once durable (what the cluster will replicate). */
  onCrdtDelta(observer: CrdtDeltaObserver): void;
  stop(): Promise<void>;
}

export async function startNode(config: NodeConfig = {}): Promise<KeystateNode> {
  // Milliseconds since the process started (performance's time origin): Node's own start and loading our code.
  const called = performance.now();
  const host = config.host ?? "127.0.0.1";
  const redisTarget = config.redisUrl ? parseRedisTarget(config.redisUrl, config.cluster?.redisCluster ?? false) : undefined;
  const store = await openStore({ dataDir: config.dataDir ?? "data", redis: redisTarget, idempotency: config.idempotency });
  const storeOpened = performance.now();
  const maxModuleBytes = config.maxModuleBytes ?? DEFAULT_MAX_MODULE_BYTES;
  const guestLimits = {
    maxMemoryPages: Math.max(1, Math.floor(((config.guestMemoryMb ?? DEFAULT_MAX_MEMORY_MB) * 1024 * 1024) / WASM_PAGE_BYTES)),
    fuelPerCall: config.guestFuelPerCall ?? DEFAULT_FUEL_PER_CALL,
  };
  const registry = new ModuleRegistry(store, { maxModuleBytes, guestLimits, keepVersions: config.keepVersions });
  const entities = new EntityManager(store, undefined, { memoryBudgetBytes: config.entityMemoryBudgetBytes, parkAfterMs: config.entityParkAfterMs });
  const metrics = new Metrics();
  const router = new Router(registry, entities, { outbox: store.outbox, topics: store.topics, onTimerFired: (latenessMs) => metrics.timerFired(latenessMs) });
  metrics.countModulesWith(() => registry.modules.length);
  metrics.countEntitiesWith(() => entities.activeCount);
  metrics.countParkedWith(() => entities.parkedCount);
  entities.observe(metrics.entities);
  registry.observeGuestCalls(metrics.guest);
  const grpc = new GrpcIngress(registry, router, { metrics, maxReceiveMessageBytes: config.maxRequestBytes });
  const maxBodyBytes = config.maxJsonBodyBytes ?? config.maxRequestBytes;
  const httpJson = new HttpJsonIngress(registry, router, metrics, { maxBodyBytes, reservedPaths: ADMIN_PATHS });
  const adminToken = config.insecureAdmin ? undefined : (config.adminToken ?? randomBytes(20).toString("hex"));
  let cluster: ClusterNode | undefined;
  const admin = new AdminServer(registry, store, {
    token: adminToken,
    maxModuleBytes,
    metrics,
    fallback: (req, res) => httpJson.handle(req, res),
    cluster: () => cluster,
    inspector: new EntityInspector(registry, store, entities),
  });

  // The gRPC port is bound first: the cluster advertises it. Until modules load it serves no
  // service, so nothing runs before the node owns its shards.
  const grpcPort = await grpc.listen(host, config.grpcPort ?? 8080);
  let peer: PeerServer | undefined;
  let peerAddress: string | undefined;
  try {
    if (redisTarget) {
      const options = config.cluster ?? {};
      const { ClusterNode, DEFAULT_LEASE_MS } = await import("./cluster/cluster-node.js");
      const advertise = options.advertise ?? `${advertisedHost(host)}:${grpcPort}`;
      if (options.peerPort !== "off") {
        const { PeerServer } = await import("./cluster/peer-server.js");
        peer = new PeerServer({ maxReceiveMessageBytes: grpc.maxReceiveMessageBytes, lookup: (path) => grpc.unaryMethod(path) });
        const peerPort = await peer.listen(host, options.peerPort ?? 0);
        peerAddress = options.advertisePeer ?? `${advertise.slice(0, advertise.lastIndexOf(":"))}:${peerPort}`;
      }
      cluster = await ClusterNode.start(
        {
          target: redisTarget,
          name: options.name ?? DEFAULT_CLUSTER_NAME,
          nodeId: options.nodeId ?? defaultNodeId(),
          advertise,
          peerAddress,
          leaseMs: options.leaseMs ?? DEFAULT_LEASE_MS,
          shardCount: options.shardCount ?? DEFAULT_SHARD_COUNT,
          antiEntropyMs: options.antiEntropyMs,
        },
        {
          store: store as RedisStore,
          registry,
          router,
          residents: entities,
          replicated: entities.replicated,
          metricsRegistry: metrics.registry,
          onIdTaken: options.onIdTaken ?? (() => undefined),
          beforeJoin: () => registry.loadFromStore({ lazy: config.lazyModules }),
        },
      );
    } else {
      await registry.loadFromStore({ lazy: config.lazyModules });
    }
  } catch (err) {
    grpc.forceClose();
    peer?.forceClose();
    router.close();
    entities.close();
    await store.close();
    throw err;
  }
  const modulesLoaded = performance.now();
  const httpPort = await admin.listen(host, config.httpPort ?? 8081);
  // Side effects a crashed process (or a shard's former owner) stored and did not deliver.
  const redeliver = () => void router.redeliverStoredEffects().catch((err: unknown) => log().warn({ err }, "reading the outbox failed; retrying at the next pass"));
  redeliver();
  const redelivery = setInterval(redeliver, REDELIVER_AFTER_MS);
  redelivery.unref();
  // Projections: the modules' event-log subscriptions, on the shards this node serves.
  const eventLogs = new EventLogSubscriptions({ registry, router, store, metricsRegistry: metrics.registry });
  eventLogs.start();
  // Topic subscriptions: all of them on a single node; in a cluster, those whose shard this node serves.
  const member = cluster;
  const topicSubscriptions = new TopicSubscriptions({
    topics: store.topics,
    registry,
    deliver: (service, method, payload, options) => router.call(service, method, payload, { hops: 1, ...options }),
    consumer: member?.nodeId ?? "local",
    ownership: member && { shardCount: member.layout.shardCount, serves: (shard) => member.serves(shard) },
    observers: [new SubscriptionMetrics(metrics.registry)],
  });
  topicSubscriptions.start();
  const clusterFields = cluster ? { nodeId: cluster.nodeId, cluster: cluster.config.name, advertise: cluster.config.advertise, peerAddress } : {};
  // Where the start went, for whoever waits on it (a restarted or added pod); README "Command line" says what each is.
  const startMs = {
    process: Math.round(called),
    store: Math.round(storeOpened - called),
    modules: Math.round(modulesLoaded - storeOpened),
    total: Math.round(performance.now()),
  };
  const codeCache = codeCacheUse();
  log().info({ grpcPort, httpPort, store: store.kind, ...clusterFields, modules: registry.modules.map((m) => `${m.name}@${m.version}`), startMs, ...(codeCache && { codeCache }) }, "node started");

  return {
    grpcPort,
    httpPort,
    adminToken,
    registry,
    router,
    store,
    metrics,
    cluster,
    topicSubscriptions,
    onCrdtDelta: (observer) => entities.replicated.onDelta(observer),
    async stop() {
      clearInterval(redelivery);
      // Before shards are handed off and the store closes: a batch in flight keeps its old offset.
      await eventLogs.stop();
      await topicSubscriptions.stop();
      if (cluster) {
        // Graceful: every shard handed off to the other nodes before this one goes; then calls
        // in flight (forwards to the new owners among them) finish, bounded, before the
        // server and the peer channels close. New calls are refused, so clients go elsewhere.
        await cluster.leave();
        const drained = Promise.all([grpc.close(), peer?.close()]);
        await Promise.race([drained, new Promise((resolve) => setTimeout(resolve, DRAIN_CALLS_MS).unref())]);
        await cluster.stop();
      }
      grpc.forceClose();
      peer?.forceClose();
      await admin.close();
      router.close();
      entities.close();
      await store.close();
    },
  };
}

/** `<hostname>-<6 hex>`: readable in logs, unique across restarts. */
function defaultNodeId(): string {
  return `${hostname()}-${randomBytes(3).toString("hex")}`;
}

/** The address peers reach a node bound to `host` at: a wildcard bind advertises the first external IPv4 address. */
function advertisedHost(host: string): string {
  if (host !== "0.0.0.0" && host !== "::") return host;
  for (const addresses of Object.values(networkInterfaces())) {
    const external = addresses?.find((a) => a.family === "IPv4" && !a.internal);
    if (external) return external.address;
  }
  return "127.0.0.1";
}
