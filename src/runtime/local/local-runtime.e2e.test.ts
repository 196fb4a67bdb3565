import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { unlessRoot } from "../../testing/root.js";
import { cpus, totalmem } from "node:os";
import { newClusterId, SIZE_PRESETS, type SizePreset } from "../../core/cluster-spec.js";
import { Kubectl } from "../../testing/kubectl.js";
import type { ClusterCredentials } from "../driver.js";
import type { LocalClusterState } from "./cluster-state.js";
import { HostInspection } from "./host-inspection.js";
import { LocalRuntime } from "./local-runtime.js";
import { DEFAULT_KUBERNETES_MINOR } from "../../setup/catalogue.js";

/**
 * End to end, with real processes: a tenant uses a cluster as a CI job would, the cluster
 * is stopped and started with its state intact, a second cluster cannot reach it, and
 * destroy leaves nothing on the host.
 */
const runtime = new LocalRuntime();
const host = new HostInspection();
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

/** A CRD that keeps whatever its objects hold. */
function crd(
  group: string,
  plural: string,
  kind: string,
  scope: "Namespaced" | "Cluster",
  annotations: Record<string, string> = {},
): string {
  return JSON.stringify({
    apiVersion: "apiextensions.k8s.io/v1",
    kind: "CustomResourceDefinition",
    metadata: { name: `${plural}.${group}`, annotations },
    spec: {
      group,
      scope,
      names: { plural, singular: kind.toLowerCase(), kind, listKind: `${kind}List` },
      versions: [
        {
          name: "v1",
          served: true,
          storage: true,
          schema: { openAPIV3Schema: { type: "object", "x-kubernetes-preserve-unknown-fields": true } },
        },
      ],
    },
  });
}
/** Named after the built-in resource: rights on it would let tenants delete the admission guards. */
const FAKE_VAP_CRD = crd(
  "admissionregistration.k8s.io",
  "validatingadmissionpolicies",
  "ValidatingAdmissionPolicy",
  "Cluster",
  { "api-approved.kubernetes.io": "unapproved, test" },
);
const WIDGET_CRD = crd("example.com", "widgets", "Widget", "Namespaced");
const WIDGET = `{"apiVersion":"example.com/v1","kind":"Widget","metadata":{"name":"w1","namespace":"crd-test"},"spec":{"size":3}}`;

/** Polls check every half second until it holds or timeoutMs has passed; says whether it held. */
async function eventually(check: () => Promise<boolean>, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return true;
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 500));
  }
}

/** Every node's capacity and allocatable cpu and memory, as "cpu/memory" strings. */
async function advertised(k: Kubectl): Promise<string[]> {
  const out = await k.run([
    "get",
    "nodes",
    "-o",
    "jsonpath={range .items[*]}{.status.capacity.cpu}/{.status.capacity.memory} {.status.allocatable.cpu}/{.status.allocatable.memory}{'\\n'}{end}",
  ]);
  return out
    .trim()
    .split("\n")
    .flatMap((line) => line.split(" "));
}

function preset(size: SizePreset): string {
  return `${SIZE_PRESETS[size].cpus}/${SIZE_PRESETS[size].memoryBytes / 2 ** 30}Gi`;
}

/** More CPU and memory than this host has, less than the 1-mid preset (8 CPU, 32 GiB). */
const HOST_CPUS = cpus().length;
const HOST_GIB = Math.ceil(totalmem() / 2 ** 30);
const BIGGER_THAN_HOST = `
apiVersion: v1
kind: Pod
metadata: { name: bigger-than-host }
spec:
  terminationGracePeriodSeconds: 0
  containers:
  - name: c
    image: busybox:1.35
    command: [sleep, "3600"]
    resources: { requests: { cpu: "${Math.min(HOST_CPUS + 1, 7)}", memory: ${Math.min(HOST_GIB + 1, 31)}Gi } }
`;

