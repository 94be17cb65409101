// Forwarding over the peer link, and without it: node A has a peer link (the default), node B
// runs with --peer-port off (as a node of an older version would, during a rolling upgrade).
// A forwards to B over B's gRPC port, B forwards to A over A's peer link; every call through
// either node is answered with the right value, and each node's metrics say which hop it used.
// A forwarded call's deadline and its owner's failure status travel over the peer link too.
import test from "ava";
import { status } from "@grpc/grpc-js";
import {
  clusterView,
  counterClient,
  deployExamples,
  keyOwnedBy,
  settledOn,
  startClusterNode,
  stopAll,
  waitForCluster,
  waitForHeldBy,
  waitForServices,
  type ClusterNodeProcess,
} from "../helpers/cluster-nodes.js";
import type { ContractClient } from "../helpers/grpc-client.js";
import { scrapeMetrics } from "../helpers/metrics-scrape.js";
import { startRedis } from "../helpers/redis-server.js";

const COUNTER_PID = "counter";
const KEYS = 40;

const viaTransport = (samples: Map<string, number>, transport: string) =>
  samples.get(`keystate_cluster_forwards_by_transport_total{transport="${transport}"}`) ?? 0;

test.serial("a node with a peer link is reached over it, one without over its gRPC port; every forwarded call is answered right", async (t) => {
  const redis = await startRedis();
  t.teardown(() => redis.stop());
  const cluster = `peer-${process.pid}`;
  const nodes: ClusterNodeProcess[] = [];
  const clients: ContractClient[] = [];
  t.teardown(async () => {
    for (const client of clients) client.close();
    await stopAll(nodes);
  });
  nodes.push(await startClusterNode({ redisUrl: redis.url, cluster, nodeId: "peer-a" }));
  nodes.push(await startClusterNode({ redisUrl: redis.url, cluster, nodeId: "peer-b", extraArgs: ["--peer-port", "off"] }));
  const [a, b] = nodes as [ClusterNodeProcess, ClusterNodeProcess];
  const view = await waitForCluster(a, settledOn(["peer-a", "peer-b"]));
  const byId = new Map(view.nodes.map((n) => [n.id, n]));
  t.regex(byId.get("peer-a")!.peerAddress, /^127\.0\.0\.1:\d+$/);
  t.not(byId.get("peer-a")!.peerAddress, byId.get("peer-a")!.address);
  t.is(byId.get("peer-b")!.peerAddress, "");
  await deployExamples(a);
  await waitForServices(nodes);
  const held = await waitForHeldBy(nodes);
  const viaA = counterClient(a);
  const viaB = counterClient(b);
  clients.push(viaA, viaB);

  // Keys on both nodes' shards, each increased once through A and twice through B.
  const keys = Array.from({ length: KEYS }, (_, i) => `peer-key-${i}`);
  await Promise.all(keys.map(async (key) => {
    await viaA.methods.Increase!({ counterId: key, value: 1 });
    await viaB.methods.Increase!({ counterId: key, value: 2 });
  }));
  for (const key of keys) {
    const [fromA, fromB] = await Promise.all([viaA.methods.Get!({ counterId: key }), viaB.methods.Get!({ counterId: key })]);
    t.is(Number((fromA as { value: number | string }).value), 3, key);
    t.is(Number((fromB as { value: number | string }).value), 3, key);
  }
  const metricsA = (await scrapeMetrics(a.adminUrl)).samples;
  const metricsB = (await scrapeMetrics(b.adminUrl)).samples;
  t.true(viaTransport(metricsA, "grpc") > 0, "A forwarded to B over B's gRPC port");
  t.is(viaTransport(metricsA, "peer"), 0);
  t.true(viaTransport(metricsB, "peer") > 0, "B forwarded to A over A's peer link");
  t.is(viaTransport(metricsB, "grpc"), 0);

  // Through B to a key A owns: the owner's status comes back over the peer link as it was.
  const onA = keyOwnedBy(held, "peer-a", COUNTER_PID, "peer-owned-");
  const missing = await viaB.methods.Increase!({ counterId: onA, value: 1 }, { deadlineMs: 1 }).then(() => undefined, (err: { code: number }) => err.code);
  t.true(missing === undefined || missing === status.DEADLINE_EXCEEDED, `a 1 ms deadline: OK or DEADLINE_EXCEEDED, got ${missing}`);
  const empty = await viaB.methods.Increase!({ counterId: "" }).then(() => undefined, (err: { code: number; details: string }) => err);
  t.truthy(empty, "an empty entity key is refused");
  t.is((empty as { code: number }).code, status.INVALID_ARGUMENT);
  t.deepEqual((await clusterView(b)).nodes.map((n) => n.id).sort(), ["peer-a", "peer-b"]);
});
