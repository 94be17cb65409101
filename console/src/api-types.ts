// The shapes of the admin API's answers, as the console reads them
// (host/ingress/admin-http.ts, services-api.ts, host/inspect, host/cluster/cluster-node.ts).

export interface ModuleVersion {
  readonly version: number;
  readonly hash: string;
  readonly size: number;
  readonly deployedAt: string;
}

export interface ModuleSummary {
  readonly name: string;
  readonly version: number | null;
  readonly hash: string | null;
  readonly size: number | null;
  readonly services: readonly string[];
  readonly versions: readonly ModuleVersion[];
}

export interface MethodDescription {
  readonly name: string;
  readonly inputType: string;
  readonly outputType: string;
  readonly clientStreaming: boolean;
  readonly serverStreaming: boolean;
  readonly requestTemplate: Record<string, unknown>;
}

export interface ServiceDescription {
  readonly service: string;
  readonly kind: string;
  readonly module: { readonly name: string; readonly version: number };
  readonly methods: readonly MethodDescription[];
}

export interface ClusterNodeView {
  readonly id: string;
  readonly address: string;
  readonly shards: readonly number[];
  readonly alive: boolean;
  readonly draining: boolean;
}

export interface ClusterView {
  readonly cluster: string;
  readonly shardCount: number;
  readonly self: string;
  readonly nodes: readonly ClusterNodeView[];
}

export interface EntityView {
  readonly service: string;
  readonly kind: string;
  readonly module: { readonly name: string; readonly version: number };
  readonly key: string;
  readonly persistenceId: string;
  /** The last event's seq (event-sourced), the stored version (value), null (replicated). */
  readonly sequence: number | null;
  readonly state: unknown;
  readonly resident: boolean;
  readonly exists: boolean;
  /** Why the state is not shown decoded (bytes the module could not decode). */
  readonly note?: string;
}

export interface EntityEvent {
  readonly seq: number;
  readonly type: string;
  readonly payload: unknown;
  readonly time?: string;
  readonly note?: string;
}

export interface EventPage {
  readonly service: string;
  readonly key: string;
  readonly from: number;
  readonly limit: number;
  readonly events: readonly EntityEvent[];
  readonly lastSeq: number;
  readonly more: boolean;
  /** Where the next page starts, when there is one. */
  readonly nextFrom?: number;
}

export interface DeployedModule {
  readonly name: string;
  readonly version: number;
  readonly hash: string;
  readonly size: number;
  readonly services: readonly string[];
}
