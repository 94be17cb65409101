// google.api.http rules compiled into a route table: path templates ("/v1/{name=shelves/*}/books",
// "{field}", "*", "**", ":verb") parsed once per deploy, matched per request without regexes,
// so a template can never make matching slow.
import type { MethodModel } from "../runtime/service-model.js";

type Segment = { readonly kind: "literal"; readonly value: string } | { readonly kind: "any" } | { readonly kind: "rest" };

interface Variable {
  /** Field path in the request message, e.g. ["shelf", "name"]. */
  readonly fieldPath: readonly string[];
  /** The span of template segments the variable captures: [start, end). */
  readonly start: number;
  readonly end: number;
}

export interface PathTemplate {
  readonly source: string;
  readonly segments: readonly Segment[];
  readonly variables: readonly Variable[];
  readonly verb: string | undefined;
}

/** One HTTP binding of a gRPC method, as the annotation (or the default route) declares it. */
export interface HttpBinding {
  readonly httpMethod: string;
  readonly template: PathTemplate;
  /** undefined: no body; "*": the whole request; otherwise the request field path the body fills. */
  readonly body: string | undefined;
  /** The reply field path the response body is (undefined: the whole reply). */
  readonly responseBody: string | undefined;
  readonly service: string;
  readonly method: string;
}

export class TemplateError extends Error {}

/** Parses the google.api.http path template grammar; throws TemplateError naming the problem. */
export function parseTemplate(source: string): PathTemplate {
  if (!source.startsWith("/")) throw new TemplateError(`path template "${source}" must start with "/"`);
  let text = source.slice(1);
  let verb: string | undefined;
  // The verb is a ":" after the last "/" that is outside any {variable}.
  const lastSlash = text.lastIndexOf("/");
  const colon = text.indexOf(":", lastSlash + 1);
  if (colon >= 0 && !text.slice(colon).includes("}")) {
    verb = text.slice(colon + 1);
    text = text.slice(0, colon);
    if (!verb) throw new TemplateError(`path template "${source}" has an empty verb`);
  }
  const segments: Segment[] = [];
  const variables: Variable[] = [];
  for (const part of splitOutsideBraces(text, source)) {
    if (part.startsWith("{")) {
      if (!part.endsWith("}")) throw new TemplateError(`path template "${source}": unclosed variable ${part}`);
      const inner = part.slice(1, -1);
      const eq = inner.indexOf("=");
      const fieldPath = (eq < 0 ? inner : inner.slice(0, eq)).split(".");
      if (fieldPath.some((name) => !/^[A-Za-z_][A-Za-z0-9_]*$/.test(name))) {
        throw new TemplateError(`path template "${source}": "${inner}" is not a field path`);
      }
      const start = segments.length;
      const pattern = eq < 0 ? "*" : inner.slice(eq + 1);
      for (const sub of pattern.split("/")) segments.push(plainSegment(sub, source));
      variables.push({ fieldPath, start, end: segments.length });
    } else {
      segments.push(plainSegment(part, source));
    }
  }
  const restAt = segments.findIndex((s) => s.kind === "rest");
  if (restAt >= 0 && restAt !== segments.length - 1) throw new TemplateError(`path template "${source}": "**" must be the last segment`);
  return { source, segments, variables, verb };
}

function splitOutsideBraces(text: string, source: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let current = "";
  for (const ch of text) {
    if (ch === "{") depth++;
    if (ch === "}") depth--;
    if (depth < 0 || depth > 1) throw new TemplateError(`path template "${source}" has unbalanced braces`);
    if (ch === "/" && depth === 0) {
      parts.push(current);
      current = "";
    } else {
      current += ch;
    }
  }
  if (depth !== 0) throw new TemplateError(`path template "${source}" has unbalanced braces`);
  parts.push(current);
  return parts;
}

function plainSegment(part: string, source: string): Segment {
  if (part === "*") return { kind: "any" };
  if (part === "**") return { kind: "rest" };
  if (part === "" || /[{}*=]/.test(part)) throw new TemplateError(`path template "${source}": bad segment "${part}"`);
  return { kind: "literal", value: part };
}

interface RuleObject {
  get?: string;
  put?: string;
  post?: string;
  delete?: string;
  patch?: string;
  custom?: { kind?: string; path?: string };
  body?: string;
  responseBody?: string;
  additionalBindings?: RuleObject[];
}

