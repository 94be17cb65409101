// The admin and operations HTTP endpoint: deploy and list modules (bearer token
// required), health, Prometheus metrics. Listens on its own port, apart from gRPC
// ingress; every other path goes to the HTTP/JSON transcoder of the deployed methods.
import { timingSafeEqual } from "node:crypto";
import http from "node:http";
import { KeystateError, toStatus } from "../errors.js";
import { log } from "../log.js";
import type { ModuleRegistry } from "../runtime/module-registry.js";
import type { Store } from "../journal/types.js";
import type { Metrics } from "../metrics.js";
import { requestIdFrom } from "../entities/call-context.js";
import { REQUEST_ID_HEADER } from "./grpc-unary.js";
import { BodyTooLargeError, readBody, sendJson } from "./http-body.js";
import { grpcStatusName } from "../grpc-http2/status.js";
import { httpStatusFor } from "./http-status.js";
import { consoleRoute } from "./console-assets.js";
import { describeServices } from "./services-api.js";
import { deadLettersAnswer, isDeadLettersPath } from "../eventing/dead-letters-api.js";
import { listenOn } from "../listen.js";

/** The paths this server answers itself; module HTTP bindings may not take them. */
export const ADMIN_PATHS = ["/healthz", "/readyz", "/modules", "/metrics", "/cluster", "/console", "/api/services", "/entities", "/topics"] as const;

/** What the admin API shows of one entity (inspect/entity-inspector.ts): its state, or a page of its journal. */
export interface EntityInspection {
  /** The JSON answer to GET `url` (a path under /entities/ and its query, as received); rejects with a KeystateError. */
  inspect(url: string): Promise<unknown>;
}

/** What the admin API shows of a cluster membership (cluster/cluster-node.ts). */
export interface ClusterStatus {
  readonly ready: boolean;
  view(): Promise<unknown>;
}

export interface AdminOptions {
  /** undefined: no token required (explicitly insecure local development). */
  readonly token: string | undefined;
  readonly maxModuleBytes: number;
  /** Served at GET /metrics (no token: scrapers are configured like health checks). */
  readonly metrics?: Metrics;
  /** Handles every request that is not an admin route (the HTTP/JSON transcoder). */
  readonly fallback?: Handler;
  /** The node's cluster membership, once it has one (Redis): GET /cluster, and readiness. */
  readonly cluster?: () => ClusterStatus | undefined;
  /** GET /entities/<service>/<key>[/events]: an entity's state and journal, read-only (inspect/entity-inspector.ts). */
  readonly inspector?: EntityInspection;
}

type Handler = (req: http.IncomingMessage, res: http.ServerResponse) => Promise<void>;

export class AdminServer {
  readonly #server: http.Server;
  readonly #registry: ModuleRegistry;
  readonly #store: Store;
  readonly #options: AdminOptions;

  constructor(registry: ModuleRegistry, store: Store, options: AdminOptions) {
    this.#registry = registry;
    this.#store = store;
    this.#options = options;
    this.#server = http.createServer((req, res) => void this.#route(req, res));
  }

  listen(host: string, port: number): Promise<number> {
    return listenOn(this.#server, host, port);
  }

  async close(): Promise<void> {
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  async #route(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const path = new URL(req.url ?? "/", "http://admin").pathname;
    const routes: Record<string, Handler | undefined> = {
      "GET /healthz": async () => sendJson(res, 200, { status: "ok" }),
      "GET /readyz": async () => this.#ready(res),
      "GET /modules": this.#authenticated(async () => sendJson(res, 200, { modules: await this.#listModules() })),
      "POST /modules": this.#authenticated(async () => this.#deploy(req, res)),
      "GET /cluster": this.#authenticated(async () => this.#clusterView(res)),
      "GET /api/services": this.#authenticated(async () => sendJson(res, 200, describeServices(this.#registry.modules))),
    };
    const metrics = this.#options.metrics;
    if (metrics) {
      routes["GET /metrics"] = async () => {
        const { contentType, text } = await metrics.scrape();
        res.writeHead(200, { "content-type": contentType, "content-length": Buffer.byteLength(text) });
        res.end(text);
      };
    }
    const handler = routes[`${req.method} ${path}`] ?? this.#moduleRoute(req, res, path) ?? this.#entityRoute(req, res, path) ?? this.#deadLettersRoute(req, res, path) ?? consoleRoute(req, res, path);
    if (!handler && this.#options.fallback) {
      await this.#options.fallback(req, res);
      return;
    }
    try {
      if (!handler) {
        sendJson(res, 404, { error: { status: "NOT_FOUND", message: `no route ${req.method} ${path}` } });
        return;
      }
      await handler(req, res);
    } catch (err) {
      const status = toStatus(err);
      if (!(err instanceof KeystateError)) log().error({ err, path }, "admin request failed");
      sendJson(res, err instanceof KeystateError && err.code === "MODULE_TOO_LARGE" ? 413 : httpStatusFor(status.code), {
        error: { code: err instanceof KeystateError ? err.code : "INTERNAL", status: grpcStatusName(status.code), message: status.details },
      });
      req.resume();
    }
  }

  #authenticated(handler: Handler): Handler {
    return async (req, res) => {
      const expected = this.#options.token;
      if (expected !== undefined) {
        const given = /^Bearer (.+)$/i.exec(req.headers.authorization ?? "")?.[1] ?? "";
        const a = Buffer.from(given);
        const b = Buffer.from(expected);
        if (a.length !== b.length || !timingSafeEqual(a, b)) {
          throw new KeystateError("UNAUTHENTICATED", "this admin call needs `Authorization: Bearer <token>` with the node's admin token");
        }
      }
      await handler(req, res);
    };
  }

