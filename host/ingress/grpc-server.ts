// gRPC ingress: one server on one port serves every deployed service. Services are added
// when a module that defines them is deployed and removed when no module does, without a
// restart; each call resolves the current module version when it arrives. Server
// reflection (v1 and v1alpha) describes whatever is served at that moment.
import type { ModuleRegistry, ServiceChange } from "../runtime/module-registry.js";
import type { ServiceRuntime } from "../entities/service-runtime.js";
import type { Router } from "../entities/router.js";
import { Metrics } from "../metrics.js";
import { GrpcServer, type UnaryMethod } from "../grpc-http2/server.js";
import { streamingHandler } from "./grpc-streaming.js";
import { addReflection } from "./reflection.js";
import { ReflectionIndex } from "./reflection-index.js";
import { unaryHandler } from "./grpc-unary.js";

export interface GrpcIngressOptions {
  readonly maxReceiveMessageBytes?: number;
  /** Where call counts and latencies go; a private registry when absent. */
  readonly metrics?: Metrics;
}

export class GrpcIngress {
  readonly #server: GrpcServer;
  readonly #router: Router;
  readonly #registry: ModuleRegistry;
  readonly #metrics: Metrics;
  /** Built on the first reflection request after a change: clients rarely ask, and it costs ~9 ms per module. */
  #reflection: ReflectionIndex | undefined;
  /** The method paths served, by service name (needed to remove them). */
  readonly #served = new Map<string, string[]>();
  /** The unary methods among them, by path: what the cluster's peer link serves as well. */
  readonly #unary = new Map<string, UnaryMethod>();
  #port = 0;
  readonly maxReceiveMessageBytes: number;

  constructor(registry: ModuleRegistry, router: Router, options: GrpcIngressOptions = {}) {
    this.#router = router;
    this.#registry = registry;
    this.#metrics = options.metrics ?? new Metrics({ processMetrics: false });
    this.maxReceiveMessageBytes = options.maxReceiveMessageBytes ?? 4 * 1024 * 1024;
    this.#server = new GrpcServer({ maxReceiveMessageBytes: this.maxReceiveMessageBytes });
    addReflection(this.#server, () => (this.#reflection ??= new ReflectionIndex(this.#registry.modules, [...this.#served.keys()])));
    registry.onServicesChanged((change) => this.#apply(change));
  }

  get port(): number {
    return this.#port;
  }

  async listen(host: string, port: number): Promise<number> {
    this.#port = await this.#server.listen(host, port);
    return this.#port;
  }

  /** The unary handler served at `path` now, if any: a call over the peer link runs it as a gRPC call would. */
  unaryMethod(path: string): UnaryMethod | undefined {
    return this.#unary.get(path);
  }

  close(): Promise<void> {
    return this.#server.close();
  }

  forceClose(): void {
    this.#server.forceClose();
  }

  #apply(change: ServiceChange): void {
    for (const name of change.removed) this.#remove(name);
    for (const service of change.added) {
      // A new version may add or drop methods, so its methods replace the old ones.
      // Calls in flight keep the ServiceRuntime they resolved and finish on it.
      this.#remove(service.name);
      this.#add(service);
    }
    this.#reflection = undefined;
  }

  #add(service: ServiceRuntime): void {
    const paths: string[] = [];
    for (const method of service.methods.values()) {
      if (method.clientStreaming || method.serverStreaming) {
        this.#server.add(method.path, streamingHandler(this.#router, this.#metrics, service, method));
      } else {
        const handler = unaryHandler({ router: this.#router, metrics: this.#metrics, registry: this.#registry }, service.name, method.name);
        this.#server.add(method.path, handler);
        this.#unary.set(method.path, handler);
      }
      paths.push(method.path);
    }
    this.#served.set(service.name, paths);
  }

  #remove(serviceName: string): void {
    for (const path of this.#served.get(serviceName) ?? []) {
      this.#server.remove(path);
      this.#unary.delete(path);
    }
    this.#served.delete(serviceName);
  }
}
