// `keystate inspect <package.Service> <key> [--events] [--from N] [--limit N] [--json]`:
// an entity's state (or a page of its journal) from a node's admin API, as a short summary
// with the state as pretty JSON, or the API's answer as is with --json. Keys and payloads
// are whatever users sent, so everything printed is JSON-escaped, terminal controls too.
import { adminRequest, adminTarget } from "./admin-client.js";

const USAGE = "usage: keystate inspect <package.Service> <key> [--events] [--from N] [--limit N] [--json]";

export interface StateView {
  service: string;
  kind: string;
  module: { name: string; version: number };
  key: string;
  exists: boolean;
  sequence: number | null;
  resident: boolean;
  snapshotSeq?: number | null;
  stateType?: string;
  crdt?: string;
  state: unknown;
  stateBase64?: string;
  note?: string;
}

export interface EventsView {
  service: string;
  key: string;
  from: number;
  limit: number;
  events: Array<{ seq: number; type: string; payload?: unknown; payloadBase64?: string; note?: string }>;
  lastSeq: number;
  more: boolean;
  nextFrom?: number;
}

/** The path of the inspection route for `service`, `key` (any text) and the flags. */
export function inspectPath(service: string, key: string, flags: Record<string, unknown>): string {
  const base = `/entities/${encodeURIComponent(service)}/${encodeURIComponent(key)}`;
  if (!flags.events) return base;
  const query = new URLSearchParams();
  if (flags.from !== undefined) query.set("from", String(flags.from));
  if (flags.limit !== undefined) query.set("limit", String(flags.limit));
  const search = query.toString();
  return `${base}/events${search ? `?${search}` : ""}`;
}

export async function runInspect(args: readonly string[], flags: Record<string, unknown>, env: NodeJS.ProcessEnv): Promise<string> {
  const [service, key] = args;
  if (!service || key === undefined || args.length > 2) throw new Error(USAGE);
  const answer = await adminRequest(adminTarget(flags, env), "GET", inspectPath(service, key, flags));
  if (flags.json) return safeJson(answer) + "\n";
  return flags.events ? formatEvents(answer as EventsView) : formatState(answer as StateView);
}

export function formatState(view: StateView): string {
  const lines = [
    `${view.service} ${safeJson(view.key)} (${view.kind}, module ${view.module.name} v${view.module.version})`,
    `exists: ${view.exists ? "yes" : "no, never written: the state below is the default"}`,
  ];
  if (view.sequence !== null) lines.push(`${view.kind === "value" ? "version" : "sequence"}: ${view.sequence}`);
  if (view.snapshotSeq !== undefined) lines.push(`snapshot: ${view.snapshotSeq === null ? "none" : `at seq ${view.snapshotSeq}`}`);
  lines.push(`resident on this node: ${view.resident ? "yes" : "no"}`);
  if (view.stateBase64 !== undefined) {
    lines.push(`state (base64: ${view.note ?? "not decodable"}):`, view.stateBase64);
  } else {
    lines.push(`state (${view.crdt ?? view.stateType ?? "?"}):`, safeJson(view.state, 2));
  }
  return lines.join("\n") + "\n";
}

export function formatEvents(view: EventsView): string {
  const lines = [`${view.service} ${safeJson(view.key)}: events from seq ${view.from} (limit ${view.limit}; the journal's last seq is ${view.lastSeq})`];
  if (view.events.length === 0) lines.push("(no events)");
  for (const event of view.events) {
    lines.push(`#${event.seq} ${safeJson(event.type)}`);
    lines.push(event.payloadBase64 !== undefined ? `  base64 (${event.note ?? "not decodable"}): ${event.payloadBase64}` : indent(safeJson(event.payload ?? {}, 2)));
  }
  if (view.more) lines.push(`more events follow: add --from ${view.nextFrom}`);
  return lines.join("\n") + "\n";
}

function indent(text: string): string {
  return text.replace(/^/gm, "  ");
}

/** JSON with DEL and the C1 controls escaped too (JSON.stringify leaves them raw; a terminal would act on them). */
function safeJson(value: unknown, space?: number): string {
  return (JSON.stringify(value, null, space) ?? "null").replace(/[\u007f-\u009f\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
}
