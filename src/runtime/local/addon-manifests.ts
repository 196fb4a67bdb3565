import type { SizeLimits } from "../../core/cluster-spec.js";
import { IMAGES, type KubernetesRelease } from "../../setup/catalogue.js";
import { CONTROL_PLANE_NODE_LABEL, STARTING_TAINT } from "./component-configs.js";
import { DNS_SERVICE_IP } from "./network.js";
import type { ClusterEgress } from "./host-firewall.js";

/**
 * What every cluster carries besides the control plane, applied with the admin
 * credential right after the apiserver is ready. Plain YAML documents, kept here (and the
 * tenant guards in tenant-guards.ts) so that `kubectl get -A` in a cluster shows nothing
 * that is not written there.
 */

/**
 * MutatingAdmissionPolicy's API version: alpha in 1.33, beta in 1.34 and 1.35, off by
 * default in those, so the apiserver gets the feature gate and these resources in
 * --runtime-config; GA (`v1`, on by default) from 1.36 (k8s.io/apiserver pkg/features).
 */
export function mutatingPolicyApiVersion(release: KubernetesRelease): string {
  if (release.minor === "1.33") return "admissionregistration.k8s.io/v1alpha1";
  return mutatingPolicyIsGA(release) ? "admissionregistration.k8s.io/v1" : "admissionregistration.k8s.io/v1beta1";
}

export function mutatingPolicyIsGA(release: KubernetesRelease): boolean {
  return Number(release.minor.split(".")[1]) >= 36;
}

/** A byte count as a Kubernetes quantity in the largest binary unit that divides it. */
export function memoryQuantity(bytes: number): string {
  for (const [suffix, unit] of [
    ["Gi", 2 ** 30],
    ["Mi", 2 ** 20],
    ["Ki", 2 ** 10],
  ] as const) {
    if (bytes % unit === 0) return `${bytes / unit}${suffix}`;
  }
  return String(bytes);
}

export const NODE_CAPACITY_POLICY = "tempkube-node-capacity";

/**
 * Every node advertises the size preset's CPU and memory as capacity and allocatable. The
 * kubelet takes both from cAdvisor (the host's) and rewrites them on each status update,
 * so the apiserver rewrites them back on every write: the kubelet's CREATE of its Node and
 * its patches of nodes/status. Scheduler and kubelet admission both read the Node from the
 * apiserver, so pods are admitted by the preset; the cluster's cgroup enforces what the
 * host can. Tenants cannot change or remove it (tempkube-tenant-cluster-rbac).
 */
export function nodeCapacityPolicy(limits: SizeLimits, release: KubernetesRelease): { path: string; object: object }[] {
  const apiVersion = mutatingPolicyApiVersion(release);
  const cpu = String(limits.cpus);
  const memory = memoryQuantity(limits.memoryBytes);
  const patches = ["capacity", "allocatable"].flatMap((field) => [
    `JSONPatch{op: "add", path: "/status/${field}/cpu", value: "${cpu}"}`,
    `JSONPatch{op: "add", path: "/status/${field}/memory", value: "${memory}"}`,
  ]);
  const base = `/apis/${apiVersion}`;
  return [
    {
      path: `${base}/mutatingadmissionpolicies/${NODE_CAPACITY_POLICY}`,
      object: {
        apiVersion,
        kind: "MutatingAdmissionPolicy",
        metadata: { name: NODE_CAPACITY_POLICY },
        spec: {
          failurePolicy: "Fail",
          reinvocationPolicy: "Never",
          matchConstraints: {
            resourceRules: [
              {
                apiGroups: [""],
                apiVersions: ["v1"],
                operations: ["CREATE", "UPDATE"],
                resources: ["nodes", "nodes/status"],
              },
            ],
          },
          // "add" replaces a key that exists, but needs the map it goes in.
          matchConditions: [
            {
              name: "has-capacity",
              expression: "has(object.status) && has(object.status.capacity) && has(object.status.allocatable)",
            },
          ],
          mutations: [{ patchType: "JSONPatch", jsonPatch: { expression: `[${patches.join(", ")}]` } }],
        },
      },
    },
    {
      path: `${base}/mutatingadmissionpolicybindings/${NODE_CAPACITY_POLICY}`,
      object: {
        apiVersion,
        kind: "MutatingAdmissionPolicyBinding",
        metadata: { name: NODE_CAPACITY_POLICY },
        spec: { policyName: NODE_CAPACITY_POLICY },
      },
    },
  ];
}

