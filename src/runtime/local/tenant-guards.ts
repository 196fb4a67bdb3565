import YAML from "yaml";
import { EPHEMERON_BINDABLE_ROLE } from "../../services/ephemeron-crd.js";

/**
 * What keeps a tenant inside its cluster, as far as the cluster's own API can: the tenant's
 * RBAC role and the admission policies, applied with the admin credential on every boot
 * (so that a cluster made before a guard existed gets it at its next start).
 *
 * The guards are keyed on who is *not* tempkube, never on who the tenant is: a tenant sets
 * other identities in motion (a ServiceAccount it binds to its own role, the controllers
 * it runs with that account's token), and a guard that matched only the tenant's group let
 * such an account relabel its namespace `privileged` (RBAC applies a RoleBinding in a
 * namespace to that namespace object too) and run host-PID pods. The network side (pods
 * and the apiserver kept from the host's services and from other clusters) is network.ts.
 */
export const TENANT_GROUP = "tenants";
/** Label of the per-CRD ClusterRoles that tools/cluster-controllers writes (crd_rights.go). */
export const TENANT_CUSTOM_RESOURCES_LABEL = "tempkube.dev/aggregate-to-tenant-custom-resources";

/**
 * The identities tempkube runs in a cluster, and nothing else: its admin credential and the
 * apiserver's own loopback client (group system:masters), the kubelets (system:nodes, held
 * in check by the Node authorizer and NodeRestriction), the control plane's components by
 * their certificates' names, and kube-system's ServiceAccounts (the controller manager's
 * controllers with --use-service-account-credentials, CoreDNS, local-path). No one else can
 * become one of these: tenants cannot write in kube-system (tempkube-tenant-kube-system,
 * which covers serviceaccounts/token), cannot sign certificates (certificates.k8s.io is
 * read-only to them) and cannot impersonate.
 */
export const TEMPKUBE_USERS = ["system:kube-controller-manager", "system:kube-scheduler", "system:kube-proxy"] as const;
export const TEMPKUBE_GROUPS = ["system:masters", "system:nodes"] as const;
export const TEMPKUBE_SERVICE_ACCOUNT_PREFIX = "system:serviceaccount:kube-system:";

const cel = (items: readonly string[]) => `[${items.map((i) => `'${i}'`).join(", ")}]`;
/**
 * CEL that holds for tempkube's identities: over an admission request by default, or over
 * an authorization request (SubjectAccessReview: `request.user`, `request.groups`).
 */
