import assert from "node:assert/strict";
import { describe, it } from "node:test";
import YAML from "yaml";
import { manifestObjects } from "./apply-manifests.js";
import { thawWindowObjects, thawWindowPolicy } from "./thaw-window.js";

type Policy = {
  kind: string;
  metadata: { name: string };
  spec: {
    failurePolicy: string;
    paramKind?: unknown;
    matchConstraints: { resourceRules: { resources: string[] }[] };
    matchConditions: { expression: string }[];
    validations: { expression: string }[];
  };
};

describe("thaw window (no apiserver)", () => {
  it("is a policy on kubelets' node status updates that never fails closed and needs no parameter", () => {
    const [policy, binding] = YAML.parseAllDocuments(thawWindowPolicy()).map((d) => d.toJS()) as [
      Policy,
      { kind: string; spec: { policyName: string; paramRef?: unknown } },
    ];
    assert.equal(policy.kind, "ValidatingAdmissionPolicy");
    assert.equal(policy.spec.failurePolicy, "Ignore");
    assert.deepEqual(policy.spec.matchConstraints.resourceRules[0].resources, ["nodes/status"]);
    assert.match(policy.spec.matchConditions[0].expression, /system:node:/);
    // Aggregated apiservers run the same policies: a parameter kind would need their RBAC too.
    assert.equal(policy.spec.paramKind, undefined);
    assert.equal(binding.kind, "ValidatingAdmissionPolicyBinding");
    assert.equal(binding.spec.policyName, policy.metadata.name);
    assert.equal(binding.spec.paramRef, undefined);
    // Closed: it refuses nothing.
    assert.equal(policy.spec.validations[0].expression, "!(false)");
    // Both kinds are ones the boot's apply knows (it refuses others by name).
    assert.equal(manifestObjects(thawWindowPolicy()).length, 2);
  });

  it("writes the window's start and end into the expression, with both stale reasons", () => {
    const since = Date.UTC(2026, 11, 2, 10, 0, 0);
    const open = (thawWindowObjects({ since })[0].object as Policy).spec.validations[0].expression;
    assert.match(open, /container runtime is down/);
    assert.match(open, /PLEG is not healthy/);
    assert.match(open, /timestamp\(c\.lastHeartbeatTime\) > timestamp\("2026-12-02T10:00:00\.000Z"\)/);
    assert.doesNotMatch(open, / < timestamp/, "open-ended until the thaw's end");
    const ended = (thawWindowObjects({ since, until: since + 15_000 })[0].object as Policy).spec.validations[0]
      .expression;
    assert.match(ended, /timestamp\(c\.lastHeartbeatTime\) < timestamp\("2026-12-02T10:00:15\.000Z"\)/);
  });
});
