import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { after, before, describe, it } from "node:test";
import { newClusterId } from "../../core/cluster-spec.js";
import { GatewayPaths, type ClusterRoute } from "../../gateway/gateway-files.js";
import { gatewayKubeconfig } from "../../gateway/gateway-kubeconfig.js";
import { Kubectl } from "../../testing/kubectl.js";
import { unlessRoot } from "../../testing/root.js";
import type { LocalClusterState } from "./cluster-state.js";
import { HostInspection } from "./host-inspection.js";
import { ClusterLayout, clustersDir } from "./layout.js";
import { LocalRuntime } from "./local-runtime.js";
import { DEFAULT_KUBERNETES_MINOR, defaultRelease } from "../../setup/catalogue.js";

const WEB = `
apiVersion: v1
kind: Pod
metadata: { name: web, labels: { app: web } }
spec:
  terminationGracePeriodSeconds: 0
  containers:
  - name: web
    image: busybox:1.35
    command: [sh, -c, "mkdir -p /www && echo hello-through-lb > /www/index.html && exec httpd -f -p 8080 -h /www"]
---
apiVersion: v1
kind: Service
metadata: { name: web }
spec:
  type: LoadBalancer
  selector: { app: web }
  ports: [{ port: 8081, targetPort: 8080 }]
`;

/**
 * What the gateway needs of the local runtime (issue 12): a route file per cluster that
 * follows its lifecycle, an apiserver certificate for `<id>.<cluster domain>` (issued again
 * when the domain changes), and LoadBalancer Services that carry their gateway hostname
 * beside the node IP kube-proxy answers on. No gateway process runs here: the name is
 * checked by connecting to the apiserver directly with that TLS server name.
 */
describe("a local cluster as the gateway sees it", { skip: unlessRoot("real clusters"), timeout: 12 * 60_000 }, () => {
  const id = `gwr${newClusterId().slice(0, 6)}`;
  let dir = "";
  let state: LocalClusterState;
  let tenant = "";
  let kubectl: Kubectl;
  const runtimeFor = (clusterDomain: string) =>
    new LocalRuntime({ dataDir: dir, clusterEgress: "none", clusterDomain });

  const route = async (): Promise<ClusterRoute> =>
    JSON.parse(await readFile(new GatewayPaths(dir).route(id), "utf8")) as ClusterRoute;

  /** kubectl against the apiserver's own address, verifying its certificate for `serverName`. */
  const asServerName = (serverName: string) =>
    kubectl.refusal(["--tls-server-name", serverName, "get", "--raw", "/version"]);

  async function awaitLoadBalancer(hostname: string): Promise<void> {
    await kubectl.run([
      "wait",
      "service/web",
      `--for=jsonpath={.status.loadBalancer.ingress[0].hostname}=${hostname}`,
      "--timeout=90s",
    ]);
  }

  before(async () => {
    dir = await mkdtemp("/tmp/tkq-");
    await runtimeFor("one.example").provision({
      id,
      kubernetesVersion: DEFAULT_KUBERNETES_MINOR,
      privileged: false,
      size: "1-small",
      workers: 0,
    });
    state = await runtimeFor("one.example").readState(id);
    tenant = await readFile(new ClusterLayout(id, clustersDir(dir)).kubeconfig("tenant"), "utf8");
    kubectl = await Kubectl.withKubeconfig(tenant);
  });

  after(async () => {
    await runtimeFor("one.example")
      .destroy(id)
      .catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  });

  it("routes a provisioned cluster as running, to its control-plane node", async () => {
    const ip = state.network.nodes[0].ip;
    const adminKubeconfig = new ClusterLayout(id, clustersDir(dir)).kubeconfig("admin");
    assert.deepEqual(await route(), {
      clusterId: id,
      phase: "running",
      apiserver: `${ip}:6443`,
      nodeAddress: ip,
      adminKubeconfig,
    });
    assert.ok(existsSync(adminKubeconfig));
    assert.equal(state.clusterDomain, "one.example");
  });

  it("serves a certificate for <id>.<cluster domain>, and only for names it has", async () => {
    assert.equal(await asServerName(`${id}.one.example`), undefined);
    assert.match((await asServerName(`${id}.two.example`)) ?? "accepted", /x509: certificate is valid for/);
    // The kubeconfig as the gateway hands it out, pointed at the apiserver itself.
    const ip = state.network.nodes[0].ip;
    const viaName = await Kubectl.withKubeconfig(
      gatewayKubeconfig(tenant, id, { publicAddress: ip, port: 6443, clusterDomain: "one.example" }),
    );
    assert.ok(
      (await viaName.run(["get", "--raw", "/version"])).includes(`"gitVersion": "${defaultRelease().version}"`),
    );
  });

  it("gives a LoadBalancer Service the node IP and its gateway hostname, and kube-proxy still answers on the IP", async () => {
    await kubectl.run(["apply", "-f", "-"], WEB);
    await awaitLoadBalancer(`web.default.${id}.one.example`);
    const ingress = JSON.parse(await kubectl.run(["get", "service", "web", "-o", "jsonpath={.status.loadBalancer}"]));
    const ip = state.network.nodes[0].ip;
    assert.deepEqual(ingress, { ingress: [{ ip, hostname: `web.default.${id}.one.example`, ipMode: "VIP" }] });
    let body = "";
    for (let i = 0; i < 100 && !body; i++) {
      body = await fetch(`http://${ip}:8081/`).then(
        (r) => r.text(),
        () => "",
      );
      if (!body) await new Promise((r) => setTimeout(r, 300));
    }
    assert.equal(body.trim(), "hello-through-lb");
  });

  it("marks the route stopped when the cluster stops", async () => {
    await runtimeFor("one.example").stop(id);
    assert.equal((await route()).phase, "stopped");
  });

  it("started under another cluster domain: a certificate and LoadBalancer hostname for the new name", async () => {
    await runtimeFor("two.example").start(id);
    assert.equal((await route()).phase, "running");
    assert.equal((await runtimeFor("two.example").readState(id)).clusterDomain, "two.example");
    assert.equal(await asServerName(`${id}.two.example`), undefined);
    assert.match((await asServerName(`${id}.one.example`)) ?? "accepted", /x509: certificate is valid for/);
    await awaitLoadBalancer(`web.default.${id}.two.example`);
  });

  it("removes the route when the cluster is destroyed, and leaves nothing on the host", async () => {
    await runtimeFor("two.example").destroy(id);
    assert.equal(existsSync(new GatewayPaths(dir).route(id)), false);
    assert.deepEqual(await new HostInspection(dir).leftovers(id, state.network), []);
  });
});
