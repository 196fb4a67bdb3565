import assert from "node:assert/strict";
import { test } from "node:test";
import { SIZE_PRESETS } from "../../core/cluster-spec.js";
import {
  answersWith,
  hasServiceRules,
  isFresh,
  nodeReadiness,
  podsReadyAnew,
  routesService,
  type NodeItem,
} from "./readiness.js";

const since = Date.parse("2026-01-01T10:00:00Z");
const before = "2026-01-01T09:59:59Z";
const after = "2026-01-01T10:00:00Z";

test("a condition counts only when True and reported at or after the boot began", () => {
  const ready = (status: string, stamp: string) => ({
    status: { conditions: [{ type: "Ready", status, lastHeartbeatTime: stamp }] },
  });
  assert.equal(isFresh(ready("True", after), "Ready", since, "lastHeartbeatTime"), true);
  assert.equal(isFresh(ready("True", before), "Ready", since, "lastHeartbeatTime"), false, "written before a stop");
  assert.equal(isFresh(ready("False", after), "Ready", since, "lastHeartbeatTime"), false);
  assert.equal(isFresh(ready("True", after), "Ready", since, "lastTransitionTime"), false, "the other stamp is absent");
  assert.equal(isFresh({}, "Ready", since, "lastHeartbeatTime"), false);
});

const small = SIZE_PRESETS["1-small"];
const preset = { cpu: "2", memory: "4Gi" };
function node(
  name: string,
  opts: { heartbeat?: string; taints?: string[]; capacity?: Record<string, string> } = {},
): NodeItem {
  return {
    metadata: { name },
    spec: { taints: (opts.taints ?? []).map((key) => ({ key })) },
    status: {
      conditions: [{ type: "Ready", status: "True", lastHeartbeatTime: opts.heartbeat ?? after }],
      capacity: opts.capacity ?? preset,
      allocatable: opts.capacity ?? preset,
    },
  };
}

test("nodes are ready once all are there, Ready anew, untainted and advertising the size preset", () => {
  assert.deepEqual(nodeReadiness([node("a"), node("b")], 2, since, small), { ready: true, lackingPreset: [] });
  assert.deepEqual(
    nodeReadiness([node("a")], 2, since, small),
    { ready: false, lackingPreset: [] },
    "one has not registered",
  );
  assert.deepEqual(nodeReadiness([node("a", { heartbeat: before })], 1, since, small), {
    ready: false,
    lackingPreset: [],
  });
  assert.deepEqual(nodeReadiness([node("a", { taints: ["node.kubernetes.io/not-ready"] })], 1, since, small), {
    ready: false,
    lackingPreset: [],
  });
});

test("a ready node that reports the host's figures is named to get the preset's", () => {
  const host = { cpu: "2", memory: "24564356Ki" };
  assert.deepEqual(nodeReadiness([node("a"), node("b", { capacity: host })], 2, since, small), {
    ready: false,
    lackingPreset: ["b"],
  });
  // Not before it is Ready: its figures would be written over by its first full report.
  assert.deepEqual(nodeReadiness([node("b", { capacity: host, heartbeat: before })], 1, since, small), {
    ready: false,
    lackingPreset: [],
  });
});

test("after a start, every pod that should run must be Ready anew; finished pods do not count", () => {
  const pod = (phase: string, stamp: string) => ({
    status: { phase, conditions: [{ type: "Ready", status: "True", lastTransitionTime: stamp }] },
  });
  assert.equal(podsReadyAnew([pod("Running", after), pod("Succeeded", before), pod("Failed", before)], since), true);
  assert.equal(podsReadyAnew([pod("Running", after), pod("Running", before)], since), false);
  assert.equal(podsReadyAnew([], since), true);
});

test("a DNS answer is an Address line with exactly the address, not the server's", () => {
  const answered =
    "Server:\t\t10.96.0.10\nAddress:\t10.96.0.10:53\n\nName:\tkubernetes.default.svc.cluster.local\nAddress: 10.96.0.1\n";
  const unanswered =
    "Server:\t\t10.96.0.10\nAddress:\t10.96.0.10:53\n\n** server can't find kubernetes.default.svc.cluster.local: NXDOMAIN\n";
  assert.equal(answersWith(answered, "10.96.0.1"), true);
  assert.equal(answersWith(unanswered, "10.96.0.1"), false);
  assert.equal(answersWith("Address: 10.96.0.10\n", "10.96.0.1"), false);
});

test("kube-proxy's rules: present once it wrote any, routing a Service only with a rule for its exact address", () => {
  const empty = "-N KUBE-SERVICES\n";
  const rules = `${empty}-A KUBE-SERVICES -d 10.96.0.1/32 -p tcp -m comment --comment "default/kubernetes:https cluster IP" -m tcp --dport 443 -j KUBE-SVC-NPX46M4PTMTKRN6Y\n`;
  assert.equal(hasServiceRules(empty), false);
  assert.equal(hasServiceRules(rules), true);
  assert.equal(routesService(rules, "10.96.0.1"), true);
  assert.equal(routesService(rules, "10.96.0.10"), false);
});
