// gRPC ingress: one grpc-js server on one port serves every deployed service. Services
// are added when a module that defines them is deployed and removed when no module does,
// without a restart; each call resolves the current module version when it arrives.
// Server reflection (v1 and v1alpha) describes whatever is served at that moment.
import * as grpc from "@grpc/grpc-js";
import type { ModuleRegistry, ServiceChange } from "../runtime/module-registry.js";
import type { ServiceRuntime } from "../entities/service-runtime.js";
import type { Router } from "../entities/router.js";
import { Metrics } from "../metrics.js";
import { streamingHandler } from "./grpc-streaming.js";
import { addReflection } from "./reflection.js";
import { ReflectionIndex } from "./reflection-index.js";
import { unaryHandler } from "./grpc-unary.js";

const passthrough = {
  serialize: (value: Buffer): Buffer => value,
  deserialize: (value: Buffer): Buffer => value,
};

export interface GrpcIngressOptions {
  readonly host: string;
  readonly port: number;
  readonly maxReceiveMessageBytes?: number;
  /** Where call counts and latencies go; a private registry when absent. */
  readonly metrics?: Metrics;
}

export class GrpcIngress {
  readonly #server: grpc.Server;
  readonly #router: Router;
  readonly #registry: ModuleRegistry;
  readonly #metrics: Metrics;
  /** Built on the first reflection request after a change: clients rarely ask, and it costs ~9 ms per module. */
  #reflection: ReflectionIndex | undefined;
  /** The definitions registered with grpc-js, by service name (needed to remove them). */
  readonly #served = new Map<string, grpc.ServiceDefinition>();
  #port = 0;

  constructor(registry: ModuleRegistry, router: Router, options: Pick<GrpcIngressOptions, "maxReceiveMessageBytes" | "metrics"> = {}) {
    this.#router = router;
    this.#registry = registry;
    this.#metrics = options.metrics ?? new Metrics({ processMetrics: false });
    this.#server = new grpc.Server({
      "grpc.max_receive_message_length": options.maxReceiveMessageBytes ?? 4 * 1024 * 1024,
      // Nothing serves channelz here, and with it on grpc-js keeps per-call counters,
      // closures and timestamps for it on every call.
      "grpc.enable_channelz": 0,
    });
    addReflection(this.#server, () => (this.#reflection ??= new ReflectionIndex(this.#registry.modules, [...this.#served.keys()])));
    registry.onServicesChanged((change) => this.#apply(change));
  }

  get port(): number {
    return this.#port;
  }

  async listen(host: string, port: number): Promise<number> {
    this.#port = await new Promise<number>((resolve, reject) => {
      this.#server.bindAsync(`${host}:${port}`, grpc.ServerCredentials.createInsecure(), (err, bound) => (err ? reject(err) : resolve(bound)));
    });
    return this.#port;
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => this.#server.tryShutdown(() => resolve()));
  }

  forceClose(): void {
    this.#server.forceShutdown();
  }

  #apply(change: ServiceChange): void {
    for (const name of change.removed) this.#remove(name);
    for (const service of change.added) {
      // A new version may add or drop methods, so its definition replaces the old one.
      // Calls in flight keep the ServiceRuntime they resolved and finish on it.
      this.#remove(service.name);
      const definition = this.#definition(service);
      this.#server.addService(definition, this.#handlers(service));
      this.#served.set(service.name, definition);
    }
    this.#reflection = undefined;
  }

  #remove(serviceName: string): void {
    const definition = this.#served.get(serviceName);
    if (!definition) return;
    this.#server.removeService(definition);
    this.#served.delete(serviceName);
  }

  #definition(service: ServiceRuntime): grpc.ServiceDefinition {
    const definition: Record<string, grpc.MethodDefinition<Buffer, Buffer>> = {};
    for (const method of service.methods.values()) {
      definition[method.name] = {
        path: method.path,
        requestStream: method.clientStreaming,
        responseStream: method.serverStreaming,
        requestSerialize: passthrough.serialize,
        requestDeserialize: passthrough.deserialize,
        responseSerialize: passthrough.serialize,
        responseDeserialize: passthrough.deserialize,
        originalName: method.name,
      };
    }
    return definition;
  }

  #handlers(service: ServiceRuntime): grpc.UntypedServiceImplementation {
    const handlers: grpc.UntypedServiceImplementation = {};
    for (const method of service.methods.values()) {
      if (method.clientStreaming || method.serverStreaming) {
        // grpc-js calls each shape with other arguments: a streaming method must get a streaming handler.
        handlers[method.name] = streamingHandler(this.#router, this.#metrics, service, method);
        continue;
      }
      handlers[method.name] = unaryHandler({ router: this.#router, metrics: this.#metrics, registry: this.#registry }, service.name, method.name);
    }
    return handlers;
  }
}
