/**
 * Every upstream version tempkube uses, pinned in one place.
 *
 * Version policy: Kubernetes minors 1.33 and 1.34 only. From 1.35 the kubelet refuses
 * cgroup v1 by default (failCgroupV1) and the target machines are cgroup v1; Debian
 * bookworm's containerd 1.6 is supported by 1.34 but not by later minors' CRI
 * expectations. Moving past 1.34 needs cgroup v2 hosts and containerd >= 1.7.
 */
export interface KubernetesRelease {
  /** Minor line users ask for, e.g. "1.34". */
  minor: string;
  /** Full upstream tag, e.g. "v1.34.4". */
  version: string;
  /** Version of the k8s.io staging modules released with it, e.g. "v0.34.4". */
  stagingVersion: string;
}

export const KUBERNETES_RELEASES: readonly KubernetesRelease[] = [
  { minor: "1.34", version: "v1.34.4", stagingVersion: "v0.34.4" },
  { minor: "1.33", version: "v1.33.13", stagingVersion: "v0.33.13" },
];

export const DEFAULT_KUBERNETES_MINOR = "1.34";

/** The upstream binaries built for every Kubernetes release. */
export const KUBERNETES_COMPONENTS = [
  "kube-apiserver",
  "kube-controller-manager",
  "kube-scheduler",
  "kubelet",
  "kube-proxy",
  "kubectl",
] as const;
export type KubernetesComponent = (typeof KUBERNETES_COMPONENTS)[number];

/** k8s.io staging modules that k8s.io/kubernetes replaces with local paths upstream. */
export const KUBERNETES_STAGING_MODULES = [
  "api",
  "apiextensions-apiserver",
  "apimachinery",
  "apiserver",
  "cli-runtime",
  "client-go",
  "cloud-provider",
  "cluster-bootstrap",
  "code-generator",
  "component-base",
  "component-helpers",
  "controller-manager",
  "cri-api",
  "cri-client",
  "csi-translation-lib",
  "dynamic-resource-allocation",
  "endpointslice",
  "externaljwt",
  "kms",
  "kube-aggregator",
  "kube-controller-manager",
  "kube-proxy",
  "kube-scheduler",
  "kubectl",
  "kubelet",
  "metrics",
  "mount-utils",
  "pod-security-admission",
  "sample-apiserver",
] as const;

/** Components that are not part of a Kubernetes release; shared by every version. */
export interface AddonRelease {
  name: "kine" | "coredns" | "local-path-provisioner";
  /** Go package path of the main package. */
  goPackage: string;
  version: string;
  /** kine's SQLite driver needs cgo. */
  cgo: boolean;
  ldflags?: string;
}

export const ADDONS: readonly AddonRelease[] = [
  {
    name: "kine",
    goPackage: "github.com/k3s-io/kine",
    version: "v0.16.4",
    cgo: true,
    ldflags: "-X github.com/k3s-io/kine/pkg/version.Version=v0.16.4",
  },
  { name: "coredns", goPackage: "github.com/coredns/coredns", version: "v1.14.7", cgo: false },
  {
    name: "local-path-provisioner",
    goPackage: "github.com/rancher/local-path-provisioner",
    version: "v0.0.30",
    cgo: false,
    ldflags: "-X main.VERSION=v0.0.30",
  },
];

/**
 * BusyBox behind the busybox:1.35 image, built from source as docker-library/busybox builds
 * the official image's default variant (glibc; `busybox:1.35` is `1.35.0-glibc` on amd64):
 * Debian's busybox-static differs from it (`wget -T` segfaults, no `nc -z`, `sh` drops
 * environment variables whose names are not identifiers, applets in /sbin).
 */
export const BUSYBOX = {
  version: "1.35.0",
  variant: "glibc",
  /**
   * SHA-256 of busybox-1.35.0.tar.bz2 as busybox.net published it (docker-library/busybox
   * versions.json pins the same); Debian's source package ships that very file as its
   * orig tarball (busybox_1.35.0-4+deb12u1.dsc lists this checksum).
   */
  sourceSha256: "faeeb244c35a348a334f4a59e44626ee870fb07b6884d68c10ae8bc19f83a694",
  /** The Debian source package whose orig tarball is that release (no internet but Debian's mirrors). */
  debianSourcePackage: "busybox",
} as const;

/** Images every cluster needs, built locally (no registry is reachable). Never `latest`. */
export const IMAGES = {
  pause: "tempkube.local/pause:3.10.1",
  coredns: "tempkube.local/coredns:v1.14.7",
  localPath: "tempkube.local/local-path-provisioner:v0.0.30",
  /** Named as users already write it in manifests, so they run unchanged. */
  busybox: "docker.io/library/busybox:1.35",
} as const;
export type ImageKey = keyof typeof IMAGES;

/**
 * What an image archive holds, recorded as its cache version: a cached archive that
 * records another is rebuilt (busybox:1.35 was Debian's busybox-static, recorded as "1.35").
 */
export function imageContentVersion(key: ImageKey): string {
  return key === "busybox" ? `${BUSYBOX.version}-${BUSYBOX.variant}` : IMAGES[key].split(":").pop()!;
}

export function findRelease(minorOrVersion: string): KubernetesRelease | undefined {
  const wanted = minorOrVersion.replace(/^v/, "");
  return KUBERNETES_RELEASES.find((r) => r.minor === wanted || r.version === `v${wanted}`);
}

export function defaultRelease(): KubernetesRelease {
  return findRelease(DEFAULT_KUBERNETES_MINOR)!;
}
