import assert from "node:assert/strict";
import { describe, it } from "node:test";
import YAML from "yaml";
import { manifestObjects } from "./apply-manifests.js";
import { THAW_WINDOW, thawWindowObject, thawWindowPolicy } from "./thaw-window.js";

describe("thaw window (no apiserver)", () => {
  it("is a policy on kubelets' node status updates, bound to the window's ConfigMap, never failing closed", () => {
    const [policy, binding] = YAML.parseAllDocuments(thawWindowPolicy()).map((d) => d.toJS());
    assert.equal(policy.kind, "ValidatingAdmissionPolicy");
    assert.equal(policy.spec.failurePolicy, "Ignore");
    assert.deepEqual(policy.spec.matchConstraints.resourceRules[0].resources, ["nodes/status"]);
    assert.match(policy.spec.matchConditions[0].expression, /system:node:/);
    assert.match(policy.spec.validations[0].expression, /container runtime is down/);
    assert.match(policy.spec.validations[0].expression, /PLEG is not healthy/);
    assert.equal(binding.kind, "ValidatingAdmissionPolicyBinding");
    assert.equal(binding.spec.policyName, policy.metadata.name);
    assert.deepEqual(binding.spec.paramRef, { ...THAW_WINDOW, parameterNotFoundAction: "Allow" });
    // Both kinds are ones the boot's apply knows (it refuses others by name).
    assert.equal(manifestObjects(thawWindowPolicy()).length, 2);
  });

  it("writes the window as RFC 3339 times, empty when not set", () => {
    const open = thawWindowObject({ since: Date.UTC(2026, 11, 2, 10, 0, 0) });
    assert.equal(open.path, "/api/v1/namespaces/kube-system/configmaps/tempkube-thaw-window");
    assert.deepEqual((open.object as { data: object }).data, { since: "2026-12-02T10:00:00.000Z", until: "" });
    const closed = thawWindowObject({});
    assert.deepEqual((closed.object as { data: object }).data, { since: "", until: "" });
  });
});