/** The egress whose Corefile the datastore template holds (coreDnsWorkload). */
export const TEMPLATE_DNS_EGRESS: ClusterEgress = "none";

/**
 * CoreDNS's configuration. With egress `internet`, names outside the cluster are forwarded
 * to the node's resolv.conf (upstream-dns.ts: the host's nameservers). Without, there is no
 * `forward` at all, so such a lookup is refused at once (forwarding to a refusing upstream
 * costs 2-4 s a lookup: forward retries for up to 5 s, plugin/forward/forward.go ServeDNS).
 * The datastore template holds the `none` one; a cluster with another egress gets its own
 * at its first boot, before CoreDNS can be scheduled (writeCoreDnsConfig).
 */
export function corefile(egress: ClusterEgress): string {
  return `.:53 {
    errors
    health {
        lameduck 2s
    }
    kubernetes cluster.local in-addr.arpa ip6.arpa {
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
        ttl 30
    }
${
  egress === "internet"
    ? `    forward . /etc/resolv.conf {
        max_concurrent 1000
    }
`
    : ""
}    cache 30
    loadbalance
}
`;
}

/** The coredns ConfigMap of a cluster with this egress, for the apiserver. */
export function coreDnsConfigMap(egress: ClusterEgress): { path: string; object: object } {
  return {
    path: "/api/v1/namespaces/kube-system/configmaps/coredns",
    object: {
      apiVersion: "v1",
      kind: "ConfigMap",
      metadata: { name: "coredns", namespace: "kube-system" },
      data: { Corefile: corefile(egress) },
    },
  };
}

/**
 * CoreDNS's account, rights, configuration and Deployment: the same in every cluster, so they
 * are written into the datastore template (datastore-template.ts), with the ReplicaSet and the
 * not yet scheduled Pod that kube-controller-manager made from them there.
 */
