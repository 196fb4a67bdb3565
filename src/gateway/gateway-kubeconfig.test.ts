import assert from "node:assert/strict";
import { test } from "node:test";
import YAML from "yaml";
import { renderKubeconfig } from "../runtime/local/kubeconfig.js";
import { gatewayKubeconfig, gatewayServer } from "./gateway-kubeconfig.js";

const direct = renderKubeconfig({
  clusterName: "tempkube-c1",
  contextName: "tempkube-c1",
  userName: "tempkube-c1-tenant",
  server: "https://172.30.5.2:6443",
  caPem: "CA",
  certPem: "CERT",
  keyPem: "KEY",
});

test("a kubeconfig through the gateway: its server and the cluster's name as tls-server-name, the rest kept", () => {
  const out = YAML.parse(
    gatewayKubeconfig(direct, "c1", { publicAddress: "tk.example.com", port: 6443, clusterDomain: "clusters.x" }),
  );
  const before = YAML.parse(direct);
  assert.deepEqual(out.clusters, [
    {
      name: "tempkube-c1",
      cluster: {
        server: "https://tk.example.com:6443",
        "certificate-authority-data": before.clusters[0].cluster["certificate-authority-data"],
        "tls-server-name": "c1.clusters.x",
      },
    },
  ]);
  assert.deepEqual(out.users, before.users);
  assert.deepEqual(out.contexts, before.contexts);
  assert.equal(out["current-context"], "tempkube-c1");
});

test("applied twice, it is the same as once (a kubeconfig already through the gateway)", () => {
  const access = { publicAddress: "10.0.0.7", port: 16443, clusterDomain: "d" };
  const once = gatewayKubeconfig(direct, "c1", access);
  assert.equal(gatewayKubeconfig(once, "c1", access), once);
});

test("an IPv6 public address goes in brackets; names and IPv4 do not", () => {
  assert.equal(gatewayServer({ publicAddress: "2001:db8::7", port: 6443 }), "https://[2001:db8::7]:6443");
  assert.equal(gatewayServer({ publicAddress: "192.0.2.1", port: 443 }), "https://192.0.2.1:443");
  assert.equal(gatewayServer({ publicAddress: "host.example", port: 6443 }), "https://host.example:6443");
});

test("what is no kubeconfig is refused with the cluster named", () => {
  const access = { publicAddress: "h", port: 1, clusterDomain: "d" };
  assert.throws(() => gatewayKubeconfig("apiVersion: v1\nkind: Config\n", "c9", access), /c9 has no clusters/);
  assert.throws(() => gatewayKubeconfig("clusters: [ {", "c9", access), /c9 is no YAML/);
});
