// Every request the console makes. Admin calls carry the token as a bearer header; method
// calls go to the HTTP/JSON transcoder on the same port, which needs no token (and gets none).
import type { ClusterView, DeployedModule, EntityView, EventPage, ModuleSummary, ServiceDescription } from "./api-types.js";
import { savedToken } from "./session.js";

/** A non-2xx answer: the HTTP status, the gRPC status name when the node gave one, and its message. */
export class ApiError extends Error {
  constructor(
    readonly httpStatus: number,
    readonly status: string,
    message: string,
  ) {
    super(message);
  }

  /** "404 NOT_FOUND: no such entity", the way the page shows it. */
  describe(): string {
    return `${this.httpStatus}${this.status ? ` ${this.status}` : ""}: ${this.message}`;
  }
}

let onRefused: (error: ApiError) => void = () => undefined;

/** Called when the node answers 401 to the saved token (it changed, or the node restarted with another). */
export function whenTokenRefused(callback: (error: ApiError) => void): void {
  onRefused = callback;
}

/** Reads the node's error JSON ({"error": {"status", "message"}}), or the body as text. */
export async function errorOf(response: Response): Promise<ApiError> {
  const text = await response.text().catch(() => "");
  try {
    const body = JSON.parse(text) as { error?: { status?: unknown; message?: unknown } };
    if (body.error && typeof body.error.message === "string") {
      return new ApiError(response.status, typeof body.error.status === "string" ? body.error.status : "", body.error.message);
    }
  } catch {
    // not JSON: the text is the message
  }
  return new ApiError(response.status, "", text.trim() || response.statusText || "no message");
}

async function admin(path: string, init: RequestInit = {}): Promise<Response> {
  const headers = new Headers(init.headers);
  const token = savedToken();
  if (token !== undefined) headers.set("authorization", `Bearer ${token}`);
  const response = await fetch(path, { ...init, headers, credentials: "omit", cache: "no-store" });
  if (response.ok) return response;
  const error = await errorOf(response);
  if (response.status === 401) onRefused(error);
  throw error;
}

async function adminJson<T>(path: string, init: RequestInit = {}): Promise<T> {
  return (await (await admin(path, init)).json()) as T;
}

/** Checks a token before it is kept: resolves when the node accepts it, throws ApiError otherwise. */
export async function checkToken(token: string): Promise<void> {
  const headers = { authorization: `Bearer ${token}` };
  const response = await fetch("/modules", { headers, credentials: "omit", cache: "no-store" });
  if (!response.ok) throw await errorOf(response);
}

export const listModules = async () => (await adminJson<{ modules: ModuleSummary[] }>("/modules")).modules;
export const listServices = () => adminJson<ServiceDescription[]>("/api/services");
export const clusterView = () => adminJson<ClusterView>("/cluster");

export const deployModule = (bytes: Blob) =>
  adminJson<DeployedModule>("/modules", { method: "POST", body: bytes, headers: { "content-type": "application/wasm" } });

export const activateVersion = (name: string, version: number) =>
  adminJson<DeployedModule>(`/modules/${encodeURIComponent(name)}/active`, {
    method: "PUT",
    body: JSON.stringify({ version }),
    headers: { "content-type": "application/json" },
  });

export const undeployModule = (name: string) => adminJson<unknown>(`/modules/${encodeURIComponent(name)}`, { method: "DELETE" });

export const inspectEntity = (service: string, key: string) =>
  adminJson<EntityView>(`/entities/${encodeURIComponent(service)}/${encodeURIComponent(key)}`);

export const entityEvents = (service: string, key: string, from: number, limit: number) =>
  adminJson<EventPage>(`/entities/${encodeURIComponent(service)}/${encodeURIComponent(key)}/events?from=${from}&limit=${limit}`);

/** The node's Prometheus exposition (GET /metrics needs no token). */
export async function scrapeMetrics(): Promise<string> {
  const response = await fetch("/metrics", { credentials: "omit", cache: "no-store" });
  if (!response.ok) throw await errorOf(response);
  return response.text();
}

/** Calls a method through the HTTP/JSON transcoder's default route; the caller reads the Response. */
export function callMethod(service: string, method: string, body: string, signal: AbortSignal): Promise<Response> {
  return fetch(`/${encodeURIComponent(service)}/${encodeURIComponent(method)}`, {
    method: "POST",
    body,
    headers: { "content-type": "application/json" },
    credentials: "omit",
    cache: "no-store",
    signal,
  });
}
