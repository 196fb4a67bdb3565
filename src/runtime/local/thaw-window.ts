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
 * refused sync leaves the Node as it was. A runtime that is really down after the window is
 * reported as usual.
 *
 * The window is written into the policy itself: its start at the freeze, long before the
 * kubelet's report, so the apiserver's compiled copy is current by then; its end after the
 * thaw (until the apiserver has that, the window is open-ended, which refuses the same). Not a
 * parameter object: every aggregated apiserver runs the same admission plugin over the same
 * policies and would then have to list and watch the parameter's kind too (the sample
 * apiserver, with upstream's RBAC for it, never got ready with a ConfigMap parameter).
 */

/** How long after a thaw a kubelet's stale-state NotReady report is refused. */
export const THAW_WINDOW_MS = 15_000;

const POLICY = "tempkube-thawed-node-status";

/** Reasons the kubelet gives from state that a freeze makes stale (runtime.go, pleg/generic.go). */
const STALE_REASONS = ["container runtime is down", "PLEG is not healthy"];

/** A thaw window: from the freeze (`since`) to the thaw's end (`until`, open-ended when not set); none without `since`. */
export interface ThawWindow {
  since?: number;
  until?: number;
}

const celTime = (ms: number) => `timestamp(${JSON.stringify(new Date(ms).toISOString())})`;

/** What a kubelet's status update must not be within the window (a CEL expression); `false` without one. */
function refusedWithin(window: ThawWindow): string {
  if (window.since === undefined) return "false";
  const stale = STALE_REASONS.map((r) => `c.message.contains(${JSON.stringify(r)})`).join(" || ");
  const heartbeat = "timestamp(c.lastHeartbeatTime)";
  const within = [`${heartbeat} > ${celTime(window.since)}`];
  if (window.until !== undefined) within.push(`${heartbeat} < ${celTime(window.until)}`);
  return [
    `has(oldObject.status.conditions) && oldObject.status.conditions.exists(c, c.type == "Ready" && c.status == "True")`,
    `has(object.status.conditions) && object.status.conditions.exists(c, c.type == "Ready" && c.status == "False" && has(c.message) && (${stale}) && ${within.join(" && ")})`,
  ].join(" && ");
}

/** The policy with `window` in it, and its binding: written at every boot (closed), a freeze and a thaw. */
export function thawWindowObjects(window: ThawWindow): { path: string; object: object }[] {
  const base = "/apis/admissionregistration.k8s.io/v1";
  return [
    {
      path: `${base}/validatingadmissionpolicies/${POLICY}`,
      object: {
        apiVersion: "admissionregistration.k8s.io/v1",
        kind: "ValidatingAdmissionPolicy",
        metadata: { name: POLICY },
        spec: {
          // An error in here never stops a kubelet's status update.
          failurePolicy: "Ignore",
          matchConstraints: {
            resourceRules: [
              { apiGroups: [""], apiVersions: ["v1"], operations: ["UPDATE"], resources: ["nodes/status"] },
            ],
          },
          matchConditions: [{ name: "a-kubelet", expression: 'request.userInfo.username.startsWith("system:node:")' }],
          validations: [
            {
              expression: `!(${refusedWithin(window)})`,
              message:
                "tempkube: a NotReady report from state that was stale across a freeze, within the thaw's window; the kubelet reports again at once",
            },
          ],
        },
      },
    },
    {
      path: `${base}/validatingadmissionpolicybindings/${POLICY}`,
      object: {
        apiVersion: "admissionregistration.k8s.io/v1",
        kind: "ValidatingAdmissionPolicyBinding",
        metadata: { name: POLICY },
        spec: { policyName: POLICY, validationActions: ["Deny"] },
      },
    },
  ];
}

/** The policy closed, as YAML documents (JSON): what every boot applies. */
export function thawWindowPolicy(): string {
  return thawWindowObjects({})
    .map((o) => JSON.stringify(o.object))
    .join("\n---\n");
}

/** Writes the window into the policy (server-side apply); `{}` closes it. */
export async function writeThawWindow(api: KubeApi, window: ThawWindow): Promise<void> {
  const [policy] = thawWindowObjects(window);
  const res = await api.apply(policy.path, policy.object, { timeoutMs: 5_000 });
  if (res.status !== 200 && res.status !== 201)
    throw new TempkubeError("runtime", `could not write the thaw window (${POLICY}): HTTP ${res.status}`);
}
