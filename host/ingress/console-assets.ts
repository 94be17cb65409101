// Serves the operations console (console/ in the repository, built into dist/console by
// `npm run build`) at GET /console on the admin port. The files are read once, on the first
// request, and only the names found then are served: no path from a request ever reaches
// the file system. Every answer carries a Content-Security-Policy that allows scripts,
// styles and fetches from this origin only, so an entity key or payload that slips into
// the page as markup still cannot run.
import { createHash } from "node:crypto";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import type http from "node:http";
import { dirname, extname, join } from "node:path";
import { PROTO_DIR } from "../proto/proto-root.js";

export const CONSOLE_PATH = "/console";

/** The built console: dist/console next to proto/ (the checkout or the installed package). */
export const CONSOLE_DIR = join(dirname(PROTO_DIR), "dist", "console");

/** No inline script or style, nothing from another origin, not frameable, no forms, no <base>. */
export const CONSOLE_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join("; ");

/** Sent with every console response, the 404s included. */
export const CONSOLE_HEADERS: Readonly<Record<string, string>> = {
  "content-security-policy": CONSOLE_CSP,
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
  "x-frame-options": "DENY",
  "cross-origin-opener-policy": "same-origin",
  "cross-origin-resource-policy": "same-origin",
};

const CONTENT_TYPES: Readonly<Record<string, string>> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".svg": "image/svg+xml",
};

interface Asset {
  readonly body: Buffer;
  readonly contentType: string;
  readonly etag: string;
}

type Handler = (req: http.IncomingMessage, res: http.ServerResponse) => Promise<void>;

let loaded: ReadonlyMap<string, Asset> | undefined;

/** The handler for a /console path (any method), or undefined when `path` is not the console's. */
export function consoleRoute(req: http.IncomingMessage, res: http.ServerResponse, path: string): Handler | undefined {
  if (path !== CONSOLE_PATH && !path.startsWith(`${CONSOLE_PATH}/`)) return undefined;
  return async () => {
    if (req.method !== "GET" && req.method !== "HEAD") {
      sendText(res, 405, "the console only answers GET", { allow: "GET, HEAD" });
      return;
    }
    const assets = consoleAssets();
    if (!assets) {
      sendText(res, 404, "the console is not built: run `npm run build` in the Keystate checkout");
      return;
    }
    const name = path === CONSOLE_PATH || path === `${CONSOLE_PATH}/` ? "index.html" : path.slice(CONSOLE_PATH.length + 1);
    const asset = assets.get(name);
    if (!asset) {
      sendText(res, 404, `no console file ${name}`);
      return;
    }
    const headers = { ...CONSOLE_HEADERS, "content-type": asset.contentType, "cache-control": "no-cache", etag: asset.etag };
    if (req.headers["if-none-match"] === asset.etag) {
      res.writeHead(304, headers);
      res.end();
      return;
    }
    res.writeHead(200, { ...headers, "content-length": asset.body.length });
    res.end(req.method === "HEAD" ? undefined : asset.body);
  };
}

/** The console's files by name, read on first use; undefined while the console is not built. */
function consoleAssets(): ReadonlyMap<string, Asset> | undefined {
  if (loaded) return loaded;
  if (!existsSync(join(CONSOLE_DIR, "index.html"))) return undefined;
  const assets = new Map<string, Asset>();
  for (const entry of readdirSync(CONSOLE_DIR, { withFileTypes: true })) {
    const contentType = CONTENT_TYPES[extname(entry.name)];
    if (!entry.isFile() || !contentType) continue; // declaration files, source maps and the like stay private
    const body = readFileSync(join(CONSOLE_DIR, entry.name));
    assets.set(entry.name, { body, contentType, etag: `"${createHash("sha256").update(body).digest("base64url").slice(0, 22)}"` });
  }
  loaded = assets;
  return assets;
}

function sendText(res: http.ServerResponse, status: number, text: string, headers: Record<string, string> = {}): void {
  res.writeHead(status, { ...CONSOLE_HEADERS, ...headers, "content-type": "text/plain; charset=utf-8", "content-length": Buffer.byteLength(text) });
  res.end(text);
}
