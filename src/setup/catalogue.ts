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

const KINE_VERSION = "v0.17.5";
const COREDNS_VERSION = "v1.15.0";
const LOCAL_PATH_VERSION = "v0.0.30";

/**
 * Newest releases the Go module proxy serves in full (checked 2026-12-01), re-read against
 * Kubernetes 1.34-1.37:
 * - kine v0.17.5 (go.mod: go 1.26.5, etcd API v3.7.3, tested against k8s.io/apiserver
 *   v0.37.0) implements etcd's RangeStream (pkg/server/rangestream.go), which 1.37's
 *   apiserver uses for recursive lists (unless paged with a selector) and a watch's initial sync (EtcdRangeStream, beta and on
 *   in 1.37: k8s.io/apiserver storage/etcd3/store.go shouldStream); v0.16.4 answered it
 *   Unimplemented, so 1.37 fell back to paged lists and asked again every 10 minutes
 *   (storage/feature/feature_support_checker.go rangeStreamRecheckInterval). It answers
 *   a watch progress request at once when every watch is synced instead of from a 100 ms
 *   loop (pkg/server/watch.go:417-449), and still reports etcd 3.6.11 (pkg/app/app.go:170-176), so
 *   the apiserver's RequestWatchProgress check (etcd ≥ 3.5.13) passes on every minor. Same
 *   SQLite schema as v0.16.4 (pkg/drivers/sqlite/sqlite.go:26-45), so datastore templates
 *   made by either work with both.
 * - CoreDNS v1.15.0 (go 1.26.0, client-go v0.37.1): its kubernetes plugin lists and
 *   watches the same resources (Services, EndpointSlices, Namespaces, Pods; plugin/
 *   kubernetes/controller.go), so the ClusterRole in addon-manifests.ts is unchanged.
 * - local-path-provisioner stays v0.0.30 (client-go v0.30.0; core/v1, storage/v1 and
 *   coordination/v1 only, all served by 1.37): the proxy lists no later version, and the
 *   later ones it knows (v0.0.33, v0.0.35, v0.0.37) cannot be fetched verified (zip 403, or
 *   no checksum database record), and a module the checksum database cannot vouch for is
 *   not built here.
 */
export const ADDONS: readonly AddonRelease[] = [
  {
    name: "kine",
    goPackage: "github.com/k3s-io/kine",
    version: KINE_VERSION,
    cgo: true,
    ldflags: `-X github.com/k3s-io/kine/pkg/version.Version=${KINE_VERSION}`,
  },
  { name: "coredns", goPackage: "github.com/coredns/coredns", version: COREDNS_VERSION, cgo: false },
  {
    name: "local-path-provisioner",
    goPackage: "github.com/rancher/local-path-provisioner",
    version: LOCAL_PATH_VERSION,
    cgo: false,
    ldflags: `-X main.VERSION=${LOCAL_PATH_VERSION}`,
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
  /** Upstream's release binaries for `tempkube setup --source release` (release-download.ts). */
  releaseAssets: readonly ReleaseAsset[];
}

/**
 * One upstream release asset. Its SHA-256 is pinned here as upstream published it, so a
 * download is checked against what the project recorded, not against a checksum fetched
 * from the same place. `null`: no published checksum was found to pin (this machine has no
 * internet to read the release page), so `--source release` builds this release instead
 * of trusting an unchecked download.
 */
export interface ReleaseAsset {
  /** GOARCH it is built for (the host's: release-download.ts goArch). */
  arch: string;
  url: string;
  sha256: string | null;
  /**
   * `tar.gz`: a tarball holding every command as `bin/<binary>`; `binary`: the asset is
   * the release's one command itself.
   */
  format: "tar.gz" | "binary";
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
    // The tarball's bin/ holds containerd, containerd-shim-runc-v2, containerd-stress and ctr.
    // Its published checksum (containerd-2.4.2-linux-amd64.tar.gz.sha256sum on the release
    // page) was not found in any stored source (checked 2026-12-01: kubespray's
    // checksums.yml, stored 2026-08, stops at 2.3.4), so it is built until one is pinned.
    releaseAssets: [
      {
        arch: "amd64",
        url: "https://github.com/containerd/containerd/releases/download/v2.4.2/containerd-2.4.2-linux-amd64.tar.gz",
        sha256: null,
        format: "tar.gz",
      },
    ],
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
    // Static, libseccomp linked in. Its published checksum (runc.sha256sum on the release
    // page) was not found in any stored source (kubespray's, stored 2026-08, stops at
    // 1.4.3), so it is built until one is pinned.
    releaseAssets: [
      {
        arch: "amd64",
        url: "https://github.com/opencontainers/runc/releases/download/v1.5.3/runc.amd64",
        sha256: null,
        format: "binary",
      },
    ],
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
  coredns: `tempkube.local/coredns:${COREDNS_VERSION}`,
  localPath: `tempkube.local/local-path-provisioner:${LOCAL_PATH_VERSION}`,
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
