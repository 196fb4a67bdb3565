/**
 * Every upstream version tempkube uses, pinned in one place.
 *
 * Version policy: 1.37, the newest minor, is the default; 1.36, 1.35 and 1.34 are offered
 * (installable with `tempkube versions install`), and 1.33, out of upstream support, stays
 * as an extra. Every node runs containerd 2.x and runc built below (CONTAINER_RUNTIME).
 * From 1.35 the kubelet refuses cgroup v1 unless its configuration says
 * `failCgroupV1: false`, which tempkube's does; what each does on these cgroup v1 hosts,
 * found by running it: docs/kubernetes-versions.md.
 */
export interface KubernetesRelease {
  /** Minor line users ask for, e.g. "1.34". */
  minor: string;
  /** Full upstream tag, e.g. "v1.34.4". */
  version: string;
  /** Version of the k8s.io staging modules released with it, e.g. "v0.34.4". */
  stagingVersion: string;
  /**
   * The `go` line of the release's own go.mod: the build module states it too, with the
   * matching `godebug default`, so the binaries keep upstream's runtime defaults.
   */
  goVersion: string;
  /**
   * Whether this release's kubelet runs on a cgroup v1 host (with `failCgroupV1: false`, as
   * tempkube configures it). When false, clusters of this release on a cgroup v1 host get the
   * newest offered kubelet that does, within the version-skew policy (core/kubelet-policy.ts).
   */
  kubeletRunsOnCgroupV1: boolean;
}

/**
 * Newest first. Patches: the newest the Go module proxy served (checked 2026-12-01).
 *
 * kubeletRunsOnCgroupV1, measured 2026-12-01 on a cgroup v1 host (docs/kubernetes-versions.md,
 * "The kubelet on cgroup v1"): the kubelets of v1.35.4, v1.36.3 and v1.37.2 refuse to start
 * only while `failCgroupV1` is true (pkg/kubelet/apis/config/validation/validation_linux.go
 * validateKubeletOSConfiguration); with `failCgroupV1: false` each registered its Node, ran
 * pods and passed tempkube's readiness, on containerd 2.4.2 and on 1.6.20. v1.34.4 and
 * v1.33.13 default to false and run. A release whose kubelet drops cgroup v1 (KEP-5573) gets false.
 */
export const KUBERNETES_RELEASES: readonly KubernetesRelease[] = [
  { minor: "1.37", version: "v1.37.2", stagingVersion: "v0.37.2", goVersion: "1.26.0", kubeletRunsOnCgroupV1: true },
  { minor: "1.36", version: "v1.36.3", stagingVersion: "v0.36.3", goVersion: "1.26.0", kubeletRunsOnCgroupV1: true },
  { minor: "1.35", version: "v1.35.4", stagingVersion: "v0.35.4", goVersion: "1.25.0", kubeletRunsOnCgroupV1: true },
  { minor: "1.34", version: "v1.34.4", stagingVersion: "v0.34.4", goVersion: "1.24.0", kubeletRunsOnCgroupV1: true },
  { minor: "1.33", version: "v1.33.13", stagingVersion: "v0.33.13", goVersion: "1.24.0", kubeletRunsOnCgroupV1: true },
];

/**
 * `TEMPKUBE_DEFAULT_MINOR` (unset by default) makes another offered minor the default in one
 * process tree: for running the test suite, or a server, on an older minor.
 */
export const DEFAULT_KUBERNETES_MINOR = defaultMinorOverride(process.env.TEMPKUBE_DEFAULT_MINOR) ?? "1.37";

export function defaultMinorOverride(minor: string | undefined): string | undefined {
  if (minor === undefined || minor === "") return undefined;
  if (!KUBERNETES_RELEASES.some((r) => r.minor === minor))
    throw new Error(
      `TEMPKUBE_DEFAULT_MINOR=${minor} is not an offered minor (${KUBERNETES_RELEASES.map((r) => r.minor).join(", ")})`,
    );
  return minor;
}

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

/** Staging modules new in 1.36 (split out of kubelet/apiserver); earlier releases have no such module. */
const STAGING_MODULES_SINCE_1_36 = ["cri-streaming", "streaming"] as const;

/** The staging modules k8s.io/kubernetes of this release replaces (its go.mod's `=> ./staging/...` lines). */
export function stagingModules(release: KubernetesRelease): readonly string[] {
  const [, minor] = release.minor.split(".").map(Number);
  return minor >= 36
    ? [...KUBERNETES_STAGING_MODULES, ...STAGING_MODULES_SINCE_1_36].sort()
    : KUBERNETES_STAGING_MODULES;
}

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
 * containerd 2.x and runc, built from the Go module proxy like the add-ons: every node of
 * every version runs them (Debian's containerd 1.6 is end of life, and upstream supports
 * containerd 1.x only up to Kubernetes 1.35).
 */
export interface ContainerRuntimeRelease {
  name: "containerd" | "runc";
  /** Go module the commands come from, installed at `version`. */
  goModule: string;
  version: string;
  commands: readonly ContainerRuntimeCommand[];
  ldflags: string;
}

export interface ContainerRuntimeCommand {
  /** Main package, relative to the module ("" = its root); the binary is named after its last element. */
  path: string;
  binary: string;
  cgo: boolean;
  /** Build tags as upstream's Makefile sets them (minus those needing libraries absent here). */
  tags: readonly string[];
}

export const CONTAINER_RUNTIME: readonly ContainerRuntimeRelease[] = [
  {
    name: "containerd",
    goModule: "github.com/containerd/containerd/v2",
    version: "v2.4.2",
    // containerd's Makefile: urfave_cli_no_docs everywhere, no_grpc for the shim (a ttrpc-only
    // shim). Without cgo the btrfs snapshotter is left out (its build tag needs cgo).
    commands: [
      { path: "cmd/containerd", binary: "containerd", cgo: false, tags: ["urfave_cli_no_docs"] },
      {
        path: "cmd/containerd-shim-runc-v2",
        binary: "containerd-shim-runc-v2",
        cgo: false,
        tags: ["urfave_cli_no_docs", "no_grpc"],
      },
      { path: "cmd/ctr", binary: "ctr", cgo: false, tags: ["urfave_cli_no_docs"] },
    ],
    ldflags:
      "-X github.com/containerd/containerd/v2/version.Version=v2.4.2 " +
      "-X github.com/containerd/containerd/v2/version.Package=github.com/containerd/containerd/v2",
  },
  {
    name: "runc",
    goModule: "github.com/opencontainers/runc",
    // The newest release the proxy served (v1.6.0-rc.1 is a release candidate).
    version: "v1.5.3",
    // runc's Makefile adds libpathrs (a Rust library, not in Debian bookworm): without it runc
    // uses its pure-Go pathrs-lite. seccomp needs cgo and libseccomp-dev. The version comes
    // from the embedded VERSION file.
    commands: [{ path: "", binary: "runc", cgo: true, tags: ["seccomp", "urfave_cli_no_docs"] }],
    ldflags: "",
  },
];

export type ContainerRuntimeBinary = "containerd" | "containerd-shim-runc-v2" | "ctr" | "runc";

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
