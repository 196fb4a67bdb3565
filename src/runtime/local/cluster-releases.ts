import { chooseNodeRelease, type CgroupVersion } from "../../core/kubelet-policy.js";
import { hostCgroupVersion } from "../../host/cgroup-version.js";
import { kubernetesInstalled } from "../../setup/artifact-paths.js";
import { KUBERNETES_RELEASES, type KubernetesRelease } from "../../setup/catalogue.js";
import { TempkubeError } from "../../util/errors.js";

/** The releases a cluster's processes come from on this host. */
export interface ClusterReleases {
  /** kube-apiserver, controller-manager, scheduler, kubectl: the version asked for. */
  controlPlane: KubernetesRelease;
  /** Every node's kubelet (core/kubelet-policy.ts). */
  kubelet: KubernetesRelease;
  /** Every node's kube-proxy: the control plane's release. */
  kubeProxy: KubernetesRelease;
  /** Plain language: which kubelet and why. */
  reason: string;
}

/**
 * What a cluster of `version` runs on a host of the given cgroup version, by the catalogue
 * and the kubelet policy alone (nothing on disk is looked at): undefined when the version is
 * not offered, a refusal when the host cannot run it at all.
 */
export function plannedReleases(
  version: string,
  cgroup: CgroupVersion = hostCgroupVersion(),
  offered: readonly KubernetesRelease[] = KUBERNETES_RELEASES,
): ClusterReleases | { refused: string } | undefined {
  const controlPlane = findIn(offered, version);
  if (!controlPlane) return undefined;
  const choice = chooseNodeRelease(controlPlane, cgroup, offered);
  if (!choice.ok) return { refused: choice.reason };
  return { controlPlane, kubelet: choice.kubelet, kubeProxy: choice.kubeProxy, reason: choice.reason };
}

/**
 * The releases of a cluster of `version` on this host, once every one of them is installed;
 * otherwise a clear refusal: invalid-input (not offered), conflict (this host cannot run it),
 * not-installed (naming the command that installs what is missing). Cheap (no checksums):
 * creates call it in the request path, before anything is recorded.
 */
export function clusterReleases(
  version: string,
  cgroup: CgroupVersion = hostCgroupVersion(),
  installed: (r: KubernetesRelease) => boolean = kubernetesInstalled,
  offered: readonly KubernetesRelease[] = KUBERNETES_RELEASES,
): ClusterReleases {
  const plan = plannedReleases(version, cgroup, offered);
  if (!plan)
    throw new TempkubeError(
      "invalid-input",
      `kubernetesVersion "${version}" is not offered; offered: ${offered.map((r) => r.minor).join(", ")} (see \`tempkube versions\`)`,
    );
  if ("refused" in plan)
    throw new TempkubeError("conflict", `Kubernetes ${version} cannot run on this host: ${plan.refused}`);
  const missing = [...new Set([plan.controlPlane, plan.kubelet, plan.kubeProxy])].filter((r) => !installed(r));
  if (missing.length) {
    const what = missing.map((r) => r.version).join(" and ");
    const why = plan.kubelet !== plan.controlPlane ? ` (${plan.reason})` : "";
    throw new TempkubeError(
      "not-installed",
      `Kubernetes ${what} ${missing.length > 1 ? "are" : "is"} offered but not installed on this host${why}; ` +
        `run on the host: tempkube versions install ${missing.map((r) => r.minor).join(" ")}`,
    );
  }
  return plan;
}

/** catalogue.ts findRelease, over the given catalogue (tests pass synthetic ones). */
function findIn(offered: readonly KubernetesRelease[], version: string): KubernetesRelease | undefined {
  const wanted = version.replace(/^v/, "");
  return offered.find((r) => r.minor === wanted || r.version === `v${wanted}`);
}
