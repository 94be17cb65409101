// protobufjs's descriptor extension (Root.fromDescriptor, with descriptor.proto's own types),
// loaded on first use. Loading it builds descriptor.proto's reflection, ~9 ms of a node's
// start (measured under --cpu-prof, 2026-12-06) that only HTTP/JSON transcoding and the
// entity inspector need: the gRPC path, deploys and server reflection do without it.
let loading: Promise<void> | undefined;

/** Resolves once protobuf.Root.fromDescriptor is there (the extension adds it to protobufjs's Root). */
export function loadDescriptorExtension(): Promise<void> {
  return (loading ??= import("protobufjs/ext/descriptor.js").then(() => undefined));
}