/** Every binding of `method`: its annotation, its additional bindings, and the default `POST /pkg.Service/Method`. */
export function bindingsOf(method: MethodModel): { bindings: HttpBinding[]; errors: string[] } {
  const bindings: HttpBinding[] = [];
  const errors: string[] = [];
  const add = (httpMethod: string, path: string, body: string | undefined, responseBody: string | undefined) => {
    try {
      bindings.push({ httpMethod, template: parseTemplate(path), body, responseBody, service: method.service, method: method.name });
    } catch (err) {
      errors.push(`${method.service}.${method.name}: ${(err as Error).message}`);
    }
  };
  const rule = method.options[".google.api.http"] as RuleObject | undefined;
  const addRule = (r: RuleObject) => {
    const nonEmpty = (v: string | undefined) => (v ? v : undefined);
    for (const verb of ["get", "put", "post", "delete", "patch"] as const) {
      if (r[verb]) add(verb.toUpperCase(), r[verb]!, nonEmpty(r.body), nonEmpty(r.responseBody));
    }
    if (r.custom?.kind && r.custom.path) add(r.custom.kind.toUpperCase(), r.custom.path, nonEmpty(r.body), nonEmpty(r.responseBody));
  };
  if (rule) {
    addRule(rule);
    // Additional bindings may not nest further (google.api.http says so); nested ones are ignored.
    for (const extra of rule.additionalBindings ?? []) addRule(extra);
  }
  add("POST", `/${method.service}/${method.name}`, "*", undefined);
  return { bindings, errors };
}

export type RouteMatch =
  | { readonly kind: "match"; readonly binding: HttpBinding; readonly params: ReadonlyArray<{ fieldPath: readonly string[]; value: string }> }
  | { readonly kind: "wrong-method"; readonly allowed: readonly string[] }
  | { readonly kind: "none" };

/** Immutable: a deploy builds a new table and swaps it in, so a request sees one consistent set. */
export class RouteTable {
  readonly #bindings: HttpBinding[];

  /** Earlier bindings win over later ones with the same method and template. */
  constructor(bindings: readonly HttpBinding[]) {
    // Most specific first: literals before "*" before "**", then longer before shorter.
    this.#bindings = [...bindings].sort((a, b) => compareSpecificity(a.template, b.template));
  }

  get size(): number {
    return this.#bindings.length;
  }

  /** `segments` are the request path split on "/" and percent-decoded, without the leading empty one. */
  match(httpMethod: string, segments: readonly string[]): RouteMatch {
    const allowed = new Set<string>();
    for (const binding of this.#bindings) {
      const params = matchTemplate(binding.template, segments);
      if (!params) continue;
      if (binding.httpMethod === httpMethod) return { kind: "match", binding, params };
      allowed.add(binding.httpMethod);
    }
    return allowed.size > 0 ? { kind: "wrong-method", allowed: [...allowed] } : { kind: "none" };
  }
}

function rank(segment: Segment | undefined): number {
  return segment === undefined ? 3 : segment.kind === "literal" ? 0 : segment.kind === "any" ? 1 : 2;
}

function compareSpecificity(a: PathTemplate, b: PathTemplate): number {
  for (let i = 0; i < Math.max(a.segments.length, b.segments.length); i++) {
    const diff = rank(a.segments[i]) - rank(b.segments[i]);
    if (diff !== 0) return diff;
  }
  return (a.verb ? 0 : 1) - (b.verb ? 0 : 1);
}

function matchTemplate(template: PathTemplate, input: readonly string[]): Array<{ fieldPath: readonly string[]; value: string }> | undefined {
  let segments = input;
  if (template.verb !== undefined) {
    const last = segments[segments.length - 1] ?? "";
    if (!last.endsWith(`:${template.verb}`)) return undefined;
    segments = [...segments.slice(0, -1), last.slice(0, -template.verb.length - 1)];
  }
  const pattern = template.segments;
  const hasRest = pattern[pattern.length - 1]?.kind === "rest";
  if (hasRest ? segments.length < pattern.length - 1 : segments.length !== pattern.length) return undefined;
  for (let i = 0; i < pattern.length; i++) {
    const p = pattern[i]!;
    if (p.kind === "rest") break;
    const s = segments[i]!;
    if (p.kind === "literal" ? s !== p.value : s === "") return undefined;
  }
  return template.variables.map((v) => {
    // A variable ending in "**" takes every remaining segment.
    const end = v.end === pattern.length && hasRest ? segments.length : v.end;
    return { fieldPath: v.fieldPath, value: segments.slice(v.start, end).join("/") };
  });
}
