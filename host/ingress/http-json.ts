// HTTP/JSON ingress (DESIGN.md decision 8): requests on the HTTP port that are not admin
// routes are matched against the deployed methods' google.api.http bindings (plus a
// default `POST /pkg.Service/Method` for every method), transcoded to protobuf, sent
// through the same Router as gRPC, and the reply transcoded back. Routes are rebuilt
// whenever a deploy changes the services, and swapped in whole.
import { IDEMPOTENCY_KEY_HEADER } from "../entities/placement.js";
import { checkIdempotencyKey } from "./cluster-metadata.js";
import { GrpcStatus } from "../grpc-http2/status.js";
import type http from "node:http";
import type { Router } from "../entities/router.js";
import { KeystateError, toStatus } from "../errors.js";
import { log } from "../log.js";
import type { Metrics } from "../metrics.js";
import type { LoadedModule } from "../runtime/loaded-module.js";
import type { ModuleRegistry } from "../runtime/module-registry.js";
import type { MethodModel } from "../runtime/service-model.js";
import { callerGone, requestIdFrom, startCallContext } from "../entities/call-context.js";
import { parseGrpcTimeout } from "../grpc-http2/timeout.js";
import { logCallFailure, type FailedCall } from "./call-log.js";
import { REQUEST_ID_HEADER } from "./grpc-unary.js";
import { BodyTooLargeError, readBody, sendJson } from "./http-body.js";
import { streamNdjson } from "./http-streaming.js";
import { bindingsOf, RouteTable, type HttpBinding } from "./http-rules.js";
import { grpcStatusName } from "../grpc-http2/status.js";
import { httpStatusFor } from "./http-status.js";
import { JsonCodec, type FieldValue } from "./json-codec.js";

/** Default largest JSON request body; `maxBodyBytes` changes it. */
export const DEFAULT_MAX_JSON_BODY_BYTES = 4 * 1024 * 1024;

export interface HttpJsonOptions {
  readonly maxBodyBytes?: number;
  /** Paths the admin API owns; a module binding with exactly one of these is skipped (and logged). */
  readonly reservedPaths?: readonly string[];
}

interface Target {
  readonly method: MethodModel;
  readonly codec: JsonCodec;
}

