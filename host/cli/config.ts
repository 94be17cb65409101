// Settings for `keystate serve`: each option comes from its flag, else its environment
// variable, else the default. The table is the single source for --help and the README.
export interface SettingSpec {
  readonly flag: string;
  readonly env: string;
  readonly kind: "string" | "number" | "boolean";
  readonly defaultValue?: string;
  readonly help: string;
}

export const SERVE_SETTINGS = {
  host: { flag: "host", env: "KEYSTATE_HOST", kind: "string", defaultValue: "127.0.0.1", help: "interface the gRPC and admin ports bind to" },
  grpcPort: { flag: "grpc-port", env: "KEYSTATE_GRPC_PORT", kind: "number", defaultValue: "8080", help: "gRPC ingress port (0 = any free port)" },
  httpPort: { flag: "http-port", env: "KEYSTATE_HTTP_PORT", kind: "number", defaultValue: "8081", help: "admin and operations HTTP port (0 = any free port)" },
  data: { flag: "data", env: "KEYSTATE_DATA", kind: "string", defaultValue: "./data", help: "directory of the embedded store (and the generated admin token)" },
  redis: { flag: "redis", env: "KEYSTATE_REDIS_URL", kind: "string", help: "use Redis at this URL (redis://host:port) instead of the embedded store, and join a cluster on it" },
  redisCluster: { flag: "redis-cluster", env: "KEYSTATE_REDIS_CLUSTER", kind: "boolean", help: "--redis lists seeds (comma-separated) of a Redis Cluster" },
  cluster: { flag: "cluster", env: "KEYSTATE_CLUSTER", kind: "string", defaultValue: "default", help: "name of the Keystate cluster to join on that Redis" },
  nodeId: { flag: "node-id", env: "KEYSTATE_NODE_ID", kind: "string", help: "this node's id in the cluster (default: <hostname>-<6 hex>, printed at start)" },
  advertise: { flag: "advertise", env: "KEYSTATE_ADVERTISE", kind: "string", help: "host:port other nodes reach this node's gRPC port at (default: the bound host and gRPC port)" },
  peerPort: { flag: "peer-port", env: "KEYSTATE_PEER_PORT", kind: "string", defaultValue: "0", help: "cluster only: the peer link port, where other nodes send the calls they forward here (0 = any free port, advertised through Redis; off = they use the gRPC port)" },
  advertisePeer: { flag: "advertise-peer", env: "KEYSTATE_ADVERTISE_PEER", kind: "string", help: "host:port other nodes reach this node's peer link at (default: the --advertise host and the bound peer port)" },
  leaseMs: { flag: "lease-ms", env: "KEYSTATE_LEASE_MS", kind: "number", defaultValue: "5000", help: "shard lease and heartbeat TTL in ms: a crashed node's shards move after about this long" },
  antiEntropyMs: { flag: "anti-entropy-ms", env: "KEYSTATE_ANTI_ENTROPY_MS", kind: "number", defaultValue: "1000", help: "how often replicated (CRDT) entities look for changes lost between nodes and pull them, in ms" },
  shardCount: { flag: "shard-count", env: "KEYSTATE_SHARD_COUNT", kind: "number", defaultValue: "256", help: "shards of a new cluster (fixed at creation; a node with another count refuses to join)" },
  adminToken: { flag: "admin-token", env: "KEYSTATE_ADMIN_TOKEN", kind: "string", help: "bearer token the admin API requires (generated and printed when unset)" },
  insecureAdmin: { flag: "insecure-admin", env: "KEYSTATE_INSECURE_ADMIN", kind: "boolean", help: "serve the admin API without a token (local development only)" },
  maxModuleSize: { flag: "max-module-size", env: "KEYSTATE_MAX_MODULE_SIZE", kind: "number", defaultValue: String(16 * 1024 * 1024), help: "largest accepted module upload, in bytes" },
  maxRequestSize: { flag: "max-request-size", env: "KEYSTATE_MAX_REQUEST_SIZE", kind: "number", defaultValue: String(4 * 1024 * 1024), help: "largest gRPC message or HTTP/JSON body accepted, in bytes" },
  entityMemoryBudget: { flag: "entity-memory-budget", env: "KEYSTATE_ENTITY_MEMORY_BUDGET", kind: "number", defaultValue: String(256 * 1024 * 1024), help: "bytes resident entities may hold; the idle ones used least recently (approximately) leave first" },
  parkAfterMs: { flag: "park-after-ms", env: "KEYSTATE_PARK_AFTER_MS", kind: "number", defaultValue: "5000", help: "a value or event-sourced entity idle this long whose state is at most 64 KiB is kept in compact form (still resident, ~50 B less), in ms; 0 = as soon as the idle sweep sees it idle" },
  guestMemoryMb: { flag: "guest-memory-mb", env: "KEYSTATE_GUEST_MEMORY_MB", kind: "number", defaultValue: "32", help: "maximum linear memory of every guest instance, in MiB" },
  guestFuel: { flag: "guest-fuel", env: "KEYSTATE_GUEST_FUEL", kind: "number", defaultValue: "10000000", help: "CPU budget of one command in fuel units (calls + loop iterations), unless its module sets one" },
  keepVersions: { flag: "keep-versions", env: "KEYSTATE_KEEP_VERSIONS", kind: "number", defaultValue: "0", help: "stored versions kept per module: a deploy removes older ones (upload and artifacts), never the active one; 0 = keep every version" },
  lazyModules: { flag: "lazy-modules", env: "KEYSTATE_LAZY_MODULES", kind: "boolean", help: "at start-up serve stored modules without compiling them; each compiles on its first call (scale from zero)" },
  idempotencyWindowMs: { flag: "idempotency-window-ms", env: "KEYSTATE_IDEMPOTENCY_WINDOW_MS", kind: "number", defaultValue: String(24 * 60 * 60 * 1000), help: "how long a reply stored under an idempotency key answers retries with that key, in ms" },
  idempotencyKeysPerEntity: { flag: "idempotency-keys-per-entity", env: "KEYSTATE_IDEMPOTENCY_KEYS_PER_ENTITY", kind: "number", defaultValue: "1000", help: "idempotency keys remembered per entity (the oldest are forgotten first)" },
  logLevel: { flag: "log-level", env: "KEYSTATE_LOG_LEVEL", kind: "string", defaultValue: "info", help: "log level: trace, debug, info, warn, error" },
} as const satisfies Record<string, SettingSpec>;

