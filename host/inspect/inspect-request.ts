// What an inspection URL asks for: GET /entities/<package.Service>/<key> (the entity's
// state) or GET /entities/<package.Service>/<key>/events?from=&limit= (a page of its
// journal). The key is one URL-encoded path segment, so it may hold any character ("/" as
// %2F); it is read from the raw request URL, because URL normalisation would turn a
// "%2E%2E" key into a step up the path.
import { KeystateError } from "../errors.js";

/** Events per page when the caller names no limit. */
export const DEFAULT_EVENT_LIMIT = 50;
/** The largest page: a larger limit is clamped to this (and the answer says so), not refused. */
export const MAX_EVENT_LIMIT = 500;

export interface EventPage {
  /** The first sequence number wanted (1-based). */
  readonly from: number;
  /** At most this many events (after clamping). */
  readonly limit: number;
}

export interface InspectRequest {
  readonly service: string;
  readonly key: string;
  /** Present for the /events route. */
  readonly events?: EventPage;
}

const ROUTE = /^\/entities\/([^/]+)\/([^/]+)(\/events)?$/;
const ROUTES_HELP =
  "inspection routes are GET /entities/<package.Service>/<key> and GET /entities/<package.Service>/<key>/events?from=<seq>&limit=<n>, the key URL-encoded as one path segment";

/** Parses a request URL (path and query, as received); throws UNKNOWN_SERVICE (404) or INVALID_REQUEST (400) saying what is wrong. */
export function parseInspectRequest(url: string): InspectRequest {
  // An absolute-form request target ("http://host/path") is rare but legal.
  const target = url.startsWith("/") ? url : (() => {
    const parsed = new URL(url);
    return parsed.pathname + parsed.search;
  })();
  const queryAt = target.indexOf("?");
  const path = queryAt < 0 ? target : target.slice(0, queryAt);
  const match = ROUTE.exec(path);
  if (!match) throw new KeystateError("UNKNOWN_SERVICE", `no inspection route ${path}; ${ROUTES_HELP}`);
  const service = decodeSegment(match[1]!, "service name");
  const key = decodeSegment(match[2]!, "entity key");
  if (!match[3]) return { service, key };
  const query = new URLSearchParams(queryAt < 0 ? "" : target.slice(queryAt + 1));
  return { service, key, events: eventPage(query) };
}

function decodeSegment(segment: string, what: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    throw new KeystateError("INVALID_REQUEST", `the ${what} in the path is not valid URL encoding (encode it with encodeURIComponent)`);
  }
}

function eventPage(query: URLSearchParams): EventPage {
  const from = wholeNumber(query.get("from"), "from", 1);
  const limit = wholeNumber(query.get("limit"), "limit", DEFAULT_EVENT_LIMIT);
  return { from, limit: Math.min(limit, MAX_EVENT_LIMIT) };
}

/** A query parameter as a whole number >= 1 (default when absent); a huge one is fine (the caller clamps). */
function wholeNumber(text: string | null, name: string, defaultValue: number): number {
  if (text === null || text === "") return defaultValue;
  if (!/^\d+$/.test(text) || Number(text) < 1) {
    throw new KeystateError("INVALID_REQUEST", `"${name}" must be a whole number from 1 up, got "${text.slice(0, 40)}"`);
  }
  // Digits only: Number() of a very long one is a huge finite number or Infinity, both clamp.
  return Math.min(Number(text), Number.MAX_SAFE_INTEGER);
}
