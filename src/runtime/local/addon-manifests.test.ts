import assert from "node:assert/strict";
import { it } from "node:test";
import YAML from "yaml";
import { SIZE_PRESETS } from "../../core/cluster-spec.js";
import { findRelease } from "../../setup/catalogue.js";
import {
  coreDnsConfigMap,
  coreDnsService,
  coreDnsWorkload,
  corefile,
  localPath,
  memoryQuantity,
  nodeCapacityPolicy,
} from "./addon-manifests.js";

const kinds = (text: string) => YAML.parseAllDocuments(text).map((d) => (d.toJSON() as { kind: string }).kind);

it("parses as YAML documents of the expected kinds", () => {
  assert.deepEqual(kinds(coreDnsWorkload()), [
    "ServiceAccount",
    "ClusterRole",
    "ClusterRoleBinding",
    "ConfigMap",
    "Deployment",
  ]);
  assert.deepEqual(kinds(coreDnsService()), ["Service"]);
  assert.ok(kinds(localPath("/v")).includes("StorageClass"));
});

it("writes the node capacity policy in each release's API version, with the preset's figures", () => {
  assert.equal(memoryQuantity(32 * 2 ** 30), "32Gi");
  assert.equal(memoryQuantity(1536 * 2 ** 20), "1536Mi");
  for (const [minor, version] of [
    ["1.37", "v1"],
    ["1.36", "v1"],
    ["1.35", "v1beta1"],
    ["1.34", "v1beta1"],
    ["1.33", "v1alpha1"],
  ]) {
    const [policy, binding] = nodeCapacityPolicy(SIZE_PRESETS["1-mid"], findRelease(minor)!);
    assert.equal(
      policy.path,
      `/apis/admissionregistration.k8s.io/${version}/mutatingadmissionpolicies/tempkube-node-capacity`,
    );
    assert.equal(
      binding.path,
      `/apis/admissionregistration.k8s.io/${version}/mutatingadmissionpolicybindings/tempkube-node-capacity`,
    );
    const { expression } = (policy.object as { spec: { mutations: { jsonPatch: { expression: string } }[] } }).spec
      .mutations[0].jsonPatch;
    for (const field of ["capacity", "allocatable"]) {
      assert.ok(expression.includes(`path: "/status/${field}/cpu", value: "8"`), expression);
      assert.ok(expression.includes(`path: "/status/${field}/memory", value: "32Gi"`), expression);
    }
  }
});

it("forwards outside names only for clusters with egress, and the template holds the one without", () => {
  assert.match(corefile("internet"), /forward \. \/etc\/resolv\.conf/);
  assert.doesNotMatch(corefile("none"), /forward/);
  const configMap = YAML.parseAllDocuments(coreDnsWorkload())
    .map((d) => d.toJSON() as { kind: string; data?: { Corefile: string } })
    .find((d) => d.kind === "ConfigMap")!;
  assert.equal(configMap.data?.Corefile, corefile("none"));
  assert.equal(
    (coreDnsConfigMap("internet").object as { data: { Corefile: string } }).data.Corefile,
    corefile("internet"),
  );
});
