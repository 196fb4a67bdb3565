import assert from "node:assert/strict";
import { it } from "node:test";
import YAML from "yaml";
import {
  authorizationConfig,
  PERSISTENT_VOLUME_SOURCES,
  POD_VOLUME_SOURCES,
  TENANT_CUSTOM_RESOURCES_LABEL,
  TENANT_GROUP,
  tenantPolicies,
  tenantRbac,
} from "./tenant-guards.js";

type Rule = { apiGroups?: string[]; resources?: string[]; verbs: string[] };
type Doc = {
  kind: string;
  metadata: { name: string };
  rules?: Rule[];
  subjects?: { name: string }[];
  roleRef?: { name: string };
  aggregationRule?: { clusterRoleSelectors: { matchLabels: Record<string, string> }[] };
  spec?: { matchConditions?: { expression: string }[]; validations?: { expression: string }[] };
};
const docs = (text: string) => YAML.parseAllDocuments(text).map((d) => d.toJSON() as Doc);
const policies = (privileged: boolean) =>
  docs(tenantPolicies(privileged)).filter((d) => d.kind === "ValidatingAdmissionPolicy");

/** The verbs the tenant role grants on a resource of a group (any rule that covers it). */
function granted(group: string, resource: string): Set<string> {
  const role = docs(tenantRbac()).find((d) => d.metadata.name === "tempkube:tenant")!;
  return new Set(
    role
      .rules!.filter(
        (r) => r.apiGroups?.includes(group) && (r.resources?.includes(resource) || r.resources?.includes("*")),
      )
      .flatMap((r) => r.verbs),
  );
}

it("parses as YAML documents of the expected kinds", () => {
  assert.deepEqual(
    docs(tenantRbac()).map((d) => d.kind),
    ["ClusterRole", "ClusterRoleBinding", "ClusterRole", "ClusterRoleBinding"],
  );
  for (const privileged of [true, false]) {
    const kinds = docs(tenantPolicies(privileged)).map((d) => d.kind);
    assert.equal(
      kinds.filter((k) => k === "ValidatingAdmissionPolicy").length,
      kinds.filter((k) => k === "ValidatingAdmissionPolicyBinding").length,
    );
  }
});

it("binds tenants to the custom resources role, which aggregates the per-CRD roles and has none of its own", () => {
  const all = docs(tenantRbac());
  const role = all.find((d) => d.kind === "ClusterRole" && d.metadata.name === "tempkube:tenant-custom-resources")!;
  assert.deepEqual(role.aggregationRule?.clusterRoleSelectors, [
    { matchLabels: { [TENANT_CUSTOM_RESOURCES_LABEL]: "true" } },
  ]);
  assert.equal(role.rules, undefined, "the aggregation controller owns the rules");
  const binding = all.find(
    (d) => d.kind === "ClusterRoleBinding" && d.roleRef?.name === "tempkube:tenant-custom-resources",
  )!;
  assert.deepEqual(
    binding.subjects?.map((s) => s.name),
    [TENANT_GROUP],
  );
});

it("lets tenants read but not write storage classes, and not register nodes", () => {
  assert.deepEqual([...granted("storage.k8s.io", "storageclasses")].sort(), ["get", "list", "watch"]);
  assert.ok(!granted("", "nodes").has("create"));
  assert.ok(granted("", "nodes").has("patch"), "tenants still label and taint their nodes");
  assert.ok(granted("", "persistentvolumes").has("create"), "nfs and csi volumes stay possible");
});

it("keys every guard on who is not tempkube, never on the tenants' group", () => {
  for (const privileged of [true, false]) {
    for (const p of policies(privileged)) {
      const conditions = (p.spec?.matchConditions ?? []).map((c) => c.expression).join(" ");
      assert.ok(
        !conditions.includes(`'${TENANT_GROUP}'`),
        `${p.metadata.name} matches on the tenants group: ${conditions}`,
      );
      // Pod-level guards hold for every pod outside kube-system, whoever creates it.
      if (!["tempkube-host-ports", "tempkube-pod-volumes"].includes(p.metadata.name)) {
        assert.match(
          conditions,
          /^(request\.namespace == 'kube-system' && )?!\(request\.userInfo\.username in \[/,
          p.metadata.name,
        );
        assert.match(conditions, /startsWith\('system:serviceaccount:kube-system:'\)/, p.metadata.name);
      }
    }
  }
});

it("guards the node's storage and namespace labels only when privileged pods are not allowed", () => {
  const names = (privileged: boolean) => policies(privileged).map((d) => d.metadata.name);
  for (const guard of ["tempkube-tenant-pod-security-labels", "tempkube-tenant-host-storage", "tempkube-pod-volumes"]) {
    assert.ok(names(false).includes(guard), guard);
    assert.ok(!names(true).includes(guard), guard);
  }
  for (const guard of [
    "tempkube-tenant-cluster-rbac",
    "tempkube-host-ports",
    "tempkube-tenant-kube-system",
    "tempkube-tenant-crd-conversion-webhooks",
  ]) {
    assert.ok(names(true).includes(guard), guard);
  }
  const storage = policies(false).find((p) => p.metadata.name === "tempkube-tenant-host-storage")!;
  assert.equal(
    storage.spec?.validations?.[0].expression,
    PERSISTENT_VOLUME_SOURCES.map((f) => `has(object.spec.${f})`).join(" || "),
  );
  const volumes = policies(false).find((p) => p.metadata.name === "tempkube-pod-volumes")!.spec!.validations![0]
    .expression;
  for (const source of ["hostPath", "gitRepo", "flexVolume", "local", "iscsi"])
    assert.ok(!volumes.includes(`has(v.${source})`), source);
  for (const source of POD_VOLUME_SOURCES) assert.ok(volumes.includes(`has(v.${source})`), source);
});

it("asks the Secrets webhook between Node and RBAC, only about kube-system's Secrets and lists of all, and denies when it cannot ask", () => {
  type Authorizer = {
    type: string;
    webhook?: {
      failurePolicy: string;
      matchConditions: { expression: string }[];
      connectionInfo: { kubeConfigFile: string };
    };
  };
  const config = YAML.parse(authorizationConfig("/c/secrets-authorizer.kubeconfig")) as {
    apiVersion: string;
    authorizers: Authorizer[];
  };
  assert.equal(config.apiVersion, "apiserver.config.k8s.io/v1");
  assert.deepEqual(
    config.authorizers.map((a) => a.type),
    ["Node", "Webhook", "RBAC"],
  );
  const webhook = config.authorizers[1].webhook!;
  assert.equal(webhook.failurePolicy, "Deny");
  assert.equal(webhook.connectionInfo.kubeConfigFile, "/c/secrets-authorizer.kubeconfig");
  const conditions = webhook.matchConditions.map((c) => c.expression);
  assert.match(conditions[0], /request\.resourceAttributes\.resource == 'secrets'/);
  assert.match(conditions[1], /in \['', 'kube-system'\]/);
  assert.match(
    conditions[2],
    /^!\(request\.user in \[.*startsWith\('system:serviceaccount:kube-system:'\).*has\(request\.groups\)/,
  );
});