export function coreDnsWorkload(): string {
  return `apiVersion: v1
kind: ServiceAccount
metadata: { name: coredns, namespace: kube-system }
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: { name: "system:coredns" }
rules:
- { apiGroups: [""], resources: [endpoints, services, pods, namespaces], verbs: [list, watch] }
- { apiGroups: [discovery.k8s.io], resources: [endpointslices], verbs: [list, watch] }
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: { name: "system:coredns" }
roleRef: { apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: "system:coredns" }
subjects: [{ kind: ServiceAccount, name: coredns, namespace: kube-system }]
---
apiVersion: v1
kind: ConfigMap
metadata: { name: coredns, namespace: kube-system }
data:
  Corefile: |
${corefile(TEMPLATE_DNS_EGRESS).trimEnd().replace(/^/gm, "    ")}
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: coredns
  namespace: kube-system
  labels: { k8s-app: kube-dns }
spec:
  replicas: 1
  selector: { matchLabels: { k8s-app: kube-dns } }
  template:
    metadata: { labels: { k8s-app: kube-dns } }
    spec:
      serviceAccountName: coredns
      priorityClassName: system-cluster-critical
      # In its node's namespace, so its address is the node's and stays the same across a
      # stop and start: the kube-dns endpoints kept in the store are right from the first
      # moment, and cluster DNS answers before kube-controller-manager (which waits for the
      # apiserver's bootstrap hooks) could have updated them to a new pod address.
      hostNetwork: true
      dnsPolicy: Default
      # On the control plane's node, whose namespace the apiserver listens in: CoreDNS reaches
      # it at the node's address (below), not through the kubernetes Service.
      nodeSelector: { ${CONTROL_PLANE_NODE_LABEL}: "true" }
      # not-ready: the node lifecycle controller lifts that taint once the node is Ready, but
      # kube-controller-manager starts seconds after the scheduler (it waits for the
      # apiserver's bootstrap hooks); CoreDNS needs no more than a running kubelet.
      # ${STARTING_TAINT}: lifted only once kube-proxy's rules are written, for pods that use
      # Service addresses; CoreDNS uses none, so it starts beside kube-proxy, not after it.
      tolerations:
      - { key: CriticalAddonsOnly, operator: Exists }
      - { key: node-role.kubernetes.io/control-plane, effect: NoSchedule }
      - { key: node.kubernetes.io/not-ready, effect: NoSchedule }
      - { key: ${STARTING_TAINT}, effect: NoSchedule }
      containers:
      - name: coredns
        image: ${IMAGES.coredns}
        imagePullPolicy: Never
        args: [-conf, /etc/coredns/Corefile]
        # The apiserver at its node's address (client-go's in-cluster config reads these two;
        # a container's own env wins over the kubelet's Service variables): without them a pod
        # that starts before the kubernetes Service exists (the apiserver makes it once its
        # bootstrap hooks pass, ~2 s after it serves) has no KUBERNETES_SERVICE_HOST, and
        # CoreDNS exits. The apiserver's certificate names that address.
        env:
        - { name: KUBERNETES_SERVICE_HOST, valueFrom: { fieldRef: { fieldPath: status.hostIP } } }
        - { name: KUBERNETES_SERVICE_PORT, value: "6443" }
        resources: { requests: { cpu: 10m, memory: 20Mi }, limits: { memory: 170Mi } }
        volumeMounts: [{ name: config, mountPath: /etc/coredns, readOnly: true }]
        ports:
        - { containerPort: 53, name: dns, protocol: UDP }
        - { containerPort: 53, name: dns-tcp, protocol: TCP }
        # No readiness probe: probes run at most once a second, and the first one (right after
        # the start) comes before CoreDNS has synced, so a probe delays Ready by a second on
        # every boot. CoreDNS does not listen before its Kubernetes caches are synced, and
        # tempkube reports a cluster ready only once a real lookup through the Service answers.
        livenessProbe: { httpGet: { path: /health, port: 8080 }, initialDelaySeconds: 30, periodSeconds: 10 }
      volumes:
      - name: config
        configMap: { name: coredns, items: [{ key: Corefile, path: Corefile }] }
`;
}

/**
 * CoreDNS's Service: made by each cluster at boot, since a Service's address is recorded by
 * the apiserver's allocator (IPAddress objects), which the datastore template does not carry.
 */
export function coreDnsService(): string {
  return `apiVersion: v1
kind: Service
metadata:
  name: kube-dns
  namespace: kube-system
  labels: { k8s-app: kube-dns, kubernetes.io/name: CoreDNS }
spec:
  selector: { k8s-app: kube-dns }
  clusterIP: ${DNS_SERVICE_IP}
  ports:
  - { name: dns, port: 53, protocol: UDP }
  - { name: dns-tcp, port: 53, protocol: TCP }
`;
}

