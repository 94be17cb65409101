// The CLI's client for a node's admin API (deploy, list modules).
import { existsSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";

export interface AdminTarget {
  readonly url: string;
  readonly token: string | undefined;
}

/** --admin / KEYSTATE_ADMIN_URL, and the token from --token, KEYSTATE_ADMIN_TOKEN or <data>/admin-token. */
export function adminTarget(flags: Record<string, unknown>, env: NodeJS.ProcessEnv): AdminTarget {
  const url = String(flags.admin ?? env.KEYSTATE_ADMIN_URL ?? "http://127.0.0.1:8081").replace(/\/$/, "");
  let token = (flags.token as string | undefined) ?? env.KEYSTATE_ADMIN_TOKEN;
  if (token === undefined) {
    const file = join(resolve(String(flags.data ?? env.KEYSTATE_DATA ?? "./data")), "admin-token");
    if (existsSync(file)) token = readFileSync(file, "utf8").trim();
  }
  return { url, token };
}

export async function adminRequest(target: AdminTarget, method: string, path: string, body?: Uint8Array, contentType = "application/wasm"): Promise<unknown> {
  const headers: Record<string, string> = {};
  if (target.token) headers.authorization = `Bearer ${target.token}`;
  if (body) headers["content-type"] = contentType;
  let response: Response;
  try {
    response = await fetch(target.url + path, { method, headers, body: body as Uint8Array<ArrayBuffer> | undefined });
  } catch (err) {
    throw new Error(`cannot reach the admin API at ${target.url}: ${(err as Error).cause ?? (err as Error).message}`);
  }
  const text = await response.text();
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new Error(`the admin API answered ${response.status} with non-JSON: ${text.slice(0, 200)}`);
  }
  if (!response.ok) {
    const error = (parsed as { error?: { status?: string; message?: string } }).error;
    throw new Error(`${error?.status ?? response.status}: ${error?.message ?? text}`);
  }
  return parsed;
}