describe("local runtime, end to end", { skip: unlessRoot("real clusters"), timeout: 20 * 60_000 }, () => {
  const first = `e2e${newClusterId().slice(0, 6)}`;
  const second = `e2e${newClusterId().slice(0, 6)}`;
  const states = new Map<string, LocalClusterState>();
  let creds: ClusterCredentials;
  let kubectl: Kubectl;
  let other: Kubectl;

  before(async () => {
    // A killed earlier run cannot clean up after itself; its clusters would poison this one.
    for (const id of await runtime.list()) if (id.startsWith("e2e")) await runtime.destroy(id);
    const made = await runtime.provision({
      id: first,
      kubernetesVersion: DEFAULT_KUBERNETES_MINOR,
      privileged: false,
      size: "1-mid",
      workers: 0,
    });
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
    const page = await kubectl.run([
      "exec",
      "client",
      "--",
      "timeout",
      "5",
      "wget",
      "-qO-",
      "http://web.default.svc.cluster.local",
    ]);
    assert.equal(page.trim(), "hello-from-web");
    const note = await kubectl.run(["exec", "client", "--", "cat", "/data/note"]);
    assert.equal(note.trim(), "kept-across-restart");
    const sc = await kubectl.run(["get", "pvc", "data", "-o", "jsonpath={.spec.storageClassName} {.status.phase}"]);
    assert.equal(sc.trim(), "local-path Bound");
  });

  it("advertises the size preset as node capacity, across kubelet status updates, and schedules by it", async () => {
    assert.deepEqual(await advertised(kubectl), [preset("1-mid"), preset("1-mid")]);
    await kubectl.run(["apply", "-f", "-"], BIGGER_THAN_HOST);
    await kubectl.run(["wait", "--for=condition=Ready", "pod/bigger-than-host", "--timeout=120s"]);
    // The kubelet reports the host's figures on every status update; they must not stick.
    const heartbeat = () =>
      kubectl.run([
        "get",
        "node",
        "-o",
        "jsonpath={.items[0].status.conditions[?(@.type=='Ready')].lastHeartbeatTime}",
      ]);
    const first = await heartbeat();
    for (let i = 0; i < 90 && (await heartbeat()) === first; i++) await new Promise((r) => setTimeout(r, 1000));
    assert.notEqual(await heartbeat(), first, "the kubelet updated its node status");
    assert.deepEqual(await advertised(kubectl), [preset("1-mid"), preset("1-mid")]);
    await kubectl.run(["delete", "pod", "bigger-than-host", "--wait=true"]);
  });

  it("answers LoadBalancer Services on the node address", async () => {
    await kubectl.run([
      "expose",
      "deployment/web",
      "--name=web-lb",
      "--type=LoadBalancer",
      "--port=8081",
      "--target-port=8080",
    ]);
    const nodeIp = states.get(first)!.network.nodes[0].ip;
    await kubectl.run([
      "wait",
      "service/web-lb",
      `--for=jsonpath={.status.loadBalancer.ingress[0].ip}=${nodeIp}`,
      "--timeout=60s",
    ]);
    let body = "";
    for (let i = 0; i < 50 && !body; i++) {
      body = await fetch(`http://${nodeIp}:8081/`).then(
        (r) => r.text(),
        () => "",
      );
      if (!body) await new Promise((r) => setTimeout(r, 200));
    }
    assert.equal(body.trim(), "hello-from-web");
  });

  it("restarts a component that crashes", async () => {
    const before = await host.componentPid(first, "kube-scheduler");
    assert.ok(before, "kube-scheduler runs");
    process.kill(before, "SIGKILL");
    let after: number | undefined;
    for (let i = 0; i < 100 && (!after || after === before); i++) {
      await new Promise((r) => setTimeout(r, 100));
      after = await host.componentPid(first, "kube-scheduler");
    }
    assert.ok(after && after !== before, "a new kube-scheduler process runs");
    assert.ok((await runtime.status(first)).components.every((c) => c.running));
  });

  it("refuses privileged pods, hostPath pods and cluster-wide RBAC to the tenant", async () => {
    const privileged = await kubectl.refusal(["apply", "-f", "-"], PRIVILEGED_POD);
    assert.match(privileged ?? "accepted", /privileged/);
    const hostPath = await kubectl.refusal(["apply", "-f", "-"], HOSTPATH_POD);
    assert.match(hostPath ?? "accepted", /hostPath/);
    const crb = await kubectl.refusal(["apply", "-f", "-"], CLUSTER_ROLE_BINDING);
    assert.match(crb ?? "accepted", /cluster-wide RBAC|attempting to grant RBAC permissions not currently held/);
  });

  it("gives the tenant no way around the guards: policies, impersonation, kube-system, the kubelet API", async () => {
    // Admission policies are exempt from admission: only authorization protects them.
    for (const args of [
      ["delete", "validatingadmissionpolicy", "tempkube-tenant-kube-system", "--dry-run=server"],
      ["delete", "mutatingadmissionpolicy", "tempkube-node-capacity", "--dry-run=server"],
      ["get", "pods", "-A", "--as-group=system:masters", "--as=someone"],
      ["-n", "kube-system", "create", "token", "coredns"],
      ["-n", "kube-system", "delete", "deployment", "coredns", "--dry-run=server"],
    ]) {
      const refused = await kubectl.refusal(args);
      assert.match(refused ?? `accepted: ${args.join(" ")}`, /forbidden|Forbidden|cannot/, args.join(" "));
    }
    const coredns = (await kubectl.run(["-n", "kube-system", "get", "pods", "-l", "k8s-app=kube-dns", "-o", "name"]))
      .trim()
      .split("\n")[0];
    assert.match(
      (await kubectl.refusal(["-n", "kube-system", "exec", coredns, "--", "true"])) ?? "accepted",
      /forbidden|Forbidden/,
    );
    const node = (await kubectl.run(["get", "nodes", "-o", "name"])).trim().split("\n")[0];
    assert.match(
      (await kubectl.refusal(["get", "--raw", `/api/v1/${node.replace("node/", "nodes/")}/proxy/pods`])) ?? "accepted",
      /forbidden|Forbidden/,
    );
    // What tenants do stays possible: their own namespaces, roles and the stock roles in them.
    await kubectl.run(["create", "namespace", "team-a"]);
    await kubectl.run(["-n", "team-a", "create", "serviceaccount", "ci"]);
    await kubectl.run([
      "-n",
      "team-a",
      "create",
      "rolebinding",
      "ci-edit",
      "--clusterrole=edit",
      "--serviceaccount=team-a:ci",
    ]);
    await kubectl.run(["-n", "team-a", "create", "token", "ci"]);
    await kubectl.run(["delete", "namespace", "team-a", "--wait=false"]);
  });

  it("gives the tenant the resources of its own CRDs, and none of a built-in group", async () => {
    // A CRD in a built-in group could share a built-in resource's storage: refused, and no
    // rights on the real resource follow (the controller's own guard is in its Go tests).
    assert.match(
      (await kubectl.refusal(["create", "-f", "-"], FAKE_VAP_CRD)) ?? "accepted",
      /admissionregistration.k8s.io is built into Kubernetes/,
    );
    await kubectl.run(["create", "-f", "-"], WIDGET_CRD);
    await kubectl.run(["create", "namespace", "crd-test"]);
    let refused: string | undefined;
    const created = await eventually(
      async () => (refused = await kubectl.refusal(["create", "-f", "-"], WIDGET)) === undefined,
      30_000,
    );
    assert.ok(created, `the tenant could not create a Widget within 30 s: ${refused}`);
    assert.equal(
      (await kubectl.run(["-n", "crd-test", "get", "widgets", "-o", "name"])).trim(),
      "widget.example.com/w1",
    );
    const owner = await kubectl.run([
      "get",
      "clusterrole",
      "tempkube:tenant:crd:widgets.example.com",
      "-o",
      "jsonpath={.metadata.ownerReferences[0].name}",
    ]);
    assert.equal(owner, "widgets.example.com");

    assert.match(
      (await kubectl.refusal([
        "get",
        "clusterrole",
        "tempkube:tenant:crd:validatingadmissionpolicies.admissionregistration.k8s.io",
      ])) ?? "granted",
      /NotFound|not found/,
    );
    const deleteGuard = await kubectl.refusal([
      "delete",
      "validatingadmissionpolicy",
      "tempkube-tenant-kube-system",
      "--dry-run=server",
    ]);
    assert.match(deleteGuard ?? "accepted", /forbidden|Forbidden|cannot/);
    const canI = await kubectl.refusal([
      "auth",
      "can-i",
      "delete",
      "validatingadmissionpolicies.admissionregistration.k8s.io",
    ]);
    assert.match(canI ?? "yes", /^\s*no$/m);

    await kubectl.run([
      "delete",
      "crd",
      "widgets.example.com",
      "validatingadmissionpolicies.admissionregistration.k8s.io",
      "--ignore-not-found",
    ]);
    const roleGone = await eventually(
      async () =>
        (
          await kubectl.run([
            "get",
            "clusterrole",
            "tempkube:tenant:crd:widgets.example.com",
            "--ignore-not-found",
            "-o",
            "name",
          ])
        ).trim() === "",
      30_000,
    );
    assert.ok(roleGone, "the Widget role goes with its CRD");
    await kubectl.run(["delete", "namespace", "crd-test", "--wait=false"]);
  });

  it("stop ends every process; start brings objects, PVC data and pods back", async () => {
    await runtime.stop(first);
    const stopped = await runtime.status(first);
    assert.equal(stopped.phase, "stopped");
    assert.deepEqual(
      stopped.components.filter((c) => c.running),
      [],
    );
    const mem = await host.memory(first);
    assert.equal(mem.totalRssBytes, 0, "a stopped cluster has no processes");
    assert.deepEqual(await host.runcState(first), [], "no runc state of its tasks left in /run");
    await runtime.start(first);
    await kubectl.run(["rollout", "status", "deployment/web", "--timeout=120s"]);
    await kubectl.run(["wait", "--for=condition=Ready", "pod/client", "--timeout=120s"]);
    const note = await kubectl.run(["exec", "client", "--", "cat", "/data/note"]);
    assert.equal(note.trim(), "kept-across-restart");
    const page = await kubectl.run(["exec", "client", "--", "timeout", "5", "wget", "-qO-", "http://web"]);
    assert.equal(page.trim(), "hello-from-web");
    assert.deepEqual(await advertised(kubectl), [preset("1-mid"), preset("1-mid")]);
  });

  it("a second cluster, with a worker node, carries pod traffic across its nodes", async () => {
    const made = await runtime.provision({
      id: second,
      kubernetesVersion: DEFAULT_KUBERNETES_MINOR,
      privileged: false,
      size: "1-small",
      workers: 1,
    });
    states.set(second, await runtime.readState(second));
    other = await Kubectl.withKubeconfig(made.credentials.tenantKubeconfig);
    const [cp, worker] = states.get(second)!.network.nodes.map((n) => n.name);
    const nodes = (await other.run(["get", "nodes", "-o", "jsonpath={.items[*].metadata.name}"]))
      .trim()
      .split(" ")
      .sort();
    assert.deepEqual(nodes, [cp, worker].sort());
    assert.deepEqual(await advertised(other), Array(4).fill(preset("1-small")), "each node advertises the preset");
    const pinned = (name: string, node: string, command: string) =>
      `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"${name}"},"spec":{"nodeName":"${node}","terminationGracePeriodSeconds":0,"containers":[{"name":"c","image":"busybox:1.35","command":["sh","-c","${command}"]}]}}`;
    await other.run(
      ["apply", "-f", "-"],
      pinned("server", cp, "mkdir -p /w && echo across-nodes > /w/index.html && exec httpd -f -p 8080 -h /w"),
    );
    await other.run(["apply", "-f", "-"], pinned("probe", worker, "exec sleep 3600"));
    await other.run(["wait", "--for=condition=Ready", "pod/server", "pod/probe", "--timeout=120s"]);
    const serverIp = (await other.run(["get", "pod", "server", "-o", "jsonpath={.status.podIP}"])).trim();
    const page = await other.run(["exec", "probe", "--", "timeout", "5", "wget", "-qO-", `http://${serverIp}:8080/`]);
    assert.equal(page.trim(), "across-nodes");
  });

  it("the second cluster cannot reach the first", async () => {
    const webIp = (
      await kubectl.run(["get", "pods", "-l", "app=web", "-o", "jsonpath={.items[0].status.podIP}"])
    ).trim();
    const firstNode = states.get(first)!.network.nodes[0].ip;
    // Plain HTTP to a TLS port answers "400 Bad Request": proof that the connection was made.
    for (const target of [`http://${webIp}:8080/`, `http://${firstNode}:6443/`]) {
      const reached = await other.refusal(["exec", "probe", "--", "timeout", "3", "wget", "-qO-", target]);
      assert.ok(
        reached !== undefined && !/HTTP\/1\.[01] \d{3}/.test(reached),
        `${target} of the first cluster must not answer the second: ${reached}`,
      );
    }
    // The probe does reach its own node.
    const ownNode = states.get(second)!.network.nodes[0].ip;
    const own = await other.refusal(["exec", "probe", "--", "timeout", "3", "wget", "-qO-", `http://${ownNode}:6443/`]);
    assert.match(own ?? "", /400 Bad Request/, "the probe reaches its own node");
  });

  it("a provision that fails half-way names the step, shows the component's last lines, and cleans up", async () => {
    const impatient = new LocalRuntime({ readyTimeoutMs: 1 });
    const id = `e2e${newClusterId().slice(0, 6)}`;
    await assert.rejects(
      impatient.provision({
        id,
        kubernetesVersion: DEFAULT_KUBERNETES_MINOR,
        privileged: false,
        size: "1-small",
        workers: 0,
      }),
      // Which wait times out first depends on the machine's speed; each names its components.
      (err: Error) =>
        /step "[a-z ]+" failed: timed out/.test(err.message) &&
        /--- [a-z0-9-]+ \((last lines\):\n.|no output yet\))/.test(err.message),
    );
    assert.deepEqual(await runtime.list().then((ids) => ids.filter((x) => x === id)), []);
    assert.deepEqual(await host.leftovers(id), []);
  });

  it("a boot whose cluster is destroyed underneath it gives up within its one deadline, and leaves nothing", async () => {
    const readyTimeoutMs = 15_000;
    const booting = new LocalRuntime({ readyTimeoutMs });
    const id = `e2e${newClusterId().slice(0, 6)}`;
    const started = Date.now();
    let destroyed: Promise<void> | undefined;
    // Another process (here another runtime object) destroys it once the apiserver serves.
    const outcome = booting
      .provision(
        { id, kubernetesVersion: DEFAULT_KUBERNETES_MINOR, privileged: false, size: "1-small", workers: 0 },
        (step) => {
          if (step === "kubelets started") destroyed ??= runtime.destroy(id);
        },
      )
      .then(
        () => "ready",
        (err: Error) => err.message,
      );
    const message = await outcome;
    await destroyed;
    // Within the one deadline of the whole boot (each step used to get all of it anew).
    assert.ok(Date.now() - started < readyTimeoutMs + 15_000, `gave up after ${Date.now() - started} ms: ${message}`);
    assert.match(message, /failed/);
    assert.deepEqual(await host.leftovers(id), []);
  });

  it("destroy leaves no process, mount, namespace, veth, cgroup, iptables rule or file", async () => {
    for (const id of [first, second]) {
      await runtime.destroy(id);
      assert.deepEqual(await host.leftovers(id, states.get(id)!.network), []);
    }
  });
});
