import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { unlessRoot } from "../../testing/root.js";
import { newClusterId } from "../../core/cluster-spec.js";
import { Kubectl } from "../../testing/kubectl.js";
import { LocalRuntime } from "./local-runtime.js";
import { DEFAULT_KUBERNETES_MINOR } from "../../setup/catalogue.js";

/**
 * End to end, as an attacker would try it: every guard of tenant-guards.ts against the
 * tenant, against a ServiceAccount the tenant made and bound to its own role in its
 * namespace, and against a ServiceAccount that holds the tenant's rights cluster-wide (what
 * a controller acting for the tenant would be, had it found a way to such a binding). Each
 * refusal is matched on its message, so a request refused for an unrelated reason (a typo
 * in the manifest) does not pass for a guard that holds.
 */
const runtime = new LocalRuntime();

const pv = (name: string, source: object) =>
  JSON.stringify({
    apiVersion: "v1",
    kind: "PersistentVolume",
    metadata: { name },
    spec: {
      capacity: { storage: "1Gi" },
      accessModes: ["ReadWriteOnce"],
      persistentVolumeReclaimPolicy: "Retain",
      storageClassName: "manual",
      ...source,
    },
  });
const HOST_PV = pv("host-root", { hostPath: { path: "/" } });
const LOCAL_PV = pv("host-local", {
  local: { path: "/var/lib/tempkube" },
  nodeAffinity: {
    required: { nodeSelectorTerms: [{ matchExpressions: [{ key: "kubernetes.io/hostname", operator: "Exists" }] }] },
  },
});
const NFS_PV = pv("nfs-share", { nfs: { server: "192.0.2.10", path: "/exports" } });

const podWithVolume = (name: string, volume: object) =>
  JSON.stringify({
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name },
    spec: {
      containers: [
        { name: "c", image: "busybox:1.35", command: ["sleep", "60"], volumeMounts: [{ name: "v", mountPath: "/v" }] },
      ],
      volumes: [{ name: "v", ...volume }],
    },
  });
const GIT_REPO_POD = podWithVolume("git-repo", { gitRepo: { repository: "https://example.invalid/x.git" } });
const FLEX_POD = podWithVolume("flex", { flexVolume: { driver: "example.com/evil" } });
const HOST_PATH_DEPLOYMENT = JSON.stringify({
  apiVersion: "apps/v1",
  kind: "Deployment",
  metadata: { name: "sneaky" },
  spec: {
    replicas: 1,
    selector: { matchLabels: { app: "sneaky" } },
    template: {
      metadata: { labels: { app: "sneaky" } },
      spec: {
        containers: [
          {
            name: "c",
            image: "busybox:1.35",
            command: ["sleep", "60"],
            volumeMounts: [{ name: "v", mountPath: "/v" }],
          },
        ],
        volumes: [{ name: "v", gitRepo: { repository: "https://example.invalid/x.git" } }],
      },
    },
  },
});
const HOST_PID_POD = JSON.stringify({
  apiVersion: "v1",
  kind: "Pod",
  metadata: { name: "host-pid" },
  spec: {
    hostPID: true,
    containers: [{ name: "c", image: "busybox:1.35", command: ["sleep", "60"], securityContext: { privileged: true } }],
  },
});
const STORAGE_CLASS = JSON.stringify({
  apiVersion: "storage.k8s.io/v1",
  kind: "StorageClass",
  metadata: { name: "anywhere" },
  provisioner: "rancher.io/local-path",
  parameters: { nodePath: "/" },
  volumeBindingMode: "WaitForFirstConsumer",
});
const CONVERSION_WEBHOOK_CRD = JSON.stringify({
  apiVersion: "apiextensions.k8s.io/v1",
  kind: "CustomResourceDefinition",
  metadata: { name: "gadgets.example.com" },
  spec: {
    group: "example.com",
    scope: "Namespaced",
    names: { plural: "gadgets", singular: "gadget", kind: "Gadget", listKind: "GadgetList" },
    versions: ["v1", "v2"].map((name, i) => ({
      name,
      served: true,
      storage: i === 0,
      schema: { openAPIV3Schema: { type: "object", "x-kubernetes-preserve-unknown-fields": true } },
    })),
    conversion: {
      strategy: "Webhook",
      webhook: { conversionReviewVersions: ["v1"], clientConfig: { url: "https://172.30.0.1:22/convert" } },
    },
  },
});
const CLUSTER_ROLE_BINDING = JSON.stringify({
  apiVersion: "rbac.authorization.k8s.io/v1",
  kind: "ClusterRoleBinding",
  metadata: { name: "escalate" },
  roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: "cluster-admin" },
  subjects: [{ kind: "User", name: "someone", apiGroup: "rbac.authorization.k8s.io" }],
});
const FORBIDDEN = /forbidden|Forbidden|cannot/;

