import assert from "node:assert/strict";
import { test } from "node:test";
import { KUBERNETES_RELEASES } from "../../setup/catalogue.js";
import YAML from "yaml";
import { coreDnsWorkload } from "./addon-manifests.js";
import { apiServerCommands, kubeletCommand } from "./component-commands.js";
import { CONTROL_PLANE_NODE_LABEL, STARTING_TAINT } from "./component-configs.js";
import { CONTROL_PLANE } from "./components.js";
import { ClusterLayout } from "./layout.js";
import type { ClusterNetwork, NodeNetwork } from "./network.js";

const layout = new ClusterLayout("c1", "/data/clusters");
const net = {
  nodes: [{ name: "c1-control-plane", ip: "172.30.7.2", netnsPath: "/run/netns/tk-c1-cp" }],
  clusterCidr: "10.200.0.0/16",
} as unknown as ClusterNetwork;

function apiServerFlags(minor: string): Map<string, string> {
  const release = KUBERNETES_RELEASES.find((r) => r.minor === minor)!;
  const apiServer = apiServerCommands({
    clusterId: "c1",
    release,
    kubeletRelease: release,
    layout,
    net,
    clusterDomain: "clusters.example",
  }).find((c) => c.name === CONTROL_PLANE.apiServer)!;
  return new Map(
    apiServer.args.map((a) => {
      const [flag, ...value] = a.split("=");
      return [flag, value.join("=")];
    }),
  );
}

for (const minor of ["1.34", "1.37"]) {
  test(`the ${minor} apiserver proxies aggregated APIs with the front-proxy certificate and kubeadm's request headers`, () => {
    const flags = apiServerFlags(minor);
    assert.equal(flags.get("--requestheader-client-ca-file"), layout.pki("front-proxy-ca.crt"));
    assert.equal(flags.get("--requestheader-allowed-names"), "front-proxy-client");
    assert.equal(flags.get("--requestheader-username-headers"), "X-Remote-User");
    assert.equal(flags.get("--requestheader-group-headers"), "X-Remote-Group");
    assert.equal(flags.get("--requestheader-extra-headers-prefix"), "X-Remote-Extra-");
    assert.equal(flags.get("--proxy-client-cert-file"), layout.pki("front-proxy-client.crt"));
    assert.equal(flags.get("--proxy-client-key-file"), layout.pki("front-proxy-client.key"));
    // Users' client certificates come from the cluster's CA: it must never vouch for the headers.
    assert.equal(flags.get("--client-ca-file"), layout.pki("ca.crt"));
    assert.notEqual(flags.get("--requestheader-client-ca-file"), flags.get("--client-ca-file"));
    // An empty allowed-names list would trust every certificate of the CA.
    assert.notEqual(flags.get("--requestheader-allowed-names"), "");
    // Service ClusterIPs are reachable from the apiserver's network namespace (kube-proxy runs there).
    assert.equal(flags.has("--enable-aggregator-routing"), false);
  });
}

test("CoreDNS is placed on the control plane's node, whose kubelet alone carries the label, and reaches the apiserver there", () => {
  const release = KUBERNETES_RELEASES.find((r) => r.minor === "1.37")!;
  const nodes = [
    { name: "c1-control-plane", ip: "172.30.7.2", netnsPath: "/run/netns/tk-c1-cp" },
    { name: "c1-worker", ip: "172.30.7.3", netnsPath: "/run/netns/tk-c1-w" },
  ] as unknown as NodeNetwork[];
  const input = {
    clusterId: "c1",
    release,
    kubeletRelease: release,
    layout,
    net: { ...net, nodes } as ClusterNetwork,
    clusterDomain: "clusters.example",
  };
  const labels = (node: NodeNetwork) =>
    kubeletCommand(input, node)
      .args.find((a) => a.startsWith("--node-labels="))!
      .slice("--node-labels=".length)
      .split(",");
  assert.deepEqual(labels(nodes[0]), ["smek-cluster-id=c1", `${CONTROL_PLANE_NODE_LABEL}=true`]);
  assert.deepEqual(labels(nodes[1]), ["smek-cluster-id=c1"]);

  type PodSpec = {
    nodeSelector: Record<string, string>;
    tolerations: { key: string; effect?: string }[];
    containers: { env: { name: string; value?: string; valueFrom?: { fieldRef: { fieldPath: string } } }[] }[];
  };
  const deployment = YAML.parseAllDocuments(coreDnsWorkload())
    .map((d) => d.toJSON() as { kind: string; spec: { template: { spec: PodSpec } } })
    .find((o) => o.kind === "Deployment")!;
  const pod = deployment.spec.template.spec;
  assert.deepEqual(pod.nodeSelector, { [CONTROL_PLANE_NODE_LABEL]: "true" });
  assert.ok(pod.tolerations.some((t) => t.key === STARTING_TAINT && t.effect === "NoSchedule"));
  const env = Object.fromEntries(
    pod.containers[0].env.map((e) => [e.name, e.value ?? e.valueFrom?.fieldRef.fieldPath]),
  );
  assert.deepEqual(env, { KUBERNETES_SERVICE_HOST: "status.hostIP", KUBERNETES_SERVICE_PORT: "6443" });
});