/** An error answered with a fixed HTTP status that no gRPC code maps to (404 route, 405, 413). */
class HttpError extends Error {
  constructor(
    readonly httpStatus: number,
    readonly code: GrpcStatus,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

interface Routes {
  readonly table: RouteTable;
  /** By "<service>/<method>". */
  readonly targets: Map<string, Target>;
}

/** How long after the last module change the routes are rebuilt in the background. */
const ROUTE_BUILD_DELAY_MS = 20;

export class HttpJsonIngress {
  readonly #registry: ModuleRegistry;
  readonly #router: Router;
  readonly #metrics: Metrics;
  readonly #maxBodyBytes: number;
  readonly #reserved: ReadonlySet<string>;
  /** The routes of the modules now served (being built); undefined after a change until rebuilt (see #routes). */
  #built: Promise<Routes> | undefined;
  #rebuildTimer: NodeJS.Timeout | undefined;

  constructor(registry: ModuleRegistry, router: Router, metrics: Metrics, options: HttpJsonOptions = {}) {
    this.#registry = registry;
    this.#router = router;
    this.#metrics = metrics;
    this.#maxBodyBytes = options.maxBodyBytes ?? DEFAULT_MAX_JSON_BODY_BYTES;
    this.#reserved = new Set(options.reservedPaths ?? []);
    registry.onServicesChanged(() => this.#changed());
  }

  /**
   * Routes are built off the start-up path: a node loading its stored modules would otherwise
   * build every module's JSON codec (a protobufjs root per module, ~6 ms each) before it may
   * serve its first gRPC call. A change schedules one rebuild shortly after the last change (so
   * binding conflicts are still logged at deploy); a request that comes first builds them itself.
   */
  #changed(): void {
    this.#built = undefined;
    clearTimeout(this.#rebuildTimer);
    this.#rebuildTimer = setTimeout(() => void this.#routes().catch((err: unknown) => log().error({ err }, "HTTP/JSON routes could not be built")), ROUTE_BUILD_DELAY_MS);
    this.#rebuildTimer.unref();
  }

  /** A rebuild that fails is not kept: the next request tries again (and answers the error). */
  #routes(): Promise<Routes> {
    clearTimeout(this.#rebuildTimer);
    if (this.#built === undefined) {
      const building = this.#rebuild();
      this.#built = building;
      building.catch(() => {
        if (this.#built === building) this.#built = undefined;
      });
    }
    return this.#built;
  }

  async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    let finish: ((code: GrpcStatus) => void) | undefined;
    const requestId = requestIdFrom(req.headers[REQUEST_ID_HEADER]);
    res.setHeader(REQUEST_ID_HEADER, requestId);
    let call: FailedCall = { ingress: "http", requestId };
    let timeoutMs: number | undefined;
    let badTimeout: string | undefined;
    try {
      timeoutMs = parseGrpcTimeout(req.headers["grpc-timeout"]);
    } catch (err) {
      badTimeout = (err as Error).message;
    }
    const scope = startCallContext(requestId, timeoutMs === undefined ? undefined : Date.now() + timeoutMs);
    // A client that hung up waits for nothing: its command need not run (nor hold the mailbox).
    const onClose = () => res.writableFinished || scope.cancel();
    res.once("close", onClose);
    // The client may have hung up before this request was even read (the node was busy).
    if (req.socket.destroyed) scope.cancel();
    try {
      if (badTimeout !== undefined) throw new HttpError(400, GrpcStatus.INVALID_ARGUMENT, badTimeout);
      const url = new URL(req.url ?? "/", "http://ingress");
      const routes = await this.#routes();
      const match = routes.table.match(req.method ?? "GET", decodeSegments(url.pathname));
      if (match.kind === "none") throw new HttpError(404, GrpcStatus.NOT_FOUND, `no route for ${req.method} ${url.pathname}`);
      if (match.kind === "wrong-method") {
        const allow = match.allowed.join(", ");
        throw new HttpError(405, GrpcStatus.UNIMPLEMENTED, `${url.pathname} does not take ${req.method}; it takes ${allow}`, { allow });
      }
      const { binding, params } = match;
      const target = routes.targets.get(`${binding.service}/${binding.method}`)!;
      finish = this.#metrics.startCall(binding.service, binding.method, "http");
      call = { ...call, service: binding.service, method: binding.method };
      const requestBytes = target.codec.requestBytes(target.method.inputType, {
        body: binding.body === undefined ? undefined : await this.#readJson(req),
        bodyField: binding.body,
        query: queryFields(url.searchParams, binding),
        pathParams: params,
      });
      call = { ...call, payload: requestBytes };
      if (target.method.serverStreaming) {
        const toJson = (message: Uint8Array) => target.codec.replyJson(target.method.outputType, message, binding.responseBody);
        return await streamNdjson(this.#router, res, { service: binding.service, method: binding.method, payload: requestBytes, toJson, finish });
      }
      const key = req.headers[IDEMPOTENCY_KEY_HEADER];
      const idempotencyKey = typeof key === "string" ? checkIdempotencyKey(key) : undefined;
      const reply = await this.#router.call(binding.service, binding.method, requestBytes, { context: scope.context, idempotencyKey });
      sendJson(res, 200, target.codec.replyJson(target.method.outputType, reply, binding.responseBody));
      finish(GrpcStatus.OK);
    } catch (err) {
      // A client that hung up mid-request makes the body read fail ("aborted"): that is a cancel, not a bug.
      // (A KeystateError is what really happened to the call, and stays.)
      this.#fail(res, err instanceof KeystateError ? err : (callerGone(scope.context) ?? err), finish, call);
    } finally {
      scope.dispose();
      res.off("close", onClose);
      // Whatever of the body was not read is discarded, so the connection can be reused.
      if (!req.readableEnded) req.resume();
    }
  }

  #fail(res: http.ServerResponse, err: unknown, finish: ((code: GrpcStatus) => void) | undefined, call: FailedCall): void {
    let httpStatus: number;
    let code: GrpcStatus;
    let message: string;
    let headers: Record<string, string> = {};
    if (err instanceof HttpError) {
      ({ httpStatus, code, message, headers } = err);
    } else if (err instanceof BodyTooLargeError) {
      [httpStatus, code, message] = [413, GrpcStatus.RESOURCE_EXHAUSTED, err.message];
    } else {
      const status = toStatus(err);
      [httpStatus, code, message] = [httpStatusFor(status.code), status.code, status.details];
    }
    finish?.(code);
    logCallFailure(this.#registry, call, err, code);
    if (res.headersSent) {
      res.destroy();
      return;
    }
    sendJson(res, httpStatus, { error: { status: grpcStatusName(code), code, message } }, headers);
  }

  async #readJson(req: http.IncomingMessage): Promise<unknown> {
    const bytes = await readBody(req, this.#maxBodyBytes);
    const text = bytes.toString("utf8");
    // An empty body is an empty message, so `curl -X POST` works for methods with no input fields.
    if (text.trim() === "") return {};
    try {
      return JSON.parse(text);
    } catch (err) {
      throw new KeystateError("INVALID_REQUEST", `the request body is not valid JSON: ${(err as Error).message}`);
    }
  }

  async #rebuild(): Promise<Routes> {
    const bindings: HttpBinding[] = [];
    const targets = new Map<string, Target>();
    const seen = new Set<string>();
    // Sorted by module name, so which of two clashing bindings wins does not depend on deploy order.
    const modules = [...this.#registry.modules].sort((a, b) => a.name.localeCompare(b.name));
    for (const module of modules) {
      const codec = await JsonCodec.forModule(module);
      for (const service of module.api.services.values()) {
        for (const method of service.methods.values()) {
          // Unary methods answer one JSON reply; server-streaming ones newline-delimited JSON (http-streaming.ts).
          if (method.clientStreaming) continue;
          targets.set(`${method.service}/${method.name}`, { method, codec });
          for (const binding of this.#usable(module, method, codec)) {
            const key = `${binding.httpMethod} ${binding.template.source}`;
            if (seen.has(key)) {
              log().warn({ module: module.name, method: method.path, route: key }, "HTTP binding already taken by another method; skipped");
              continue;
            }
            seen.add(key);
            bindings.push(binding);
          }
        }
      }
    }
    log().debug({ routes: bindings.length }, "HTTP/JSON routes rebuilt");
    return { table: new RouteTable(bindings), targets };
  }

  /** The method's bindings that can work; each one that cannot is logged with the reason. */
  #usable(module: LoadedModule, method: MethodModel, codec: JsonCodec): HttpBinding[] {
    const { bindings, errors } = bindingsOf(method);
    const usable: HttpBinding[] = [];
    for (const binding of bindings) {
      const problem =
        (this.#reserved.has(binding.template.source) ? `${binding.template.source} is an admin path` : undefined) ??
        (binding.body && binding.body !== "*" ? codec.fieldPathError(method.inputType, binding.body) : undefined) ??
        (binding.responseBody ? codec.fieldPathError(method.outputType, binding.responseBody) : undefined) ??
        binding.template.variables.map((v) => codec.fieldPathError(method.inputType, v.fieldPath.join("."))).find((e) => e !== undefined);
      if (problem) errors.push(`${binding.httpMethod} ${binding.template.source}: ${problem}`);
      else usable.push(binding);
    }
    for (const error of errors) log().warn({ module: module.name, method: method.path, error }, "HTTP binding skipped");
    return usable;
  }
}

/** Splits the path on "/" and percent-decodes each segment (so an encoded "/" stays inside its segment). */
function decodeSegments(pathname: string): string[] {
  return pathname
    .slice(1)
    .split("/")
    .map((segment) => {
      try {
        return decodeURIComponent(segment);
      } catch {
        throw new KeystateError("INVALID_REQUEST", `the path segment "${segment}" is not valid percent-encoding`);
      }
    });
}

/** Query parameters fill request fields, except when the body already is the whole request. */
function queryFields(search: URLSearchParams, binding: HttpBinding): FieldValue[] {
  const fields = [...search].map(([key, value]) => ({ fieldPath: key.split("."), value }));
  if (fields.length > 0 && binding.body === "*") {
    throw new KeystateError("INVALID_REQUEST", `${binding.template.source} takes the whole request as its body, so query parameters (${[...search.keys()].join(", ")}) are not allowed`);
  }
  return fields;
}
