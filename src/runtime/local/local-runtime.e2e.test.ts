import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { newClusterId } from "../../core/cluster-spec.js";
import { Kubectl } from "../../testing/kubectl.js";
import type { ClusterCredentials } from "../driver.js";
import { LocalRuntime, type LocalClusterState } from "./local-runtime.js";

/**
 * End to end, with real processes: a tenant uses a cluster as a CI job would, the cluster
 * is stopped and started with its state intact, a second cluster cannot reach it, and
 * destroy leaves nothing on the host.
 */
const runtime = new LocalRuntime();
const WEB = `
apiVersion: apps/v1
kind: Deployment
metadata: { name: web }
spec:
  replicas: 1
  selector: { matchLabels: { app: web } }
  template:
    metadata: { labels: { app: web } }
    spec:
      containers:
      - name: web
        image: busybox:1.35
        command: [sh, -c, "mkdir -p /www && echo hello-from-web > /www/index.html && exec httpd -f -p 8080 -h /www"]
        ports: [{ containerPort: 8080 }]
---
apiVersion: v1
kind: Service
metadata: { name: web }
spec:
  selector: { app: web }
  ports: [{ port: 80, targetPort: 8080 }]
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata: { name: data }
spec:
  accessModes: [ReadWriteOnce]
  resources: { requests: { storage: 64Mi } }
---
apiVersion: v1
kind: Pod
metadata: { name: client }
spec:
  terminationGracePeriodSeconds: 0
  containers:
  - name: client
    image: busybox:1.35
    command: [sh, -c, "test -f /data/note || echo kept-across-restart > /data/note; exec sleep 3600"]
    volumeMounts: [{ name: data, mountPath: /data }]
  volumes:
  - name: data
    persistentVolumeClaim: { claimName: data }
`;

const PRIVILEGED_POD = `
apiVersion: v1
kind: Pod
metadata: { name: privileged }
spec:
  containers:
  - { name: c, image: busybox:1.35, command: [sleep, "60"], securityContext: { privileged: true } }
`;
const HOSTPATH_POD = `
apiVersion: v1
kind: Pod
metadata: { name: hostpath }
spec:
  containers:
  - { name: c, image: busybox:1.35, command: [sleep, "60"], volumeMounts: [{ name: h, mountPath: /h }] }
  volumes: [{ name: h, hostPath: { path: /etc } }]
`;
const CLUSTER_ROLE_BINDING = `
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: { name: escalate }
roleRef: { apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: cluster-admin }
subjects: [{ kind: User, name: someone, apiGroup: rbac.authorization.k8s.io }]
`;

