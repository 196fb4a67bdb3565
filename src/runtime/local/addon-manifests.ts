import type { SizeLimits } from "../../core/cluster-spec.js";
import { IMAGES, type KubernetesRelease } from "../../setup/catalogue.js";
import { DNS_SERVICE_IP } from "./network.js";

/**
 * What every cluster carries besides the control plane, applied with the admin
 * credential right after the apiserver is ready. Plain YAML documents, kept here in one
 * place so that `kubectl get -A` in a cluster shows nothing that is not written below.
 */
export const TENANT_GROUP = "tenants";
/** Label of the per-CRD ClusterRoles that tools/cluster-controllers writes (crd_rights.go). */
export const TENANT_CUSTOM_RESOURCES_LABEL = "tempkube.dev/aggregate-to-tenant-custom-resources";

/**
 * What the tenant credential may do. Not cluster-admin: admission policies are exempt from
 * admission upstream, so only authorization can keep tenants from deleting the guards
 * below, and RBAC can only add. The tenant gets every verb on the API groups of workloads
 * (a ValidatingAdmissionPolicy still guards cluster-wide RBAC, kube-system and namespace
 * labels), read-only access to the configuration groups, and none of: the kubelet's API
 * (nodes/proxy: exec into any pod), impersonation, escalate, or binding roles it does not
 * hold (except the stock admin/edit/view roles, within its namespaces). The custom
 * resources of CRDs come through tempkube:tenant-custom-resources, which aggregates one
 * ClusterRole per CRD written by tools/cluster-controllers (crd_rights.go), never for a
 * group that the apiserver itself or an aggregated API serves.
 */
const WORKLOAD_GROUPS = ["apps", "autoscaling", "batch", "policy", "networking.k8s.io", "storage.k8s.io", "apiextensions.k8s.io",
  "discovery.k8s.io", "coordination.k8s.io", "events.k8s.io", "scheduling.k8s.io", "node.k8s.io", "resource.k8s.io", "rbac.authorization.k8s.io",
  "snapshot.storage.k8s.io", "gateway.networking.k8s.io"];
const READ_ONLY_GROUPS = ["admissionregistration.k8s.io", "apiregistration.k8s.io", "certificates.k8s.io", "flowcontrol.apiserver.k8s.io"];
const CORE_RESOURCES = ["pods", "pods/log", "pods/exec", "pods/attach", "pods/portforward", "pods/eviction", "pods/ephemeralcontainers", "services",
  "services/proxy", "endpoints", "configmaps", "secrets", "persistentvolumeclaims", "persistentvolumes", "serviceaccounts", "serviceaccounts/token",
  "events", "limitranges", "resourcequotas", "replicationcontrollers", "replicationcontrollers/scale", "podtemplates", "namespaces", "nodes"];
const ALL_VERBS = "[get, list, watch, create, update, patch, delete, deletecollection]";
const list = (items: string[]) => `[${items.map((i) => JSON.stringify(i)).join(", ")}]`;

export function tenantRbac(): string {
  return `apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: tempkube:tenant
rules:
- { apiGroups: [""], resources: ${list(CORE_RESOURCES)}, verbs: ${ALL_VERBS} }
- { apiGroups: [""], resources: [nodes/status, componentstatuses, pods/status, services/status], verbs: [get, list, watch] }
- { apiGroups: ${list(WORKLOAD_GROUPS)}, resources: ["*"], verbs: ${ALL_VERBS} }
- { apiGroups: ${list(READ_ONLY_GROUPS)}, resources: ["*"], verbs: [get, list, watch] }
- { apiGroups: [authentication.k8s.io, authorization.k8s.io], resources: ["*"], verbs: [create] }
- { apiGroups: [rbac.authorization.k8s.io], resources: [clusterroles], verbs: [bind], resourceNames: [admin, edit, view] }
- { nonResourceURLs: ["*"], verbs: [get] }
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: tempkube:tenants
roleRef: { apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: "tempkube:tenant" }
subjects:
- { apiGroup: rbac.authorization.k8s.io, kind: Group, name: ${TENANT_GROUP} }
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: tempkube:tenant-custom-resources
aggregationRule:
  clusterRoleSelectors:
  - matchLabels: { ${TENANT_CUSTOM_RESOURCES_LABEL}: "true" }
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: tempkube:tenant-custom-resources
roleRef: { apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: "tempkube:tenant-custom-resources" }
subjects:
- { apiGroup: rbac.authorization.k8s.io, kind: Group, name: ${TENANT_GROUP} }
`;
}

