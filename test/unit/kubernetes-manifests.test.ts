// The manifests in deploy/kubernetes only work when their names, ports and env vars agree
// with each other and with what `keystate serve` reads, and kubectl checks none of that
// without a cluster. This test parses every YAML file there and checks those ties.
import test from "ava";
import { readdirSync, readFileSync } from "node:fs";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { parseAllDocuments } from "yaml";
import { SERVE_SETTINGS, type SettingSpec } from "../../host/cli/config.js";

/** Env vars the manifests may set only to build other values from ($(POD_IP)). */
const HELPER_ENV = new Set(["POD_IP"]);

const realSettings: readonly SettingSpec[] = Object.values(SERVE_SETTINGS as Record<string, SettingSpec>);
const settings = new Map<string, SettingSpec>();
for (const spec of realSettings) settings.set(spec.env, spec);

interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: { fieldRef?: { fieldPath: string }; secretKeyRef?: { name: string; key: string } };
}
interface Probe {
  httpGet?: { path?: string; port: string | number };
}
interface Container {
  name: string;
  command?: string[];
  args?: string[];
  env?: EnvVar[];
  ports?: Array<{ name?: string; containerPort: number }>;
  readinessProbe?: Probe;
  livenessProbe?: Probe;
  startupProbe?: Probe;
  lifecycle?: { preStop?: { exec?: { command: string[] }; sleep?: { seconds: number } } };
  volumeMounts?: Array<{ name: string; mountPath: string }>;
}
interface PodSpec {
  containers: Container[];
  terminationGracePeriodSeconds?: number;
  volumes?: Array<{ name: string; persistentVolumeClaim?: unknown }>;
}
interface Manifest {
  file: string;
  apiVersion?: string;
  kind?: string;
  metadata?: { name?: string };
  spec?: Record<string, unknown>;
  data?: Record<string, string>;
  stringData?: Record<string, string>;
}
interface Workload extends Manifest {
  spec: {
    selector?: { matchLabels?: Record<string, string> };
    serviceName?: string;
    template: { metadata?: { labels?: Record<string, string> }; spec: PodSpec };
    volumeClaimTemplates?: Array<{ metadata: { name: string } }>;
  };
}
interface ServicePort {
  name?: string;
  port: number;
  targetPort?: string | number;
}
interface Service extends Manifest {
  spec: { selector?: Record<string, string>; ports?: ServicePort[]; clusterIP?: string; publishNotReadyAddresses?: boolean };
}

const DIR = fileURLToPath(new URL("../../deploy/kubernetes/", import.meta.url));

function yamlFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return yamlFiles(path);
    return /\.ya?ml$/.test(entry.name) ? [path] : [];
  });
}

const problems: string[] = [];
const manifests: Manifest[] = yamlFiles(DIR).flatMap((path) => {
  const file = relative(DIR, path);
  return parseAllDocuments(readFileSync(path, "utf8")).flatMap((doc) => {
    for (const e of [...doc.errors, ...doc.warnings]) problems.push(`${file}: ${e.message}`);
    const value = doc.toJS() as Omit<Manifest, "file"> | null;
    return value === null ? [] : [{ ...value, file }];
  });
});
const of = <T extends Manifest>(kind: string) => manifests.filter((m) => m.kind === kind) as T[];
const workloads = manifests.filter((m) => ["Deployment", "StatefulSet", "DaemonSet"].includes(m.kind ?? "")) as Workload[];
const services = of<Service>("Service");
const secrets = of<Manifest>("Secret");
const containersOf = (w: Workload) => w.spec.template.spec.containers;
const commandLine = (c: Container) => [...(c.command ?? []), ...(c.args ?? [])];
const keystateContainers = workloads.flatMap((w) =>
  containersOf(w).filter((c) => commandLine(c).some((a) => a.endsWith("bin/keystate.js")) && commandLine(c).includes("serve")).map((c) => ({ w, c })),
);
const redisContainers = workloads.flatMap((w) => containersOf(w).filter((c) => commandLine(c).includes("redis-server")).map((c) => ({ w, c })));
const envOf = (c: Container) => new Map((c.env ?? []).map((e) => [e.name, e]));
const selects = (selector: Record<string, string> | undefined, w: Workload) =>
  selector !== undefined && Object.keys(selector).length > 0 && Object.entries(selector).every(([k, v]) => w.spec.template.metadata?.labels?.[k] === v);