describe(
  "tenant guards, end to end, as the tenant and as what the tenant sets in motion",
  { skip: unlessRoot("real clusters"), timeout: 15 * 60_000 },
  () => {
    const id = `grd${newClusterId().slice(0, 6)}`;
    let admin: Kubectl;
    let tenant: Kubectl;
    /** A ServiceAccount the tenant made and bound, itself, to tempkube:tenant in namespace default. */
    let ownAccount: Kubectl;
    /** A ServiceAccount holding the tenant's rights in every namespace and on cluster-scoped objects. */
    let clusterWideAccount: Kubectl;
    let identities: [string, Kubectl][];

    before(async () => {
      for (const old of await runtime.list()) if (old.startsWith("grd")) await runtime.destroy(old);
      const made = await runtime.provision({
        id,
        kubernetesVersion: DEFAULT_KUBERNETES_MINOR,
        privileged: false,
        size: "1-small",
        workers: 0,
      });
      admin = await Kubectl.withKubeconfig(made.credentials.adminKubeconfig);
      tenant = await Kubectl.withKubeconfig(made.credentials.tenantKubeconfig);
      // The attack of issue 10, step one: allowed, since the tenant holds every rule of the role.
      await tenant.run(["create", "serviceaccount", "intruder"]);
      await tenant.run([
        "create",
        "rolebinding",
        "intruder",
        "--clusterrole=tempkube:tenant",
        "--serviceaccount=default:intruder",
      ]);
      ownAccount = await Kubectl.withToken(tenant, (await tenant.run(["create", "token", "intruder"])).trim());
      await admin.run(["create", "serviceaccount", "operator"]);
      await admin.run([
        "create",
        "clusterrolebinding",
        "operator",
        "--clusterrole=tempkube:tenant",
        "--serviceaccount=default:operator",
      ]);
      clusterWideAccount = await Kubectl.withToken(admin, (await admin.run(["create", "token", "operator"])).trim());
      identities = [
        ["tenant", tenant],
        ["tenant's ServiceAccount", ownAccount],
        ["cluster-wide ServiceAccount", clusterWideAccount],
      ];
    });

    after(async () => {
      await runtime.destroy(id).catch(() => undefined);
    });

    it("no one but tempkube labels a namespace pod-security privileged, so no privileged or host-PID pod runs", async () => {
      for (const [who, k] of identities) {
        const label = await k.refusal([
          "label",
          "namespace",
          "default",
          "pod-security.kubernetes.io/enforce=privileged",
          "--overwrite",
        ]);
        assert.match(label ?? `${who}: accepted`, /cannot be labelled pod-security privileged/, who);
        const create = await k.refusal(
          ["create", "-f", "-"],
          JSON.stringify({
            apiVersion: "v1",
            kind: "Namespace",
            metadata: { name: `wide-open-${who.length}`, labels: { "pod-security.kubernetes.io/audit": "privileged" } },
          }),
        );
        assert.match(create ?? `${who}: accepted`, /cannot be labelled pod-security privileged|forbidden/, who);
        const pod = await k.refusal(["create", "-f", "-"], HOST_PID_POD);
        assert.match(pod ?? `${who}: accepted`, /violates PodSecurity "baseline/, who);
      }
      const labels = await admin.run(["get", "namespace", "default", "-o", "jsonpath={.metadata.labels}"]);
      assert.doesNotMatch(labels, /privileged/);
    });

    it("no PersistentVolume of the node's storage, no StorageClass; nfs volumes and local-path claims still work", async () => {
      for (const [who, k] of identities) {
        for (const manifest of [HOST_PV, LOCAL_PV]) {
          const refused = await k.refusal(["create", "-f", "-"], manifest);
          // A namespaced account meets RBAC first (PVs are cluster-scoped); the others meet the policy.
          const expected = who === "tenant's ServiceAccount" ? FORBIDDEN : /may use csi or nfs only: hostPath, local/;
          assert.match(refused ?? `${who}: accepted`, expected, who);
        }
        const storageClass = await k.refusal(["create", "-f", "-"], STORAGE_CLASS);
        assert.match(storageClass ?? `${who}: accepted`, /storageclasses.storage.k8s.io is forbidden/, who);
      }
      await tenant.run(["create", "-f", "-"], NFS_PV);
      await tenant.run(["delete", "pv", "nfs-share"]);
      assert.equal((await admin.run(["get", "pv", "-o", "name"])).trim(), "", "no PersistentVolume was made");
      await tenant.run(
        ["apply", "-f", "-"],
        `{"apiVersion":"v1","kind":"PersistentVolumeClaim","metadata":{"name":"data"},"spec":{"accessModes":["ReadWriteOnce"],"resources":{"requests":{"storage":"16Mi"}}}}`,
      );
      await tenant.run(
        ["apply", "-f", "-"],
        podWithVolume("uses-claim", { persistentVolumeClaim: { claimName: "data" } }),
      );
      await tenant.run(["wait", "--for=condition=Ready", "pod/uses-claim", "--timeout=120s"]);
      assert.equal((await tenant.run(["get", "pvc", "data", "-o", "jsonpath={.status.phase}"])).trim(), "Bound");
      await tenant.run(["delete", "pod", "uses-claim", "--wait=false"]);
    });

    it("no pod volume that mounts something of the node's, whoever creates the pod", async () => {
      for (const [who, k] of identities) {
        for (const manifest of [GIT_REPO_POD, FLEX_POD]) {
          const refused = await k.refusal(["create", "-f", "-"], manifest);
          assert.match(refused ?? `${who}: accepted`, /volume v: pod volumes may be configMap/, who);
        }
      }
      // Set in motion through a controller: the ReplicaSet controller (tempkube's own identity) is refused too.
      await tenant.run(["create", "-f", "-"], HOST_PATH_DEPLOYMENT);
      let events = "";
      for (let i = 0; i < 60 && !/pod volumes may be/.test(events); i++) {
        await new Promise((r) => setTimeout(r, 500));
        events = await tenant.run([
          "get",
          "events",
          "--field-selector",
          "reason=FailedCreate",
          "-o",
          "jsonpath={.items[*].message}",
        ]);
      }
      assert.match(events, /volume v: pod volumes may be configMap/);
      assert.equal((await tenant.run(["get", "pods", "-l", "app=sneaky", "-o", "name"])).trim(), "");
      await tenant.run(["delete", "deployment", "sneaky"]);
    });

    it("kube-system's Secrets are tempkube's: not readable, not even by listing every namespace", async () => {
      await admin.run([
        "-n",
        "kube-system",
        "create",
        "secret",
        "generic",
        "tempkube-only",
        "--from-literal=key=value",
      ]);
      await tenant.run(["create", "secret", "generic", "mine", "--from-literal=key=value"]);
      for (const [who, k] of identities) {
        for (const args of [
          ["-n", "kube-system", "get", "secrets"],
          ["-n", "kube-system", "get", "secret", "tempkube-only"],
          ["get", "secrets", "-A"],
          ["-n", "kube-system", "get", "secrets", "--watch", "--request-timeout=2s"],
        ]) {
          const refused = await k.refusal(args);
          assert.match(refused ?? `${who}: accepted ${args.join(" ")}`, FORBIDDEN, `${who}: ${args.join(" ")}`);
        }
        assert.match(
          await k.run(["get", "secret", "mine", "-o", "name"]),
          /secret\/mine/,
          `${who} reads the namespace's own Secrets`,
        );
      }
      const denied = await tenant.refusal(["-n", "kube-system", "get", "secret", "tempkube-only"]);
      assert.match(denied ?? "", /belong to tempkube/, "the webhook's reason reaches the user");
      assert.match(
        await admin.run(["-n", "kube-system", "get", "secret", "tempkube-only", "-o", "name"]),
        /tempkube-only/,
      );
      assert.match(await tenant.run(["auth", "can-i", "get", "secrets", "-n", "default"]), /yes/);
    });

    it("every other guard holds for the ServiceAccounts as for the tenant", async () => {
      const coredns = (await admin.run(["-n", "kube-system", "get", "pods", "-l", "k8s-app=kube-dns", "-o", "name"]))
        .trim()
        .split("\n")[0];
      const node = (await admin.run(["get", "nodes", "-o", "jsonpath={.items[0].metadata.name}"])).trim();
      for (const [who, k] of identities) {
        for (const [args, input] of [
          [["create", "-f", "-"], CLUSTER_ROLE_BINDING],
          [["create", "-f", "-"], CONVERSION_WEBHOOK_CRD],
          [["delete", "validatingadmissionpolicy", "tempkube-tenant-kube-system", "--dry-run=server"]],
          // The thaw window (thaw-window.ts): neither removed nor opened by a tenant.
          [["delete", "validatingadmissionpolicy", "tempkube-thawed-node-status", "--dry-run=server"]],
          [
            [
              "patch",
              "validatingadmissionpolicy",
              "tempkube-thawed-node-status",
              "--type=json",
              "-p",
              '[{"op":"replace","path":"/spec/validations/0/expression","value":"false"}]',
              "--dry-run=server",
            ],
          ],
          [["-n", "kube-system", "create", "token", "coredns"]],
          [["-n", "kube-system", "create", "configmap", "x", "--from-literal=a=b"]],
          [["-n", "kube-system", "delete", "deployment", "coredns", "--dry-run=server"]],
          [["create", "-f", "-"], JSON.stringify({ apiVersion: "v1", kind: "Node", metadata: { name: "fake" } })],
          [["get", "pods", "-A", "--as-group=system:masters", "--as=someone"]],
          [["create", "-f", "-"], podWithVolume("host-etc", { hostPath: { path: "/etc" } })],
          [["-n", "kube-system", "exec", coredns, "--", "true"]],
          [["get", "--raw", `/api/v1/nodes/${node}/proxy/pods`]],
        ] as [string[], string?][]) {
          const refused = await k.refusal(args, input);
          assert.match(
            refused ?? `${who}: accepted ${args.join(" ")}`,
            FORBIDDEN,
            `${who}: ${args.join(" ")} ${input ?? ""}`,
          );
        }
      }
      // The policies themselves, not only RBAC, for an identity RBAC lets through (it holds
      // every right of the `view` role cluster-wide, so RBAC's escalation check passes).
      const viewBinding = CLUSTER_ROLE_BINDING.replace('"name":"cluster-admin"', '"name":"view"');
      assert.match(
        (await clusterWideAccount.refusal(["create", "-f", "-"], viewBinding)) ?? "accepted",
        /cannot change cluster-wide RBAC/,
      );
      assert.match(
        (await clusterWideAccount.refusal(["create", "-f", "-"], CONVERSION_WEBHOOK_CRD)) ?? "accepted",
        /must name a Service/,
      );
      assert.match(
        (await clusterWideAccount.refusal(["-n", "kube-system", "create", "configmap", "x", "--from-literal=a=b"])) ??
          "accepted",
        /kube-system belongs to tempkube/,
      );
    });
  },
);
