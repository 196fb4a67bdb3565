import assert from "node:assert/strict";
import { it } from "node:test";
import YAML from "yaml";
import { SIZE_PRESETS } from "../../core/cluster-spec.js";
import { findRelease } from "../../setup/catalogue.js";
import {
  TENANT_CUSTOM_RESOURCES_LABEL, TENANT_GROUP, coreDnsService, coreDnsWorkload, localPath, memoryQuantity, nodeCapacityPolicy, tenantPolicies, tenantRbac,
} from "./addon-manifests.js";

const kinds = (text: string) => YAML.parseAllDocuments(text).map((d) => (d.toJSON() as { kind: string }).kind);

it("parses as YAML documents of the expected kinds", () => {
  assert.deepEqual(kinds(tenantRbac()), ["ClusterRole", "ClusterRoleBinding", "ClusterRole", "ClusterRoleBinding"]);
  assert.deepEqual(kinds(coreDnsWorkload()), ["ServiceAccount", "ClusterRole", "ClusterRoleBinding", "ConfigMap", "Deployment"]);
  assert.deepEqual(kinds(coreDnsService()), ["Service"]);
  assert.ok(kinds(localPath("/v")).includes("StorageClass"));
});

it("binds tenants to the custom resources role, which aggregates the per-CRD roles and has none of its own", () => {
  type Doc = { kind: string; metadata: { name: string }; rules?: unknown[]; subjects?: { name: string }[]; roleRef?: { name: string };
    aggregationRule?: { clusterRoleSelectors: { matchLabels: Record<string, string> }[] } };
  const docs = YAML.parseAllDocuments(tenantRbac()).map((d) => d.toJSON() as Doc);
  const role = docs.find((d) => d.kind === "ClusterRole" && d.metadata.name === "tempkube:tenant-custom-resources")!;
  assert.deepEqual(role.aggregationRule?.clusterRoleSelectors, [{ matchLabels: { [TENANT_CUSTOM_RESOURCES_LABEL]: "true" } }]);
  assert.equal(role.rules, undefined, "the aggregation controller owns the rules");
  const binding = docs.find((d) => d.kind === "ClusterRoleBinding" && d.roleRef?.name === "tempkube:tenant-custom-resources")!;
  assert.deepEqual(binding.subjects?.map((s) => s.name), [TENANT_GROUP]);
});

it("guards namespace Pod Security labels only when privileged pods are not allowed", () => {
  const names = (privileged: boolean) => YAML.parseAllDocuments(tenantPolicies(privileged))
    .map((d) => d.toJSON() as { kind: string; metadata: { name: string } })
    .filter((d) => d.kind === "ValidatingAdmissionPolicy").map((d) => d.metadata.name);
  assert.ok(names(false).includes("tempkube-tenant-pod-security-labels"));
  assert.ok(!names(true).includes("tempkube-tenant-pod-security-labels"));
  assert.ok(names(true).includes("tempkube-tenant-cluster-rbac"));
  assert.ok(names(true).includes("tempkube-host-ports"));
});

it("writes the node capacity policy in each release's API version, with the preset's figures", () => {
  assert.equal(memoryQuantity(32 * 2 ** 30), "32Gi");
  assert.equal(memoryQuantity(1536 * 2 ** 20), "1536Mi");
  for (const [minor, version] of [["1.34", "v1beta1"], ["1.33", "v1alpha1"]]) {
    const [policy, binding] = nodeCapacityPolicy(SIZE_PRESETS["1-mid"], findRelease(minor)!);
    assert.equal(policy.path, `/apis/admissionregistration.k8s.io/${version}/mutatingadmissionpolicies/tempkube-node-capacity`);
    assert.equal(binding.path, `/apis/admissionregistration.k8s.io/${version}/mutatingadmissionpolicybindings/tempkube-node-capacity`);
    const { expression } = (policy.object as { spec: { mutations: { jsonPatch: { expression: string } }[] } }).spec.mutations[0].jsonPatch;
    for (const field of ["capacity", "allocatable"]) {
      assert.ok(expression.includes(`path: "/status/${field}/cpu", value: "8"`), expression);
      assert.ok(expression.includes(`path: "/status/${field}/memory", value: "32Gi"`), expression);
    }
  }
});