  /** GET /entities/...: the inspector parses the raw URL itself (an entity key may be any URL-encoded text). */
  #entityRoute(req: http.IncomingMessage, res: http.ServerResponse, path: string): Handler | undefined {
    const inspector = this.#options.inspector;
    if (req.method !== "GET" || !inspector || (path !== "/entities" && !path.startsWith("/entities/"))) return undefined;
    // Entity state is the users' data: never cached, never sniffed as anything but JSON.
    return this.#authenticated(async () => sendJson(res, 200, await inspector.inspect(req.url ?? "/"), { "cache-control": "no-store", "x-content-type-options": "nosniff" }));
  }

  /** GET /topics/<topic>/dead-letters/<subscription>: what a subscription gave up on (eventing/dead-letters-api.ts). */
  #deadLettersRoute(req: http.IncomingMessage, res: http.ServerResponse, path: string): Handler | undefined {
    if (req.method !== "GET" || !isDeadLettersPath(path)) return undefined;
    return this.#authenticated(async () => sendJson(res, 200, await deadLettersAnswer(this.#store.topics, req.url ?? "/"), { "cache-control": "no-store", "x-content-type-options": "nosniff" }));
  }

  /** DELETE /modules/<name> (undeploy) and PUT /modules/<name>/active {"version": n} (rollback). */
  #moduleRoute(req: http.IncomingMessage, res: http.ServerResponse, path: string): Handler | undefined {
    const match = /^\/modules\/([^/]+)(\/active)?$/.exec(path);
    if (!match) return undefined;
    const name = decodeURIComponent(match[1]!);
    if (req.method === "DELETE" && !match[2]) {
      return this.#authenticated(async () => {
        await this.#registry.undeploy(name);
        sendJson(res, 200, { name, undeployed: true });
      });
    }
    if (req.method === "PUT" && match[2]) {
      return this.#authenticated(async () => {
        const body = await readBody(req, 4096, "the request");
        let version: unknown;
        try {
          version = (JSON.parse(Buffer.from(body).toString("utf8")) as { version?: unknown }).version;
        } catch {
          throw new KeystateError("INVALID_REQUEST", 'the body must be JSON like {"version": 2}');
        }
        if (!Number.isInteger(version) || (version as number) < 1) {
          throw new KeystateError("INVALID_REQUEST", '"version" must be a positive whole number');
        }
        sendJson(res, 200, await this.#registry.activateVersion(name, version as number));
      });
    }
    return undefined;
  }

  async #deploy(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    try {
      const bytes = await readBody(req, this.#options.maxModuleBytes, "the upload").catch((err: unknown) => {
        throw err instanceof BodyTooLargeError ? new KeystateError("MODULE_TOO_LARGE", err.message) : err;
      });
      const deployed = await this.#registry.deploy(bytes);
      this.#options.metrics?.deployed("ok");
      sendJson(res, 201, deployed);
    } catch (err) {
      this.#options.metrics?.deployed(err instanceof KeystateError ? err.code : "INTERNAL");
      // A deploy that went through is logged by the registry ("module deployed"); a refused one here.
      const requestId = requestIdFrom(req.headers[REQUEST_ID_HEADER]);
      if (err instanceof KeystateError) log().warn({ requestId, result: err.code, error: err.message }, "module deploy refused");
      throw err;
    }
  }

  async #listModules(): Promise<unknown[]> {
    const loaded = new Map(this.#registry.modules.map((m) => [m.name, m]));
    const summaries = await this.#store.modules.list().catch((err: unknown) => {
      throw KeystateError.fromStorage(err, "listing modules");
    });
    return summaries.map((summary) => {
      const active = summary.versions.find((v) => v.version === summary.activeVersion);
      const module = loaded.get(summary.name);
      return {
        name: summary.name,
        version: summary.activeVersion ?? null,
        hash: active?.hash ?? null,
        size: active?.size ?? null,
        services: module && module.version === summary.activeVersion ? [...module.api.services.keys()] : [],
        versions: summary.versions.map((v) => ({ version: v.version, hash: v.hash, size: v.size, deployedAt: new Date(v.deployedAt).toISOString() })),
      };
    });
  }

  async #clusterView(res: http.ServerResponse): Promise<void> {
    const cluster = this.#options.cluster?.();
    if (!cluster) throw new KeystateError("UNKNOWN_METHOD", "this node is not part of a cluster (it runs on the embedded store; start it with --redis)");
    try {
      sendJson(res, 200, await cluster.view());
    } catch (err) {
      throw KeystateError.fromStorage(err, "reading the cluster's state");
    }
  }

  async #ready(res: http.ServerResponse): Promise<void> {
    const cluster = this.#options.cluster?.();
    if (cluster && !cluster.ready) {
      sendJson(res, 503, { status: "unavailable", message: "the node is leaving the cluster (handing its shards off)" });
      return;
    }
    try {
      await this.#store.ping();
      sendJson(res, 200, { status: "ready", modules: this.#registry.modules.length });
    } catch (err) {
      sendJson(res, 503, { status: "unavailable", message: toStatus(err).details });
    }
  }
}
