// The admin and operations HTTP endpoint: deploy and list modules (bearer token
// required), health. Listens on its own port, apart from gRPC ingress.
import { timingSafeEqual } from "node:crypto";
import http from "node:http";
import { KeystateError, toStatus } from "../errors.js";
import { log } from "../log.js";
import type { ModuleRegistry } from "../runtime/module-registry.js";
import type { Store } from "../journal/types.js";
import { grpcStatusName, httpStatusFor } from "./http-status.js";

export interface AdminOptions {
  /** undefined: no token required (explicitly insecure local development). */
  readonly token: string | undefined;
  readonly maxModuleBytes: number;
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

  async listen(host: string, port: number): Promise<number> {
    await new Promise<void>((resolve, reject) => {
      this.#server.once("error", reject);
      this.#server.listen(port, host, () => resolve());
    });
    return (this.#server.address() as { port: number }).port;
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
    };
    const handler = routes[`${req.method} ${path}`];
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

  async #deploy(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const bytes = await readBody(req, this.#options.maxModuleBytes);
    const deployed = await this.#registry.deploy(bytes);
    sendJson(res, 201, deployed);
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

  async #ready(res: http.ServerResponse): Promise<void> {
    try {
      await this.#store.ping();
      sendJson(res, 200, { status: "ready", modules: this.#registry.modules.length });
    } catch (err) {
      sendJson(res, 503, { status: "unavailable", message: toStatus(err).details });
    }
  }
}

function sendJson(res: http.ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text) });
  res.end(text);
}

async function readBody(req: http.IncomingMessage, limit: number): Promise<Uint8Array> {
  const declared = Number(req.headers["content-length"] ?? NaN);
  if (declared > limit) throw new KeystateError("MODULE_TOO_LARGE", `the upload is ${declared} bytes; the limit is ${limit}`);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > limit) throw new KeystateError("MODULE_TOO_LARGE", `the upload is over the limit of ${limit} bytes`);
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}