/** The container port a Service targetPort or probe port names, in any container of the pod. */
const containerPort = (w: Workload, port: string | number) =>
  containersOf(w).flatMap((c) => c.ports ?? []).find((p) => (typeof port === "number" ? p.containerPort === port : p.name === port))?.containerPort;
const settingValue = (c: Container, env: string) => envOf(c).get(env)?.value ?? settings.get(env)?.defaultValue;

test("every YAML file parses into named Kubernetes objects, each name used once per kind", (t) => {
  t.deepEqual(problems, []);
  t.true(manifests.length > 0);
  const seen = new Set<string>();
  for (const m of manifests) {
    t.truthy(m.apiVersion && m.kind && m.metadata?.name, `${m.file}: a document without apiVersion, kind or metadata.name`);
    const id = `${m.kind}/${m.metadata?.name}`;
    t.false(seen.has(id), `${m.file}: ${id} is defined twice; the later one silently replaces the first`);
    seen.add(id);
  }
  t.true(keystateContainers.length > 0, "no container runs `bin/keystate.js serve`");
  t.true(redisContainers.length > 0, "no container runs redis-server");
});

test("each workload selects its own pod template", (t) => {
  for (const w of workloads) t.true(selects(w.spec.selector?.matchLabels, w), `${w.file}: ${w.kind}/${w.metadata?.name} selector vs template labels`);
});

test("every Service selects the pods of a workload and targets ports those pods declare", (t) => {
  t.true(services.length > 0);
  for (const s of services) {
    const targets = workloads.filter((w) => selects(s.spec.selector, w));
    t.true(targets.length > 0, `${s.file}: Service ${s.metadata?.name} selects no pod template`);
    for (const w of targets) {
      for (const p of s.spec.ports ?? []) {
        const target = p.targetPort ?? p.port;
        t.not(containerPort(w, target), undefined, `${s.file}: Service ${s.metadata?.name} port ${p.name ?? p.port} targets ${target}, not a port of ${w.metadata?.name}`);
      }
    }
  }
});

test("the headless node Service lists every Keystate pod, ready or not", (t) => {
  const nodes = services.find((s) => s.metadata?.name === "keystate-nodes");
  t.truthy(nodes);
  t.is(nodes?.spec.clusterIP, "None");
  t.true(nodes?.spec.publishNotReadyAddresses);
  for (const { w } of keystateContainers) t.true(selects(nodes?.spec.selector, w));
});

test("the Keystate container sets only settings Keystate reads, with values it accepts", (t) => {
  for (const { c } of keystateContainers) {
    for (const e of c.env ?? []) {
      if (HELPER_ENV.has(e.name)) continue;
      const spec = settings.get(e.name);
      if (!spec) {
        t.fail(`${c.name} sets ${e.name}, which keystate serve does not read`);
        continue;
      }
      if (e.value === undefined) continue;
      if (spec.kind === "number") t.regex(e.value, /^\d+$/, `${e.name} must be a whole number`);
      if (spec.kind === "boolean") t.regex(e.value, /^(true|false|1|0)$/, `${e.name}: anything else silently means false`);
    }
    const flags = new Set([...settings.values()].map((s) => s.flag));
    for (const arg of commandLine(c).filter((a) => a.startsWith("--"))) {
      t.true(flags.has(arg.slice(2).split("=")[0]!), `${c.name}: unknown serve flag ${arg}`);
    }
    t.not(settingValue(c, "KEYSTATE_INSECURE_ADMIN"), "true", "the admin API must keep its token");
    t.not(settingValue(c, "KEYSTATE_INSECURE_ADMIN"), "1", "the admin API must keep its token");
  }
});

