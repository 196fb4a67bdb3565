import { readFile } from "node:fs/promises";
import { SIZE_PRESETS } from "../../core/cluster-spec.js";
import type { KubernetesRelease } from "../../setup/catalogue.js";
import { TempkubeError } from "../../util/errors.js";
import {
  coreDnsConfigMap,
  coreDnsService,
  localPath,
  nodeCapacityPolicy,
  rootCaConfigMap,
  TEMPLATE_DNS_EGRESS,
} from "./addon-manifests.js";
import { applyObjects } from "./apply-manifests.js";
import type { LocalClusterState } from "./cluster-state.js";
import { STARTING_TAINT } from "./component-configs.js";
import type { KubeApi } from "./kube-api.js";
import type { ClusterLayout } from "./layout.js";
import type { NodeNetwork } from "./network.js";
import { ephemeronClusterObjects } from "../../services/ephemeron-crd.js";
import { tenantGuards } from "./tenant-guards.js";
import { thawWindowPolicy } from "./thaw-window.js";
import { waitFor } from "./wait.js";

/** What the boot writes into a cluster's API, beside what the datastore template already holds. */

export async function applyCapacityPolicy(
  api: KubeApi,
  state: LocalClusterState,
  release: KubernetesRelease,
): Promise<void> {
  // Both at once: a binding may name a policy that does not exist yet (it binds nothing until then).
  await Promise.all(
    nodeCapacityPolicy(SIZE_PRESETS[state.spec.size], release).map(async ({ path, object }) => {
      const res = await api.apply(path, object);
      if (res.status !== 200 && res.status !== 201) {
        throw new TempkubeError("runtime", `could not apply ${path}: HTTP ${res.status} ${JSON.stringify(res.body)}`);
      }
    }),
  );
}

/** CoreDNS's workload comes with the datastore template; the rest is this cluster's own. */
export async function applyAddons(api: KubeApi, state: LocalClusterState, layout: ClusterLayout): Promise<void> {
  const docs = [
    tenantGuards(state.spec.privileged),
    coreDnsService(),
    localPath(layout.volumesDir),
    ephemeronClusterObjects(),
    // Closed (thaw-window.ts): a server that died between a freeze and a thaw left it open.
    thawWindowPolicy(),
  ].join("---\n");
  await applyObjects(api, docs);
}

/**
 * On every start: the guards, the Ephemeron CRD (issue 14) and the thaw window's policy in the
 * same apply, so a cluster made before any of them existed, or whose tenant edited the CRD, has
 * today's at its next start. The CRD is tempkube's: tenants may create Ephemerons (tools/cluster-controllers
 * grants tenants each CRD's resources), and the controller validates every object itself.
 */
export async function applyTenantGuards(api: KubeApi, state: LocalClusterState): Promise<void> {
  await applyObjects(
    api,
    [tenantGuards(state.spec.privileged), ephemeronClusterObjects(), thawWindowPolicy()].join("---\n"),
  );
}

/**
 * Every pod's service-account volume holds the `kube-root-ca.crt` ConfigMap of its
 * namespace, and the kubelet does not start a pod without it. kube-controller-manager
 * publishes it, seconds after the scheduler can bind CoreDNS's Pod (it waits for the
 * apiserver's bootstrap hooks); tempkube writes the same object for kube-system first,
 * and the controller finds it as it would have written it.
 */
export async function publishRootCa(api: KubeApi, layout: ClusterLayout, left: () => number): Promise<void> {
  const configMap = rootCaConfigMap(await readFile(layout.pki("ca.crt"), "utf8"));
  // The apiserver makes kube-system just after it serves; until then the create is a 404.
  await waitFor(
    "ConfigMap kube-system/kube-root-ca.crt",
    async () => {
      const res = await api.post("/api/v1/namespaces/kube-system/configmaps", configMap).catch(() => undefined);
      return res?.status === 201 || res?.status === 409;
    },
    left(),
    50,
  );
}

/** CoreDNS's Corefile for this cluster's egress, unless the template's is that one already. */
export async function writeCoreDnsConfig(api: KubeApi, state: LocalClusterState): Promise<void> {
  const egress = state.network.egress ?? "none";
  if (egress === TEMPLATE_DNS_EGRESS) return;
  const dnsConfig = coreDnsConfigMap(egress);
  const written = await api.apply(dnsConfig.path, dnsConfig.object);
  if (written.status !== 200 && written.status !== 201)
    throw new TempkubeError("runtime", `could not write CoreDNS's Corefile: HTTP ${written.status}`);
}

export async function liftStartingTaint(api: KubeApi, nodes: NodeNetwork[], left: () => number): Promise<void> {
  type Node = { spec?: { taints?: { key: string; effect: string }[] } };
  for (const node of nodes) {
    const path = `/api/v1/nodes/${node.name}`;
    await waitFor(`node ${node.name} to register`, () => api.ok(path), left(), 50);
    const current = await api.get<Node>(path);
    const taints = (current.body?.spec?.taints ?? []).filter((t) => t.key !== STARTING_TAINT);
    const res = await api.patch(path, { spec: { taints } });
    if (res.status !== 200)
      throw new TempkubeError("runtime", `could not lift the starting taint of node ${node.name}: HTTP ${res.status}`);
  }
}
