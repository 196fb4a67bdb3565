import { TempkubeError } from "../../util/errors.js";
import type { KubeApi } from "./kube-api.js";

/**
 * A kubelet continued after a freeze reports its node NotReady for one status sync, by a race
 * inside it that no order of signals from outside can settle:
 * - Its node is Ready only while its last successful CRI Status call (updateRuntimeUp, every
 *   5 s) is less than 30 s old, and while its last container relist (PLEG, every 1 s) is less
 *   than 3 min old, both by its own clock (pkg/kubelet/runtime.go runtimeErrors,
 *   pkg/kubelet/pleg/generic.go Healthy).
 * - After a longer freeze all three loops are overdue at once. The node status sync reads
 *   the Node from the kubelet's own informer (kubelet_node_status.go tryUpdateNodeStatus, first
 *   try), so it does not wait for anything, and it often runs before the Status call has been
 *   answered: "container runtime is down" until its next sync 10 s later, and the controller
 *   manager taints the node not-ready meanwhile (measured: 2 to 3 thaws of 5 under CPU load,
 *   with or without compressed swap; none in the test alone, some in the suite).
 *
 * So the apiserver refuses exactly that report in a thaw's window: a kubelet's status update
 * that turns a Ready node NotReady for one of these two reasons, with its heartbeat after the
 * freeze and before the window's end. The kubelet tries again at once, reading the Node from the
 * apiserver (up to 5 tries, nodeStatusUpdateRetry), and by then its runtime state is fresh; a
 * refused sync leaves the Node as it was. The window lives in a ConfigMap of kube-system
 * (tenants cannot write there: tenant-guards.ts): `since` is written at the freeze, long before
 * the kubelet's report, so the apiserver's copy of it is current; `until` after the thaw. A
 * runtime that is really down after the window is reported as usual.
 */
export const THAW_WINDOW = { namespace: "kube-system", name: "tempkube-thaw-window" } as const;

/** How long after a thaw a kubelet's stale-state NotReady report is refused. */
export const THAW_WINDOW_MS = 15_000;

const POLICY = "tempkube-thawed-node-status";

/** Reasons the kubelet gives from state that a freeze makes stale (runtime.go, pleg/generic.go). */
const STALE_REASONS = ["container runtime is down", "PLEG is not healthy"];

/** The policy and its binding, as YAML documents: applied with the guards at every boot. */
export function thawWindowPolicy(): string {
  const stale = STALE_REASONS.map((r) => `c.message.contains(${JSON.stringify(r)})`).join(" || ");
  const field = (f: string) => `(has(params.data) && "${f}" in params.data ? params.data["${f}"] : "")`;
  const refused = [
    `${field("since")} != ""`,
    `has(oldObject.status.conditions) && oldObject.status.conditions.exists(c, c.type == "Ready" && c.status == "True")`,
    `has(object.status.conditions) && object.status.conditions.exists(c, c.type == "Ready" && c.status == "False" && has(c.message) && (${stale}) && timestamp(c.lastHeartbeatTime) > timestamp(${field("since")}) && (${field("until")} == "" || timestamp(c.lastHeartbeatTime) < timestamp(${field("until")})))`,
  ].join(" && ");
  return `apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata:
  name: ${POLICY}
spec:
  # An error in here never stops a kubelet's status update.
  failurePolicy: Ignore
  paramKind: { apiVersion: v1, kind: ConfigMap }
  matchConstraints:
    resourceRules:
    - { apiGroups: [""], apiVersions: [v1], operations: [UPDATE], resources: [nodes/status] }
  matchConditions:
  - name: a-kubelet
    expression: 'request.userInfo.username.startsWith("system:node:")'
  validations:
  - expression: ${JSON.stringify(`!(${refused})`)}
    message: "tempkube: a NotReady report from state that was stale across a freeze, within the thaw's window; the kubelet reports again at once"
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata:
  name: ${POLICY}
spec:
  policyName: ${POLICY}
  validationActions: [Deny]
  paramRef: { name: ${THAW_WINDOW.name}, namespace: ${THAW_WINDOW.namespace}, parameterNotFoundAction: Allow }
`;
}

/** The window's ConfigMap: `since` and `until` as RFC 3339 times, "" for none. */
export function thawWindowObject(window: { since?: number; until?: number }): { path: string; object: object } {
  const iso = (ms?: number) => (ms === undefined ? "" : new Date(ms).toISOString());
  return {
    path: `/api/v1/namespaces/${THAW_WINDOW.namespace}/configmaps/${THAW_WINDOW.name}`,
    object: {
      apiVersion: "v1",
      kind: "ConfigMap",
      metadata: { name: THAW_WINDOW.name, namespace: THAW_WINDOW.namespace },
      data: { since: iso(window.since), until: iso(window.until) },
    },
  };
}

/** Writes the window (server-side apply): `{}` closes it. */
export async function writeThawWindow(api: KubeApi, window: { since?: number; until?: number }): Promise<void> {
  const { path, object } = thawWindowObject(window);
  const res = await api.apply(path, object, { timeoutMs: 5_000 });
  if (res.status !== 200 && res.status !== 201)
    throw new TempkubeError(
      "runtime",
      `could not write ${THAW_WINDOW.namespace}/${THAW_WINDOW.name}: HTTP ${res.status}`,
    );
}