export function isTempkubeIdentity(username = "request.userInfo.username", groups = "request.userInfo.groups"): string {
  return (
    `(${username} in ${cel(TEMPKUBE_USERS)}` +
    ` || ${username}.startsWith('${TEMPKUBE_SERVICE_ACCOUNT_PREFIX}')` +
    ` || (has(${groups}) && ${groups}.exists(g, g in ${cel(TEMPKUBE_GROUPS)})))`
  );
}
const NOT_TEMPKUBE = `!${isTempkubeIdentity()}`;

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
 *
 * Read-only besides: storage.k8s.io (a StorageClass names a provisioner and its parameters,
 * and local-path's `nodePath` parameter puts volumes anywhere on the host: `local-path` is
 * the one class), and creating Nodes (a Node's addresses are where the apiserver connects
 * for a pod's logs and exec; only kubelets register nodes).
 */
const WORKLOAD_GROUPS = [
  "apps",
  "autoscaling",
  "batch",
  "policy",
  "networking.k8s.io",
  "apiextensions.k8s.io",
  "discovery.k8s.io",
  "coordination.k8s.io",
  "events.k8s.io",
  "scheduling.k8s.io",
  "node.k8s.io",
  "resource.k8s.io",
  "rbac.authorization.k8s.io",
  "snapshot.storage.k8s.io",
  "gateway.networking.k8s.io",
];
const READ_ONLY_GROUPS = [
  "admissionregistration.k8s.io",
  "apiregistration.k8s.io",
  "certificates.k8s.io",
  "flowcontrol.apiserver.k8s.io",
  "storage.k8s.io",
];
const CORE_RESOURCES = [
  "pods",
  "pods/log",
  "pods/exec",
  "pods/attach",
  "pods/portforward",
  "pods/eviction",
  "pods/ephemeralcontainers",
  "services",
  "services/proxy",
  "endpoints",
  "configmaps",
  "secrets",
  "persistentvolumeclaims",
  "persistentvolumes",
  "serviceaccounts",
  "serviceaccounts/token",
  "events",
  "limitranges",
  "resourcequotas",
  "replicationcontrollers",
  "replicationcontrollers/scale",
  "podtemplates",
  "namespaces",
];
const ALL_VERBS = "[get, list, watch, create, update, patch, delete, deletecollection]";
const list = (items: string[]) => `[${items.map((i) => JSON.stringify(i)).join(", ")}]`;

export function tenantRbac(): string {
  return `apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: tempkube:tenant
rules:
- { apiGroups: [""], resources: ${list(CORE_RESOURCES)}, verbs: ${ALL_VERBS} }
- { apiGroups: [""], resources: [nodes], verbs: [get, list, watch, update, patch, delete, deletecollection] }
- { apiGroups: [""], resources: [nodes/status, componentstatuses, pods/status, services/status], verbs: [get, list, watch] }
- { apiGroups: ${list(WORKLOAD_GROUPS)}, resources: ["*"], verbs: ${ALL_VERBS} }
- { apiGroups: ${list(READ_ONLY_GROUPS)}, resources: ["*"], verbs: [get, list, watch] }
- { apiGroups: [authentication.k8s.io, authorization.k8s.io], resources: ["*"], verbs: [create] }
- { apiGroups: [rbac.authorization.k8s.io], resources: [clusterroles], verbs: [bind], resourceNames: [admin, edit, view, "${EPHEMERON_BINDABLE_ROLE}"] }
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
${rules}${
    matchCondition
      ? `
  matchConditions:
  - name: not-tempkube
    expression: ${JSON.stringify(matchCondition)}`
      : ""
  }
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

/**
 * API groups that Kubernetes serves itself (in any release tempkube offers, enabled or not).
 * A CRD in one of them can share a built-in resource's storage path (e.g.
 * `apiservices.apiregistration.k8s.io`): deleting it then deletes the built-in objects
 * (seen: the APIService `v1.apiregistration.k8s.io` went). Groups below them, such as
 * `gateway.networking.k8s.io`, are not built in and stay open to tenants.
 */
export const BUILT_IN_API_GROUPS = [
  "admissionregistration.k8s.io",
  "apiextensions.k8s.io",
  "apiregistration.k8s.io",
  "apps",
  "authentication.k8s.io",
  "authorization.k8s.io",
  "autoscaling",
  "batch",
  "certificates.k8s.io",
  "coordination.k8s.io",
  "discovery.k8s.io",
  "events.k8s.io",
  "extensions",
  "flowcontrol.apiserver.k8s.io",
  "internal.apiserver.k8s.io",
  "networking.k8s.io",
  "node.k8s.io",
  "policy",
  "rbac.authorization.k8s.io",
  "resource.k8s.io",
  "scheduling.k8s.io",
  "storage.k8s.io",
  "storagemigration.k8s.io",
];

/**
 * Pod volume sources that mount nothing of the node's: Pod Security's "restricted" list
 * (configMap, csi, downwardAPI, emptyDir, ephemeral, persistentVolumeClaim, projected,
 * secret), plus nfs and image. "baseline" forbids only hostPath; it lets through gitRepo
 * (the kubelet runs the host's git as root: CVE-2024-10220), flexVolume (runs a driver
 * binary on the host), iscsi, fc, rbd, cephfs and glusterfs (host devices and tools).
 */
export const POD_VOLUME_SOURCES = [
  "configMap",
  "csi",
  "downwardAPI",
  "emptyDir",
  "ephemeral",
  "persistentVolumeClaim",
  "projected",
  "secret",
  "nfs",
  "image",
];
/**
 * PersistentVolume sources others than tempkube may create. Pod Security never looks through
 * a claim, so a tenant's `hostPath` or `local` PV bound by `volumeName` gave a pod the
 * host's files. PVs that local-path provisions (hostPath, by kube-system's account) still
 * work; a PV's source cannot change after creation (ValidatePersistentVolumeUpdate).
 */
export const PERSISTENT_VOLUME_SOURCES = ["csi", "nfs"];
const anyOf = (v: string, fields: string[]) => fields.map((f) => `has(${v}.${f})`).join(" || ");

/**
 * The admission guards. For everyone but tempkube's own identities: no cluster-wide RBAC or
 * admission configuration, no CRD in a built-in API group nor one whose conversion webhook
 * is a URL (the apiserver would call any address the tenant names, from the node's
 * network), no writes in kube-system (exempt from Pod Security); unless the cluster allows
 * privileged pods, no namespace labelled pod-security privileged and no PersistentVolume
 * of the node's storage. For every pod outside kube-system, whoever creates it (controllers
 * create pods for tenants): no host ports below 1024 other than 80 and 443, and unless
 * privileged pods are allowed, only volume sources that mount nothing of the node's.
 */
export function tenantPolicies(privilegedAllowed: boolean): string {
  const docs = [
    policy(
      "tempkube-tenant-cluster-rbac",
      `    - apiGroups: [rbac.authorization.k8s.io]
      apiVersions: ["*"]
      operations: [CREATE, UPDATE, DELETE]
      resources: [clusterroles, clusterrolebindings]
    - apiGroups: [admissionregistration.k8s.io]
      apiVersions: ["*"]
      operations: [CREATE, UPDATE, DELETE]
      resources: ["*"]`,
      NOT_TEMPKUBE,
      // One exception: a ClusterRoleBinding to tempkube:ephemerons (Ephemerons are cluster-scoped,
      // so no RoleBinding grants them; the role holds only what the tenant holds). roleRef is immutable.
      `  - expression: >-
      request.resource.resource == 'clusterrolebindings' && (request.operation == 'DELETE' ? oldObject.roleRef.name == '${EPHEMERON_BINDABLE_ROLE}' : (object.roleRef.kind == 'ClusterRole' && object.roleRef.name == '${EPHEMERON_BINDABLE_ROLE}' && (request.operation == 'CREATE' || oldObject.roleRef.name == '${EPHEMERON_BINDABLE_ROLE}')))
    message: "tenants cannot change cluster-wide RBAC or admission configuration (the one ClusterRoleBinding a tenant may make is to ClusterRole ${EPHEMERON_BINDABLE_ROLE}); use a Role and RoleBinding in your namespace"
    reason: Forbidden`,
    ),
    policy(
      "tempkube-tenant-built-in-groups",
      `    - apiGroups: [apiextensions.k8s.io]
      apiVersions: ["*"]
      operations: [CREATE, UPDATE]
      resources: [customresourcedefinitions]`,
      NOT_TEMPKUBE,
      `  - expression: "!(object.spec.group in ${cel(BUILT_IN_API_GROUPS)})"
    messageExpression: "'the API group ' + object.spec.group + ' is built into Kubernetes; a CRD of tenants needs a group of its own'"
    reason: Forbidden`,
    ),
    policy(
      "tempkube-tenant-crd-conversion-webhooks",
      `    - apiGroups: [apiextensions.k8s.io]
      apiVersions: ["*"]
      operations: [CREATE, UPDATE]
      resources: [customresourcedefinitions]`,
      NOT_TEMPKUBE,
      `  - expression: >-
      !has(object.spec.conversion) || !has(object.spec.conversion.webhook) || !has(object.spec.conversion.webhook.clientConfig) || !has(object.spec.conversion.webhook.clientConfig.url)
    message: "a CRD's conversion webhook must name a Service (spec.conversion.webhook.clientConfig.service), not a URL"
    reason: Forbidden`,
    ),
    // Subresources too ("*/*"): a token for a kube-system ServiceAccount, exec into its pods (CONNECT).
    policy(
      "tempkube-tenant-kube-system",
      `    - apiGroups: ["*"]
      apiVersions: ["*"]
      operations: [CREATE, UPDATE, DELETE, CONNECT]
      resources: ["*/*"]
      scope: Namespaced`,
      `request.namespace == 'kube-system' && ${NOT_TEMPKUBE}`,
      `  - expression: "false"
    message: "kube-system belongs to tempkube; tenants may read it but not change it"
    reason: Forbidden`,
    ),
    policy(
      "tempkube-host-ports",
      `    - apiGroups: [""]
      apiVersions: [v1]
      operations: [CREATE, UPDATE]
      resources: [pods]`,
      "request.namespace != 'kube-system'",
      `  - expression: >-
      object.spec.containers.all(c, !has(c.ports) || c.ports.all(p, !has(p.hostPort) || p.hostPort == 0 || p.hostPort >= 1024 || p.hostPort == 80 || p.hostPort == 443))
    message: "host ports below 1024 are not allowed, except 80 and 443"
    reason: Forbidden`,
    ),
  ];
  if (!privilegedAllowed) {
    docs.push(
      policy(
        "tempkube-tenant-pod-security-labels",
        `    - apiGroups: [""]
      apiVersions: [v1]
      operations: [CREATE, UPDATE]
      resources: [namespaces]`,
        NOT_TEMPKUBE,
        `  - expression: >-
      !has(object.metadata.labels) || !object.metadata.labels.exists(k, k.startsWith('pod-security.kubernetes.io/') && object.metadata.labels[k].lowerAscii() == 'privileged')
    message: "this cluster does not allow privileged pods; a namespace cannot be labelled pod-security privileged"
    reason: Forbidden`,
      ),
    );
    docs.push(
      policy(
        "tempkube-tenant-host-storage",
        `    - apiGroups: [""]
      apiVersions: [v1]
      operations: [CREATE]
      resources: [persistentvolumes]`,
        NOT_TEMPKUBE,
        `  - expression: ${JSON.stringify(anyOf("object.spec", PERSISTENT_VOLUME_SOURCES))}
    message: "a PersistentVolume made in this cluster may use ${PERSISTENT_VOLUME_SOURCES.join(" or ")} only: hostPath, local and other storage of the node's are not allowed (claim storage with a PersistentVolumeClaim on the local-path StorageClass)"
    reason: Forbidden`,
      ),
    );
    docs.push(
      policy(
        "tempkube-pod-volumes",
        `    - apiGroups: [""]
      apiVersions: [v1]
      operations: [CREATE]
      resources: [pods]`,
        "request.namespace != 'kube-system'",
        `  - expression: ${JSON.stringify(`!has(object.spec.volumes) || object.spec.volumes.all(v, ${anyOf("v", POD_VOLUME_SOURCES)})`)}
    messageExpression: ${JSON.stringify(`'volume ' + object.spec.volumes.filter(v, !(${anyOf("v", POD_VOLUME_SOURCES)}))[0].name + ': pod volumes may be ${POD_VOLUME_SOURCES.join(", ")}; hostPath, gitRepo, flexVolume and other sources on the node are not allowed in this cluster'`)}
    reason: Forbidden`,
      ),
    );
  }
  return docs.join("---\n");
}

/** Where the apiserver reaches tools/cluster-controllers' authorization webhook (in the control-plane node's namespace). */
export const SECRETS_AUTHORIZER_ADDRESS = "127.0.0.1:10270";

/**
 * The apiserver's authorizers: Node and RBAC as `--authorization-mode=Node,RBAC` had them,
 * with tools/cluster-controllers' webhook (secrets_authorizer.go) between them. RBAC can
 * only grant, and the tenant role grants Secrets in every namespace; the webhook denies
 * kube-system's, and lists across all namespaces (which would include them), to everyone
 * but tempkube. Only those requests are sent to it (matchConditions), so no other request
 * waits on it; failurePolicy Deny keeps them denied while it is not up yet.
 */
export function authorizationConfig(webhookKubeconfig: string): string {
  const secrets =
    "has(request.resourceAttributes) && request.resourceAttributes.resource == 'secrets'" +
    " && (!has(request.resourceAttributes.group) || request.resourceAttributes.group == '')";
  const namespace =
    "!has(request.resourceAttributes.namespace) || request.resourceAttributes.namespace in ['', 'kube-system']";
  return YAML.stringify({
    apiVersion: "apiserver.config.k8s.io/v1",
    kind: "AuthorizationConfiguration",
    authorizers: [
      { type: "Node", name: "node" },
      {
        type: "Webhook",
        name: "tempkube-secrets",
        webhook: {
          timeout: "3s",
          authorizedTTL: "5m",
          unauthorizedTTL: "30s",
          subjectAccessReviewVersion: "v1",
          matchConditionSubjectAccessReviewVersion: "v1",
          failurePolicy: "Deny",
          connectionInfo: { type: "KubeConfigFile", kubeConfigFile: webhookKubeconfig },
          matchConditions: [
            { expression: secrets },
            { expression: namespace },
            { expression: `!${isTempkubeIdentity("request.user", "request.groups")}` },
          ],
        },
      },
      { type: "RBAC", name: "rbac" },
    ],
  });
}

/** Everything that guards tenants, as YAML documents: applied at first boot and on every start. */
export function tenantGuards(privilegedAllowed: boolean): string {
  return [tenantRbac(), tenantPolicies(privilegedAllowed)].join("---\n");
}
