// A call's request metadata, read from the HTTP/2 request headers on demand (most calls
// never look at it). Same reading as grpc-js's Metadata.fromHttp2Headers, so handlers get
// the same values from either server: `-bin` keys are base64 and may be comma-joined, the
// protocol's own headers are not metadata.
import type { IncomingHttpHeaders } from "node:http2";

const NOT_METADATA = new Set(["grpc-timeout", "grpc-encoding", "grpc-accept-encoding", "accept-encoding", "te", "content-type"]);

export type MetadataValue = string | Buffer;

/** What handlers read; grpc-js's Metadata has the same `get`, so code can take either. */
export interface MetadataReader {
  get(key: string): MetadataValue[];
}

export class RequestMetadata implements MetadataReader {
  readonly #headers: IncomingHttpHeaders;

  constructor(headers: IncomingHttpHeaders) {
    this.#headers = headers;
  }

  get(key: string): MetadataValue[] {
    const name = key.toLowerCase();
    if (name.startsWith(":") || NOT_METADATA.has(name)) return NO_VALUES;
    return metadataValues(name, this.#headers[name]);
  }
}

/**
 * The values of a key that is not there: one shared, frozen array (most keys a handler asks
 * for are absent, on every call). Read-only: a caller that pushed to it would throw.
 */
export const NO_VALUES: MetadataValue[] = Object.freeze([]) as unknown as MetadataValue[];

/** A metadata key's values as sent (`name` lower case): `-bin` ones decoded from base64, several of them comma-joined in one field. */
export function metadataValues(name: string, raw: string | string[] | undefined): MetadataValue[] {
  if (raw === undefined) return NO_VALUES;
  const values = Array.isArray(raw) ? raw : [raw];
  if (!name.endsWith("-bin")) return values;
  return values.flatMap((value) => value.split(",").map((part) => Buffer.from(part.trim(), "base64")));
}

/** Response headers or trailers a handler adds: a value per key, or several (sent as repeated fields, in order); `-bin` keys take a Buffer (sent as base64). */
export type ResponseMetadata = Readonly<Record<string, MetadataValue | readonly MetadataValue[]>>;

const asField = (value: MetadataValue): string => (typeof value === "string" ? value : value.toString("base64"));

/** `metadata` as HTTP/2 header fields, merged into `into`. */
export function addResponseMetadata(into: Record<string, string | number | string[]>, metadata: ResponseMetadata | undefined): void {
  if (metadata === undefined) return;
  for (const key of Object.keys(metadata)) {
    const value = metadata[key]!;
    into[key] = typeof value === "string" || Buffer.isBuffer(value) ? asField(value) : value.map(asField);
  }
}

/** `metadata` as (key, field value) pairs, a key once per value, each value as addResponseMetadata sends it (a `-bin` Buffer as base64). */
export function responseMetadataPairs(metadata: ResponseMetadata | undefined): Array<[string, string]> {
  const pairs: Array<[string, string]> = [];
  if (metadata === undefined) return pairs;
  for (const key of Object.keys(metadata)) {
    const value = metadata[key]!;
    if (typeof value === "string" || Buffer.isBuffer(value)) pairs.push([key, asField(value)]);
    else for (const one of value) pairs.push([key, asField(one)]);
  }
  return pairs;
}
