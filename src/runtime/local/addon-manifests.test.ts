import assert from "node:assert/strict";
import { it } from "node:test";
import YAML from "yaml";
import { coreDns, localPath, tenantPolicies, tenantRbac } from "./addon-manifests.js";

const kinds = (text: string) => YAML.parseAllDocuments(text).map((d) => (d.toJSON() as { kind: string }).kind);

it("parses as YAML documents of the expected kinds", () => {
  assert.deepEqual(kinds(tenantRbac()), ["ClusterRoleBinding"]);
  assert.ok(kinds(coreDns()).includes("Deployment"));
  assert.ok(kinds(localPath("/v")).includes("StorageClass"));
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
