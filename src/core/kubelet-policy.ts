/**
 * Which kubelet the nodes of a cluster run, given its control plane's release and the host's
 * cgroup version. Pure: the catalogue and the host's cgroup version come in as arguments.
 *
 * The policy:
 * - On a cgroup v2 host every node runs the control plane's own release.
 * - On a cgroup v1 host too, while that release's kubelet runs on cgroup v1 (every offered
 *   release's does today, with `failCgroupV1: false`; docs/kubernetes-versions.md).
 * - Where it does not, the nodes run the newest offered kubelet that does and that the
 *   version-skew policy allows beside that apiserver; with none, the cluster cannot be made
 *   on this host (and the answer says why).
 * - kube-proxy stays the control plane's release: it does not touch cgroups, and the skew
 *   policy allows it up to three minors newer than the kubelet beside it, the same window
 *   the kubelet has below the apiserver, so Services behave as in the release asked for.
 *
 * Version-skew policy (https://kubernetes.io/releases/version-skew-policy/, "kubelet"):
 * "kubelet must not be newer than kube-apiserver"; "kubelet may be up to three minor versions
 * older than kube-apiserver (kubelet < 1.25 may only be up to two minor versions older)".
 * "kube-proxy" has the same two rules, plus "may be up to three minor versions older or
 * newer than the kubelet instance it runs alongside".
 */
export type CgroupVersion = "v1" | "v2";

/** What the policy needs of a release (the catalogue's KubernetesRelease has it). */
export interface PolicyRelease {
  /** "1.37" */
  minor: string;
  /** "v1.37.2" */
  version: string;
  kubeletRunsOnCgroupV1: boolean;
}

export type NodeReleaseChoice<R extends PolicyRelease> =
  | {
      ok: true;
      /** The release every node's kubelet comes from. */
      kubelet: R;
      /** The release every node's kube-proxy comes from: the control plane's. */
      kubeProxy: R;
      /** True when the kubelet is not the control plane's release. */
      differs: boolean;
      /** Plain language, for `versions`, `get` and errors. */
      reason: string;
    }
  | { ok: false; reason: string };

/** The minor number of "1.37" (37); NaN for anything not "1.<n>". */
export function minorNumber(minor: string): number {
  const m = /^1\.(\d+)$/.exec(minor);
  return m ? Number(m[1]) : Number.NaN;
}

/** The skew policy's rule for a kubelet beside an apiserver (both "1.<n>"). */
export function kubeletSkewAllowed(apiServerMinor: string, kubeletMinor: string): boolean {
  const api = minorNumber(apiServerMinor);
  const kubelet = minorNumber(kubeletMinor);
  if (Number.isNaN(api) || Number.isNaN(kubelet)) return false;
  const maxOlder = kubelet < 25 ? 2 : 3;
  return kubelet <= api && api - kubelet <= maxOlder;
}

/**
 * The kubelet (and kube-proxy) release for the nodes of a cluster whose control plane is
 * `controlPlane`, on a host with the given cgroup version, choosing among `offered` (the
 * catalogue). Whether the chosen release is installed is the caller's question: the choice
 * does not depend on what happens to be built, so the same request gets the same nodes on
 * every host of a kind.
 */
export function chooseNodeRelease<R extends PolicyRelease>(
  controlPlane: R,
  host: CgroupVersion,
  offered: readonly R[],
): NodeReleaseChoice<R> {
  const own = { ok: true as const, kubelet: controlPlane, kubeProxy: controlPlane, differs: false };
  if (host === "v2")
    return {
      ...own,
      reason: `every node runs the control plane's own release ${controlPlane.version} (cgroup v2 host)`,
    };
  if (controlPlane.kubeletRunsOnCgroupV1)
    return {
      ...own,
      reason: `every node runs the control plane's own release ${controlPlane.version} (its kubelet runs on cgroup v1)`,
    };
  const candidates = offered
    .filter((r) => r.kubeletRunsOnCgroupV1 && kubeletSkewAllowed(controlPlane.minor, r.minor))
    .sort((a, b) => minorNumber(b.minor) - minorNumber(a.minor));
  const chosen = candidates[0];
  if (!chosen) {
    const api = minorNumber(controlPlane.minor);
    return {
      ok: false,
      reason:
        `Kubernetes ${controlPlane.minor}'s kubelet does not run on cgroup v1, and no offered kubelet that does is ` +
        `within the version-skew policy (1.${api - 3} to ${controlPlane.minor}); ` +
        `use a cgroup v2 host or an older Kubernetes version`,
    };
  }
  return {
    ok: true,
    kubelet: chosen,
    kubeProxy: controlPlane,
    differs: true,
    reason:
      `nodes run kubelet ${chosen.version}: Kubernetes ${controlPlane.minor}'s kubelet does not run on this cgroup v1 host, ` +
      `and ${chosen.minor} is the newest offered kubelet that does within the version-skew policy ` +
      `(kube-proxy stays ${controlPlane.version})`,
  };
}