export type SettingName = keyof typeof SERVE_SETTINGS;

/** Flag value, else environment variable, else default. Throws on a bad number. */
export function resolveSetting(name: SettingName, flags: Record<string, unknown>, env: NodeJS.ProcessEnv): string | undefined {
  const spec: SettingSpec = SERVE_SETTINGS[name];
  const fromFlag = flags[spec.flag];
  if (fromFlag !== undefined) return String(fromFlag);
  return env[spec.env] ?? spec.defaultValue;
}

export function numberSetting(name: SettingName, flags: Record<string, unknown>, env: NodeJS.ProcessEnv): number {
  const raw = resolveSetting(name, flags, env);
  const value = Number(raw);
  if (raw === undefined || !Number.isInteger(value) || value < 0) {
    const spec: SettingSpec = SERVE_SETTINGS[name];
    throw new Error(`--${spec.flag} / ${spec.env} must be a whole number >= 0, got "${raw}"`);
  }
  return value;
}

export function booleanSetting(name: SettingName, flags: Record<string, unknown>, env: NodeJS.ProcessEnv): boolean {
  const raw = resolveSetting(name, flags, env);
  return raw === "true" || raw === "1";
}

export function settingsHelp(): string {
  const specs: SettingSpec[] = Object.values(SERVE_SETTINGS);
  // Columns as wide as the longest flag and variable, so every help text starts in one column.
  const flagWidth = Math.max(...specs.map((s) => s.flag.length));
  const envWidth = Math.max(...specs.map((s) => s.env.length));
  return specs.map((s) => `  --${s.flag.padEnd(flagWidth)} ${s.env.padEnd(envWidth)} ${s.help}${s.defaultValue ? ` (default ${s.defaultValue})` : ""}`).join("\n");
}