function policy(name: string, rules: string, matchCondition: string | undefined, validations: string): string {
  return `apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata:
  name: ${name}
spec:
  failurePolicy: Fail
  matchConstraints:
    resourceRules:
${rules}${matchCondition ? `
  matchConditions:
  - name: tenant
    expression: "${matchCondition}"` : ""}
  validations:
${validations}
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata:
  name: ${name}
spec:
  policyName: ${name}
  validationActions: [Deny]
`;
}

const IS_TENANT = `request.userInfo.groups.exists(g, g == '${TENANT_GROUP}')`;

/**
 * API groups that Kubernetes serves itself (in any release tempkube offers, enabled or not).
 * A CRD in one of them can share a built-in resource's storage path (e.g.
 * `apiservices.apiregistration.k8s.io`): deleting it then deletes the built-in objects
 * (seen: the APIService `v1.apiregistration.k8s.io` went). Groups below them, such as
 * `gateway.networking.k8s.io`, are not built in and stay open to tenants.
 */
export const BUILT_IN_API_GROUPS = [
  "admissionregistration.k8s.io", "apiextensions.k8s.io", "apiregistration.k8s.io", "apps", "authentication.k8s.io",
  "authorization.k8s.io", "autoscaling", "batch", "certificates.k8s.io", "coordination.k8s.io", "discovery.k8s.io", "events.k8s.io",
  "extensions", "flowcontrol.apiserver.k8s.io", "internal.apiserver.k8s.io", "networking.k8s.io", "node.k8s.io", "policy",
  "rbac.authorization.k8s.io", "resource.k8s.io", "scheduling.k8s.io", "storage.k8s.io", "storagemigration.k8s.io",
];

/**
 * Guards for the tenant credential: no cluster-wide RBAC, no admission configuration, no
 * CRD in a built-in API group, no writes in kube-system (exempt from Pod Security), no
 * privileged namespaces unless the cluster allows privileged pods; for everyone outside
 * kube-system, no host ports below 1024 other than 80 and 443.
 */
export function tenantPolicies(privilegedAllowed: boolean): string {
  const docs = [
    policy("tempkube-tenant-cluster-rbac", `    - apiGroups: [rbac.authorization.k8s.io]
      apiVersions: ["*"]
      operations: [CREATE, UPDATE, DELETE]
      resources: [clusterroles, clusterrolebindings]
    - apiGroups: [admissionregistration.k8s.io]
      apiVersions: ["*"]
      operations: [CREATE, UPDATE, DELETE]
      resources: ["*"]`, IS_TENANT, `  - expression: "false"
    message: "tenants cannot change cluster-wide RBAC or admission configuration; use a Role and RoleBinding in your namespace"
    reason: Forbidden`),
    policy("tempkube-tenant-built-in-groups", `    - apiGroups: [apiextensions.k8s.io]
      apiVersions: ["*"]
      operations: [CREATE, UPDATE]
      resources: [customresourcedefinitions]`, IS_TENANT, `  - expression: "!(object.spec.group in ${list(BUILT_IN_API_GROUPS).replace(/"/g, "'")})"
    messageExpression: "'the API group ' + object.spec.group + ' is built into Kubernetes; a CRD of tenants needs a group of its own'"
    reason: Forbidden`),
    // Subresources too ("*/*"): a token for a kube-system ServiceAccount, exec into its pods (CONNECT).
    policy("tempkube-tenant-kube-system", `    - apiGroups: ["*"]
      apiVersions: ["*"]
      operations: [CREATE, UPDATE, DELETE, CONNECT]
      resources: ["*/*"]
      scope: Namespaced`, `${IS_TENANT} && request.namespace == 'kube-system'`, `  - expression: "false"
    message: "kube-system belongs to tempkube; tenants may read it but not change it"
    reason: Forbidden`),
    policy("tempkube-host-ports", `    - apiGroups: [""]
      apiVersions: [v1]
      operations: [CREATE, UPDATE]
      resources: [pods]`, "request.namespace != 'kube-system'", `  - expression: >-
      object.spec.containers.all(c, !has(c.ports) || c.ports.all(p, !has(p.hostPort) || p.hostPort == 0 || p.hostPort >= 1024 || p.hostPort == 80 || p.hostPort == 443))
    message: "host ports below 1024 are not allowed, except 80 and 443"
    reason: Forbidden`),
  ];
  if (!privilegedAllowed) {
    docs.push(policy("tempkube-tenant-pod-security-labels", `    - apiGroups: [""]
      apiVersions: [v1]
      operations: [CREATE, UPDATE]
      resources: [namespaces]`, IS_TENANT, `  - expression: >-
      !has(object.metadata.labels) || !object.metadata.labels.exists(k, k.startsWith('pod-security.kubernetes.io/') && object.metadata.labels[k] == 'privileged')
    message: "this cluster does not allow privileged pods; a namespace cannot be labelled pod-security privileged"
    reason: Forbidden`));
  }
  return docs.join("---\n");
}