test("$(VAR) references only use variables declared earlier in the same env list", (t) => {
  const refs = (s: string) => [...s.matchAll(/(?<!\$)\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g)].map((m) => m[1]!);
  for (const w of workloads) {
    for (const c of containersOf(w)) {
      const declared = new Set<string>();
      for (const e of c.env ?? []) {
        for (const name of refs(e.value ?? "")) t.true(declared.has(name), `${c.name}: ${e.name} uses $(${name}) before it is declared; it would stay literal`);
        declared.add(e.name);
      }
      for (const arg of commandLine(c)) for (const name of refs(arg)) t.true(declared.has(name), `${c.name}: command uses undeclared $(${name})`);
    }
  }
});

test("Keystate binds where its ports, peers and probes expect it, with a node id per pod", (t) => {
  for (const { w, c } of keystateContainers) {
    const env = envOf(c);
    t.true(["0.0.0.0", "::"].includes(settingValue(c, "KEYSTATE_HOST") ?? ""), "bound to loopback, nothing outside the pod reaches it");
    const grpc = Number(settingValue(c, "KEYSTATE_GRPC_PORT"));
    const http = Number(settingValue(c, "KEYSTATE_HTTP_PORT"));
    t.is(containerPort(w, "grpc"), grpc, "container port grpc vs KEYSTATE_GRPC_PORT");
    t.is(containerPort(w, "http"), http, "container port http vs KEYSTATE_HTTP_PORT");
    // Peers dial the advertised address, so it must be this pod's own IP and gRPC port.
    const advertise = (env.get("KEYSTATE_ADVERTISE")?.value ?? "").replace("$(KEYSTATE_GRPC_PORT)", String(grpc));
    const ipVar = /^\$\(([A-Za-z_][A-Za-z0-9_]*)\):(\d+)$/.exec(advertise);
    t.truthy(ipVar, `KEYSTATE_ADVERTISE "${advertise}" is not $(POD_IP_VAR):PORT`);
    t.is(env.get(ipVar?.[1] ?? "")?.valueFrom?.fieldRef?.fieldPath, "status.podIP");
    t.is(Number(ipVar?.[2]), grpc);
    // A literal id would be shared by every replica, and a second live node with it is refused.
    const nodeId = env.get("KEYSTATE_NODE_ID");
    if (nodeId) t.true(["metadata.name", "metadata.uid"].includes(nodeId.valueFrom?.fieldRef?.fieldPath ?? ""), "KEYSTATE_NODE_ID must differ per pod");
    const probes: Array<[string, Probe | undefined, string]> = [
      ["readinessProbe", c.readinessProbe, "/readyz"],
      ["livenessProbe", c.livenessProbe, "/healthz"],
      ["startupProbe", c.startupProbe, "/healthz"],
    ];
    for (const [kind, probe, path] of probes) {
      if (kind === "startupProbe" && !probe) continue;
      t.is(probe?.httpGet?.path, path, `${kind} path`);
      t.is(containerPort(w, probe?.httpGet?.port ?? -1), http, `${kind} must hit the admin HTTP port`);
    }
  }
});

test("the admin token comes from the example Secret's name and key", (t) => {
  for (const { c } of keystateContainers) {
    const token = envOf(c).get("KEYSTATE_ADMIN_TOKEN");
    t.is(token?.value, undefined, "a token written in the manifest is public");
    const ref = token?.valueFrom?.secretKeyRef;
    t.truthy(ref, "KEYSTATE_ADMIN_TOKEN must come from a secretKeyRef");
    const secret = secrets.find((s) => s.metadata?.name === ref?.name && s.file.endsWith("secret.example.yaml"));
    t.truthy(secret, `no Secret ${ref?.name} in secret.example.yaml`);
    t.true((ref?.key ?? "") in { ...secret?.data, ...secret?.stringData }, `Secret ${ref?.name} has no key ${ref?.key}`);
  }
});

