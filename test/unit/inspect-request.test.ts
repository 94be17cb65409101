// Inspection URLs: the key as one URL-encoded segment (any text), the events route's paging
// (defaults, a huge limit clamped, malformed numbers refused), and routes that do not exist.
import test from "ava";
import { isKeystateError } from "../../host/errors.js";
import { DEFAULT_EVENT_LIMIT, MAX_EVENT_LIMIT, parseInspectRequest } from "../../host/inspect/inspect-request.js";

const SERVICE = "pkg.Service";

test("state route: service and key decoded from one segment each; a query is ignored", (t) => {
  t.deepEqual(parseInspectRequest(`/entities/${SERVICE}/ann`), { service: SERVICE, key: "ann" });
  const key = `a/b <script>"x"</script> ?#& %2F ü ..`;
  t.deepEqual(parseInspectRequest(`/entities/${SERVICE}/${encodeURIComponent(key)}?from=3`), { service: SERVICE, key });
  // The raw URL is read: an encoded ".." is a key, not a step up.
  t.deepEqual(parseInspectRequest(`/entities/${SERVICE}/%2E%2E`), { service: SERVICE, key: ".." });
  t.deepEqual(parseInspectRequest(`http://node:8081/entities/${SERVICE}/k`), { service: SERVICE, key: "k" });
});

test("events route: defaults, explicit paging, and a huge limit clamped", (t) => {
  t.deepEqual(parseInspectRequest(`/entities/${SERVICE}/k/events`).events, { from: 1, limit: DEFAULT_EVENT_LIMIT });
  t.deepEqual(parseInspectRequest(`/entities/${SERVICE}/k/events?from=7&limit=20`).events, { from: 7, limit: 20 });
  t.deepEqual(parseInspectRequest(`/entities/${SERVICE}/k/events?limit=&from=`).events, { from: 1, limit: DEFAULT_EVENT_LIMIT });
  for (const huge of ["501", "1000000000", "9".repeat(400)]) {
    t.is(parseInspectRequest(`/entities/${SERVICE}/k/events?limit=${huge}`).events?.limit, MAX_EVENT_LIMIT, huge);
  }
  t.is(parseInspectRequest(`/entities/${SERVICE}/k/events?from=${"9".repeat(400)}`).events?.from, Number.MAX_SAFE_INTEGER);
});

test("malformed numbers and encodings are INVALID_REQUEST; other paths are not inspection routes", (t) => {
  for (const query of ["limit=0", "limit=-3", "limit=1e3", "limit=2.5", "limit=x", "from=0", "from=%201"]) {
    const err = t.throws(() => parseInspectRequest(`/entities/${SERVICE}/k/events?${query}`));
    t.true(isKeystateError(err, "INVALID_REQUEST"), query);
  }
  t.true(isKeystateError(t.throws(() => parseInspectRequest(`/entities/${SERVICE}/%E0%A4%A`)), "INVALID_REQUEST"));
  for (const path of ["/entities", "/entities/", `/entities/${SERVICE}`, `/entities/${SERVICE}/`, `/entities/${SERVICE}/k/other`, `/entities/${SERVICE}/k/events/x`]) {
    const err = t.throws(() => parseInspectRequest(path));
    t.true(isKeystateError(err, "UNKNOWN_SERVICE"), path);
    t.regex((err as Error).message, /inspection routes are GET \/entities\/<package\.Service>\/<key>/);
  }
});