/** rancher/local-path-provisioner as the default StorageClass, volumes under the cluster's directory. */
export function localPath(volumesDir: string): string {
  return `apiVersion: v1
kind: ServiceAccount
metadata: { name: local-path-provisioner-service-account, namespace: kube-system }
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: { name: "tempkube:local-path-provisioner" }
rules:
- { apiGroups: [""], resources: [nodes, persistentvolumeclaims, configmaps, pods, pods/log], verbs: [get, list, watch] }
- { apiGroups: [""], resources: [persistentvolumes], verbs: [get, list, watch, create, patch, update, delete] }
- { apiGroups: [""], resources: [events], verbs: [create, patch] }
- { apiGroups: [storage.k8s.io], resources: [storageclasses], verbs: [get, list, watch] }
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: { name: "tempkube:local-path-provisioner" }
roleRef: { apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: "tempkube:local-path-provisioner" }
subjects: [{ kind: ServiceAccount, name: local-path-provisioner-service-account, namespace: kube-system }]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: { name: local-path-provisioner, namespace: kube-system }
rules:
- { apiGroups: [""], resources: [pods], verbs: [get, list, watch, create, patch, update, delete] }
- { apiGroups: [coordination.k8s.io], resources: [leases], verbs: [get, create, update] }
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: { name: local-path-provisioner, namespace: kube-system }
roleRef: { apiGroup: rbac.authorization.k8s.io, kind: Role, name: local-path-provisioner }
subjects: [{ kind: ServiceAccount, name: local-path-provisioner-service-account, namespace: kube-system }]
---
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata:
  name: local-path
  annotations: { storageclass.kubernetes.io/is-default-class: "true" }
provisioner: rancher.io/local-path
volumeBindingMode: WaitForFirstConsumer
reclaimPolicy: Delete
---
apiVersion: v1
kind: ConfigMap
metadata: { name: local-path-config, namespace: kube-system }
data:
  config.json: |
    { "nodePathMap": [{ "node": "DEFAULT_PATH_FOR_NON_LISTED_NODES", "paths": ["${volumesDir}"] }] }
  setup: |
    #!/bin/sh
    set -eu
    mkdir -m 0777 -p "$VOL_DIR"
  teardown: |
    #!/bin/sh
    set -eu
    rm -rf "$VOL_DIR"
  helperPod.yaml: |
    apiVersion: v1
    kind: Pod
    metadata: { name: helper-pod }
    spec:
      priorityClassName: system-node-critical
      tolerations: [{ operator: Exists }]
      containers:
      - name: helper-pod
        image: ${IMAGES.busybox}
        imagePullPolicy: Never
---
apiVersion: apps/v1
kind: Deployment
metadata: { name: local-path-provisioner, namespace: kube-system }
spec:
  replicas: 1
  selector: { matchLabels: { app: local-path-provisioner } }
  template:
    metadata: { labels: { app: local-path-provisioner } }
    spec:
      serviceAccountName: local-path-provisioner-service-account
      tolerations: [{ key: CriticalAddonsOnly, operator: Exists }, { key: node-role.kubernetes.io/control-plane, effect: NoSchedule }]
      containers:
      - name: local-path-provisioner
        image: ${IMAGES.localPath}
        imagePullPolicy: Never
        command: [local-path-provisioner, --debug, start, --config, /etc/config/config.json, --helper-image, ${IMAGES.busybox}]
        env:
        - { name: POD_NAMESPACE, valueFrom: { fieldRef: { fieldPath: metadata.namespace } } }
        - { name: CONFIG_MOUNT_PATH, value: /etc/config/ }
        resources: { requests: { cpu: 5m, memory: 16Mi } }
        volumeMounts: [{ name: config, mountPath: /etc/config/ }]
      volumes:
      - name: config
        configMap: { name: local-path-config }
`;
}

/** kube-controller-manager's root CA publisher writes exactly this (pkg/controller/certificates/rootcacertpublisher). */
export function rootCaConfigMap(caPem: string): object {
  return {
    apiVersion: "v1",
    kind: "ConfigMap",
    metadata: {
      name: "kube-root-ca.crt",
      annotations: {
        "kubernetes.io/description":
          "Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints " +
          "such as the internal service IP or kubernetes.default.svc. No other usage is guaranteed across distributions of Kubernetes clusters.",
      },
    },
    data: { "ca.crt": caPem },
  };
}