test("a stopping node has time for preStop and then two leases of hand-off", (t) => {
  for (const { w, c } of keystateContainers) {
    const grace = w.spec.template.spec.terminationGracePeriodSeconds ?? 30; // Kubernetes' default
    const preStop = c.lifecycle?.preStop;
    let sleep = 0;
    if (preStop) {
      const shell = preStop.exec?.command.join(" ") ?? "";
      const seconds = preStop.sleep?.seconds ?? Number(/^(?:\/bin\/)?(?:sh -c )?sleep (\d+)$/.exec(shell)?.[1]);
      t.true(Number.isInteger(seconds), `preStop is not a sleep this test understands: ${shell}`);
      sleep = seconds;
    }
    const leaseSeconds = Number(settingValue(c, "KEYSTATE_LEASE_MS")) / 1000;
    t.true(sleep < grace, `preStop sleeps ${sleep} s of a ${grace} s grace period`);
    t.true(grace - sleep >= 2 * leaseSeconds, `${grace - sleep} s after preStop is less than two ${leaseSeconds} s leases`);
  }
});

test("Redis keeps an append-only file on a persistent volume", (t) => {
  for (const { w, c } of redisContainers) {
    const line = commandLine(c);
    const option = (name: string) => {
      const i = line.indexOf(`--${name}`);
      return i < 0 ? undefined : line[i + 1];
    };
    t.is(option("appendonly"), "yes");
    t.true(["everysec", "always", undefined].includes(option("appendfsync")), "appendfsync no leaves durability to the OS");
    const dir = option("dir") ?? "/data"; // the redis image's working directory
    const claims = new Set([
      ...(w.spec.volumeClaimTemplates ?? []).map((v) => v.metadata.name),
      ...(w.spec.template.spec.volumes ?? []).filter((v) => v.persistentVolumeClaim).map((v) => v.name),
    ]);
    const mount = (c.volumeMounts ?? []).find((m) => dir === m.mountPath || dir.startsWith(m.mountPath.replace(/\/?$/, "/")));
    t.truthy(mount, `Redis dir ${dir} is on no volume mount`);
    t.true(claims.has(mount?.name ?? ""), `Redis dir ${dir} is not on a PersistentVolumeClaim`);
    if (w.kind === "StatefulSet") t.truthy(services.find((s) => s.metadata?.name === w.spec.serviceName), "StatefulSet serviceName names no Service");
  }
});

test("KEYSTATE_REDIS_URL reaches redis-server through its Service", (t) => {
  for (const { c } of keystateContainers) {
    const urls = (settingValue(c, "KEYSTATE_REDIS_URL") ?? "").split(",");
    for (const raw of urls) {
      const url = new URL(raw);
      t.true(["redis:", "rediss:"].includes(url.protocol), raw);
      const service = services.find((s) => s.metadata?.name === url.hostname.split(".")[0]);
      t.truthy(service, `${raw}: no Service ${url.hostname}`);
      const port = service?.spec.ports?.find((p) => p.port === Number(url.port || 6379));
      t.truthy(port, `${raw}: Service ${service?.metadata?.name} has no port ${url.port || 6379}`);
      const redis = redisContainers.filter(({ w }) => selects(service?.spec.selector, w));
      t.true(redis.length > 0, `Service ${service?.metadata?.name} does not select a redis-server pod`);
      for (const { w, c: r } of redis) {
        const line = commandLine(r);
        const listens = Number(line.includes("--port") ? line[line.indexOf("--port") + 1] : 6379);
        t.is(containerPort(w, port?.targetPort ?? port?.port ?? -1), listens, "the Service's target port is not where redis-server listens");
      }
    }
  }
});