/**
 * MutatingAdmissionPolicy's API version: beta in 1.34, alpha in 1.33; off by default in
 * both, so the apiserver gets the feature gate and these resources in --runtime-config.
 */
export function mutatingPolicyApiVersion(release: KubernetesRelease): string {
  return release.minor === "1.33" ? "admissionregistration.k8s.io/v1alpha1" : "admissionregistration.k8s.io/v1beta1";
}

/** A byte count as a Kubernetes quantity in the largest binary unit that divides it. */
export function memoryQuantity(bytes: number): string {
  for (const [suffix, unit] of [["Gi", 2 ** 30], ["Mi", 2 ** 20], ["Ki", 2 ** 10]] as const) {
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
  return [{
    path: `${base}/mutatingadmissionpolicies/${NODE_CAPACITY_POLICY}`,
    object: {
      apiVersion,
      kind: "MutatingAdmissionPolicy",
      metadata: { name: NODE_CAPACITY_POLICY },
      spec: {
        failurePolicy: "Fail",
        reinvocationPolicy: "Never",
        matchConstraints: {
          resourceRules: [{ apiGroups: [""], apiVersions: ["v1"], operations: ["CREATE", "UPDATE"], resources: ["nodes", "nodes/status"] }],
        },
        // "add" replaces a key that exists, but needs the map it goes in.
        matchConditions: [{ name: "has-capacity", expression: "has(object.status) && has(object.status.capacity) && has(object.status.allocatable)" }],
        mutations: [{ patchType: "JSONPatch", jsonPatch: { expression: `[${patches.join(", ")}]` } }],
      },
    },
  }, {
    path: `${base}/mutatingadmissionpolicybindings/${NODE_CAPACITY_POLICY}`,
    object: {
      apiVersion,
      kind: "MutatingAdmissionPolicyBinding",
      metadata: { name: NODE_CAPACITY_POLICY },
      spec: { policyName: NODE_CAPACITY_POLICY },
    },
  }];
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
    .:53 {
        errors
        health {
            lameduck 2s
        }
        kubernetes cluster.local in-addr.arpa ip6.arpa {
            pods insecure
            fallthrough in-addr.arpa ip6.arpa
            ttl 30
        }
        cache 30
        loadbalance
    }
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
      # not-ready: the node lifecycle controller lifts that taint once the node is Ready, but
      # kube-controller-manager starts seconds after the scheduler (it waits for the
      # apiserver's bootstrap hooks); CoreDNS needs no more than a running kubelet.
      tolerations:
      - { key: CriticalAddonsOnly, operator: Exists }
      - { key: node-role.kubernetes.io/control-plane, effect: NoSchedule }
      - { key: node.kubernetes.io/not-ready, effect: NoSchedule }
      containers:
      - name: coredns
        image: ${IMAGES.coredns}
        imagePullPolicy: Never
        args: [-conf, /etc/coredns/Corefile]
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
        "kubernetes.io/description": "Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints " +
          "such as the internal service IP or kubernetes.default.svc. No other usage is guaranteed across distributions of Kubernetes clusters.",
      },
    },
    data: { "ca.crt": caPem },
  };
}