describe("local runtime, end to end", { timeout: 20 * 60_000 }, () => {
  const first = `e2e${newClusterId().slice(0, 6)}`;
  const second = `e2e${newClusterId().slice(0, 6)}`;
  const states = new Map<string, LocalClusterState>();
  let creds: ClusterCredentials;
  let kubectl: Kubectl;

  before(async () => {
    // A killed earlier run cannot clean up after itself; its clusters would poison this one.
    for (const id of await runtime.list()) if (id.startsWith("e2e")) await runtime.destroy(id);
    const made = await runtime.provision({ id: first, kubernetesVersion: "1.34", privileged: false, size: "1-small", workers: 0 });
    creds = made.credentials;
    states.set(first, await runtime.readState(first));
    kubectl = await Kubectl.withKubeconfig(creds.tenantKubeconfig);
  });

  after(async () => {
    for (const id of [first, second]) await runtime.destroy(id).catch(() => undefined);
  });

  it("gives the tenant a working cluster: rollout, DNS, Service, PVC", async () => {
    const context = (await kubectl.run(["config", "current-context"])).trim();
    assert.ok(context.includes(first), `context ${context} names the cluster id`);
    const labels = await kubectl.run(["get", "nodes", "-o", "jsonpath={.items[*].metadata.labels.smek-cluster-id}"]);
    assert.equal(labels.trim(), first);
    await kubectl.run(["apply", "-f", "-"], WEB);
    await kubectl.run(["rollout", "status", "deployment/web", "--timeout=120s"]);
    await kubectl.run(["wait", "--for=condition=Ready", "pod/client", "--timeout=120s"]);
    const page = await kubectl.run(["exec", "client", "--", "timeout", "5", "wget", "-qO-", "http://web.default.svc.cluster.local"]);
    assert.equal(page.trim(), "hello-from-web");
    const note = await kubectl.run(["exec", "client", "--", "cat", "/data/note"]);
    assert.equal(note.trim(), "kept-across-restart");
    const sc = await kubectl.run(["get", "pvc", "data", "-o", "jsonpath={.spec.storageClassName} {.status.phase}"]);
    assert.equal(sc.trim(), "local-path Bound");
  });

  it("refuses privileged pods, hostPath pods and cluster-wide RBAC to the tenant", async () => {
    const privileged = await kubectl.refusal(["apply", "-f", "-"], PRIVILEGED_POD);
    assert.match(privileged ?? "accepted", /privileged/);
    const hostPath = await kubectl.refusal(["apply", "-f", "-"], HOSTPATH_POD);
    assert.match(hostPath ?? "accepted", /hostPath/);
    const crb = await kubectl.refusal(["apply", "-f", "-"], CLUSTER_ROLE_BINDING);
    assert.match(crb ?? "accepted", /cluster-wide RBAC/);
  });

  it("stop ends every process; start brings objects, PVC data and pods back", async () => {
    await runtime.stop(first);
    const stopped = await runtime.status(first);
    assert.equal(stopped.phase, "stopped");
    assert.deepEqual(stopped.components.filter((c) => c.running), []);
    const mem = await runtime.memory(first);
    assert.equal(mem.totalRssBytes, 0, "a stopped cluster has no processes");
    await runtime.start(first);
    await kubectl.run(["rollout", "status", "deployment/web", "--timeout=120s"]);
    await kubectl.run(["wait", "--for=condition=Ready", "pod/client", "--timeout=120s"]);
    const note = await kubectl.run(["exec", "client", "--", "cat", "/data/note"]);
    assert.equal(note.trim(), "kept-across-restart");
    const page = await kubectl.run(["exec", "client", "--", "timeout", "5", "wget", "-qO-", "http://web"]);
    assert.equal(page.trim(), "hello-from-web");
  });

  it("a second cluster at the same time cannot reach the first", async () => {
    const made = await runtime.provision({ id: second, kubernetesVersion: "1.34", privileged: false, size: "1-small", workers: 0 });
    states.set(second, await runtime.readState(second));
    const other = await Kubectl.withKubeconfig(made.credentials.tenantKubeconfig);
    await other.run(["run", "probe", "--image=busybox:1.35", "--restart=Never", "--command", "--", "sleep", "3600"]);
    await other.run(["wait", "--for=condition=Ready", "pod/probe", "--timeout=120s"]);
    const webIp = (await kubectl.run(["get", "pods", "-l", "app=web", "-o", "jsonpath={.items[0].status.podIP}"])).trim();
    const firstNode = states.get(first)!.network.nodes[0].ip;
    // Plain HTTP to a TLS port answers "400 Bad Request": proof that the connection was made.
    for (const target of [`http://${webIp}:8080/`, `http://${firstNode}:6443/`]) {
      const reached = await other.refusal(["exec", "probe", "--", "timeout", "3", "wget", "-qO-", target]);
      assert.ok(reached !== undefined && !/HTTP\/1\.[01] \d{3}/.test(reached), `${target} of the first cluster must not answer the second: ${reached}`);
    }
    // busybox 1.35 wget crashes on -T; `timeout` bounds it instead. The probe does reach its own node.
    const ownNode = states.get(second)!.network.nodes[0].ip;
    const own = await other.refusal(["exec", "probe", "--", "timeout", "3", "wget", "-qO-", `http://${ownNode}:6443/`]);
    assert.match(own ?? "", /400 Bad Request/, "the probe reaches its own node");
  });

  it("destroy leaves no process, mount, namespace, veth, cgroup, iptables rule or file", async () => {
    for (const id of [first, second]) {
      await runtime.destroy(id);
      assert.deepEqual(await runtime.leftovers(id, states.get(id)!.network), []);
    }
  });
});
